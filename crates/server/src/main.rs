//! `reviewtime-server`: serve the API and dashboard, and manage users and tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use reviewtime_server::{auth, db, now_ms, pair_user, serve};

#[derive(Parser)]
#[command(
    name = "reviewtime-server",
    version,
    about = "ReviewTime sync server and dashboard"
)]
struct Cli {
    /// Directory holding the SQLite database.
    #[arg(long, global = true, default_value = "data", env = "REVIEWTIME_DATA")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and dashboard.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: SocketAddr,
        /// Stop by itself after this many seconds (tests and benchmarks).
        #[arg(long)]
        exit_after: Option<u64>,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens and beacon keys.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print a pairing link for it.
    Add {
        /// The user's name.
        name: String,
        /// Server URL to put in the pairing link.
        #[arg(long, default_value = "http://127.0.0.1:8787")]
        server: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum TokenKind {
    Api,
    Beacon,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a new credential for a user; the secret is printed once.
    Issue {
        /// The user's name.
        #[arg(long)]
        user: String,
        /// API token or beacon key.
        #[arg(long, value_enum, default_value = "api")]
        kind: TokenKind,
    },
    /// Revoke a credential by its public id (the 8 characters after the prefix).
    Revoke {
        /// The credential's id.
        id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve { addr, exit_after } => {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            runtime
                .block_on(serve(
                    addr,
                    &cli.data,
                    exit_after.map(std::time::Duration::from_secs),
                ))
                .map_err(|e| e.to_string())
        }
        Command::User {
            command: UserCommand::Add { name, server },
        } => {
            let conn = db::open(&cli.data).map_err(|e| e.to_string())?;
            let user = db::create_user(&conn, &name, now_ms())
                .map_err(|e| format!("cannot create user {name}: {e}"))?;
            let pairing = pair_user(&conn, user, &server).map_err(|e| e.to_string())?;
            println!("PAIRING {}", pairing.to_link());
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Issue { user, kind },
        } => {
            let conn = db::open(&cli.data).map_err(|e| e.to_string())?;
            let id = db::user_id(&conn, &user)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user called {user}"))?;
            let kind = match kind {
                TokenKind::Api => auth::Kind::Api,
                TokenKind::Beacon => auth::Kind::Beacon,
            };
            let issued = auth::issue(&conn, id, kind, now_ms()).map_err(|e| e.to_string())?;
            println!("id {}", issued.id);
            println!("secret {}", issued.secret);
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Revoke { id },
        } => {
            let conn = db::open(&cli.data).map_err(|e| e.to_string())?;
            if auth::revoke(&conn, &id, now_ms()).map_err(|e| e.to_string())? {
                println!("revoked {id}");
                Ok(())
            } else {
                Err(format!("no live credential with id {id}"))
            }
        }
    }
}
