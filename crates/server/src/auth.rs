//! API tokens and beacon keys: random, shown once, stored only as SHA-256 hashes.

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::error::ServerError;

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Read and write the user's data (`Authorization: Bearer`).
    Api,
    /// Only record session ends and activities, through the beacon endpoint.
    Beacon,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Api => "api",
            Kind::Beacon => "beacon",
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            Kind::Api => "rt_",
            Kind::Beacon => "rb_",
        }
    }
}

/// A newly issued credential: the secret exists only in this value.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Short public id, for listing and revoking.
    pub id: String,
    /// The secret itself.
    pub secret: String,
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Issues a credential of `kind` for `user_id`.
pub fn issue(conn: &Connection, user_id: i64, kind: Kind, now: i64) -> Result<Issued, ServerError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| ServerError::Random(e.to_string()))?;
    let secret = format!("{}{}", kind.prefix(), hex::encode(bytes));
    let id = secret[3..11].to_string();
    conn.execute(
        "INSERT INTO tokens (id, hash, user_id, kind, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, hash(&secret), user_id, kind.as_str(), now],
    )?;
    Ok(Issued { id, secret })
}

/// The user a live (not revoked) credential of `kind` belongs to.
pub fn lookup(
    conn: &Connection,
    secret: &str,
    kind: Kind,
) -> rusqlite::Result<Option<(i64, String)>> {
    conn.query_row(
        "SELECT u.id, u.name FROM tokens t JOIN users u ON u.id = t.user_id
         WHERE t.hash = ?1 AND t.kind = ?2 AND t.revoked_at IS NULL",
        params![hash(secret), kind.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Revokes the credential with public id `id`; whether one was revoked.
pub fn revoke(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )?;
    Ok(n > 0)
}
