//! `reviewtime-server`: serve the API and dashboard, manage users and
//! tokens, and copy an SQLite database into PostgreSQL — against either
//! database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use reviewtime_server::migrate::{self, MigrateError};
use reviewtime_server::rate::Rate;
use reviewtime_server::store::{Location, Store, StoreError};
use reviewtime_server::{add_user, auth, now_ms, serve, ServeOptions};

#[derive(Parser)]
#[command(
    name = "reviewtime-server",
    version,
    about = "ReviewTime sync server and dashboard"
)]
struct Cli {
    /// Directory holding the SQLite database (when --database is not given)
    /// and the first start's pairing link.
    #[arg(long, global = true, default_value = "data", env = "REVIEWTIME_DATA")]
    data: PathBuf,
    /// The database: a postgres:// URL, a sqlite: URL or an SQLite file path.
    /// Default: reviewtime.sqlite3 in --data.
    #[arg(long, global = true, env = "REVIEWTIME_DATABASE")]
    database: Option<String>,
    /// PostgreSQL connections per server instance.
    #[arg(
        long,
        global = true,
        default_value_t = 16,
        env = "REVIEWTIME_POOL_SIZE"
    )]
    pool_size: usize,
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
        /// Writes one credential may send at once (0: no limit per credential).
        #[arg(long, default_value_t = Rate::PER_TOKEN.burst, env = "REVIEWTIME_RATE_BURST")]
        rate_burst: u32,
        /// Writes per second one credential may sustain (0: no limit per credential).
        #[arg(long, default_value_t = Rate::PER_TOKEN.per_sec, env = "REVIEWTIME_RATE_PER_SEC")]
        rate_per_sec: u32,
        /// Writes one client address (an IPv6 /64) may send at once (0: no limit per address).
        #[arg(long, default_value_t = Rate::PER_ADDRESS.burst, env = "REVIEWTIME_ADDRESS_RATE_BURST")]
        address_rate_burst: u32,
        /// Writes per second one client address may sustain (0: no limit per address).
        #[arg(long, default_value_t = Rate::PER_ADDRESS.per_sec, env = "REVIEWTIME_ADDRESS_RATE_PER_SEC")]
        address_rate_per_sec: u32,
        /// Behind a reverse proxy: the header holding the client's address
        /// (e.g. X-Forwarded-For, last entry). Only when clients cannot reach
        /// the server but through that proxy.
        #[arg(long, env = "REVIEWTIME_CLIENT_ADDRESS_HEADER")]
        client_address_header: Option<axum::http::HeaderName>,
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
    /// Copy an SQLite database (users, tokens, sessions, activities) into
    /// PostgreSQL. Stop the servers using the source first.
    Migrate {
        /// The PostgreSQL database to copy into (its schema is created).
        #[arg(long)]
        to: String,
        /// The SQLite file to copy. Default: --database if it is SQLite,
        /// else reviewtime.sqlite3 in --data.
        #[arg(long)]
        from: Option<String>,
        /// Replace whatever the target holds (it is emptied first).
        #[arg(long)]
        force: bool,
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
    /// Revoke a credential by its public id (as `token issue` and `token list` print it).
    Revoke {
        /// The credential's id.
        id: String,
    },
    /// List a user's credentials: public id, kind, created, revoked.
    List {
        /// The user's name.
        #[arg(long)]
        user: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn open(cli: &Cli) -> Result<std::sync::Arc<dyn Store>, String> {
    let location = location(cli)?;
    location
        .open(cli.pool_size)
        .await
        .map_err(|e| format!("{location}: {e}"))
}

fn location(cli: &Cli) -> Result<Location, String> {
    Location::parse(cli.database.as_deref(), &cli.data).map_err(|e| e.to_string())
}

async fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Serve {
            addr,
            exit_after,
            rate_burst,
            rate_per_sec,
            address_rate_burst,
            address_rate_per_sec,
            client_address_header,
        } => serve(ServeOptions {
            addr: *addr,
            database: location(&cli)?,
            data: cli.data.clone(),
            pool_size: cli.pool_size,
            exit_after: exit_after.map(std::time::Duration::from_secs),
            rate_per_token: Rate {
                burst: *rate_burst,
                per_sec: *rate_per_sec,
            },
            rate_per_address: Rate {
                burst: *address_rate_burst,
                per_sec: *address_rate_per_sec,
            },
            address_header: client_address_header.clone(),
        })
        .await
        .map_err(|e| e.to_string()),
        Command::User {
            command: UserCommand::Add { name, server },
        } => {
            let store = open(&cli).await?;
            let pairing = add_user(store.as_ref(), name, server)
                .await
                .map_err(|e| format!("cannot create user {name}: {e}"))?;
            println!("PAIRING {}", pairing.to_link());
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Issue { user, kind },
        } => {
            let store = open(&cli).await?;
            let id = store
                .user_id(user)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user called {user}"))?;
            let kind = match kind {
                TokenKind::Api => auth::Kind::Api,
                TokenKind::Beacon => auth::Kind::Beacon,
            };
            let issued = auth::issue(store.as_ref(), id, kind, now_ms())
                .await
                .map_err(|e| e.to_string())?;
            println!("id {}", issued.id);
            println!("secret {}", issued.secret);
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Revoke { id },
        } => {
            let store = open(&cli).await?;
            if store
                .revoke_credential(id, now_ms())
                .await
                .map_err(|e| e.to_string())?
            {
                println!("revoked {id}");
                Ok(())
            } else {
                Err(format!("no live credential with id {id}"))
            }
        }
        Command::Token {
            command: TokenCommand::List { user },
        } => {
            let store = open(&cli).await?;
            let id = store
                .user_id(user)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user called {user}"))?;
            for c in store.credentials(id).await.map_err(|e| e.to_string())? {
                let state = match c.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "live".to_string(),
                };
                println!(
                    "{} {} created {} {state}",
                    c.id,
                    c.kind.as_str(),
                    c.created_at
                );
            }
            Ok(())
        }
        Command::Migrate { to, from, force } => {
            // Without --from: the SQLite database --database names, or else
            // the one in --data (--database may well be the target already).
            let source = match from {
                Some(from) => Location::parse(Some(from), &cli.data),
                None => match Location::parse(cli.database.as_deref(), &cli.data) {
                    Ok(Location::Postgres(_)) => Location::parse(None, &cli.data),
                    other => other,
                },
            }
            .map_err(|e| e.to_string())?;
            let Location::Sqlite(source) = source else {
                return Err("the source must be an SQLite database (--from FILE)".into());
            };
            let target = Location::parse(Some(to), &cli.data).map_err(|e| e.to_string())?;
            let Location::Postgres(url) = &target else {
                return Err("the target must be a postgres:// URL (--to URL)".into());
            };
            match migrate::sqlite_to_postgres(&source, url, *force).await {
                Ok(report) => {
                    if let Some(old) = report.replaced {
                        println!("replaced {old} in {target}");
                    }
                    println!(
                        "copied {} from sqlite:{} to {target}",
                        report.copied,
                        source.display()
                    );
                    Ok(())
                }
                Err(MigrateError::Store(StoreError::Location(why))) => Err(why),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}
