//! Where the data lives: `--database` (a `postgres://` URL, a `sqlite:` URL
//! or a file path) or, without it, the SQLite file in `--data`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{postgres, sqlite, Backend, Store, StoreError};

/// Where the data lives, as chosen by `--database` / `--data`.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

/// `--database` names neither a file nor a database URL we know.
#[derive(Debug, thiserror::Error)]
#[error("--database must be a file path, a sqlite: URL or a postgres:// URL, not {0:?}")]
pub struct BadLocation(String);

/// The SQLite file inside a data directory.
pub const SQLITE_FILE: &str = "reviewtime.sqlite3";

impl Location {
    /// Reads `--database`: a `postgres://` or `postgresql://` URL, a
    /// `sqlite:` URL (`sqlite:path` or `sqlite://path`), or a plain file
    /// path. Without one, the SQLite file in the `data` directory.
    pub fn parse(database: Option<&str>, data: &Path) -> Result<Self, BadLocation> {
        let Some(text) = database.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Location::Sqlite(data.join(SQLITE_FILE)));
        };
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Location::Postgres(text.to_string()));
        }
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(BadLocation(text.to_string()));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if text.contains("://") {
            return Err(BadLocation(text.to_string()));
        }
        Ok(Location::Sqlite(PathBuf::from(text)))
    }

    /// The backend this location is served by.
    pub fn backend(&self) -> Backend {
        match self {
            Location::Sqlite(_) => Backend::Sqlite,
            Location::Postgres(_) => Backend::Postgres,
        }
    }

    /// Opens the store, creating and migrating its schema as needed.
    pub async fn open(&self, pool_size: usize) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            Location::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path)?),
            Location::Postgres(url) => Arc::new(postgres::PgStore::connect(url, pool_size).await?),
        })
    }
}

/// Shown in logs: a URL's password is never printed.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Location::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, tail) = match rest.split_once('@') {
        Some((auth, tail)) if !auth.contains('/') => (auth, tail),
        _ => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{tail}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_read_from_paths_and_urls() {
        let data = Path::new("data");
        assert_eq!(
            Location::parse(None, data).ok(),
            Some(Location::Sqlite(PathBuf::from("data/reviewtime.sqlite3")))
        );
        assert_eq!(
            Location::parse(Some("sqlite:///var/rt.db"), data).ok(),
            Some(Location::Sqlite(PathBuf::from("/var/rt.db")))
        );
        assert_eq!(
            Location::parse(Some("sqlite:rt.db"), data).ok(),
            Some(Location::Sqlite(PathBuf::from("rt.db")))
        );
        assert_eq!(
            Location::parse(Some("./rt.db"), data).ok(),
            Some(Location::Sqlite(PathBuf::from("./rt.db")))
        );
        assert_eq!(
            Location::parse(Some("postgres://u@h/db"), data).ok(),
            Some(Location::Postgres("postgres://u@h/db".into()))
        );
        assert!(Location::parse(Some("mysql://h/db"), data).is_err());
        assert!(Location::parse(Some("sqlite:"), data).is_err());
    }

    #[test]
    fn passwords_never_reach_the_log() {
        let l = Location::Postgres("postgres://rt:hunter2@db:5432/rt".into());
        assert_eq!(l.to_string(), "postgres://rt:***@db:5432/rt");
    }
}
