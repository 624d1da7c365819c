//! API tokens and beacon keys: random, shown once, stored only as SHA-256
//! hashes beside a public id drawn separately (it shares nothing with the
//! secret). This module makes and hashes secrets; the [`Store`] keeps the hashes.

use sha2::{Digest, Sha256};

use crate::error::ServerError;
use crate::store::{NewCredential, Store, StoreError, UserId};

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Read and write the user's data (`Authorization: Bearer`).
    Api,
    /// Only record session ends and activities, through the beacon endpoint.
    Beacon,
}

impl Kind {
    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Api => "api",
            Kind::Beacon => "beacon",
        }
    }
    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "api" => Some(Kind::Api),
            "beacon" => Some(Kind::Beacon),
            _ => None,
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            Kind::Api => "rt_",
            Kind::Beacon => "rb_",
        }
    }
}

/// A newly made credential: the secret exists only in this value; the store
/// gets [`Issued::stored`].
#[derive(Debug, Clone)]
pub struct Issued {
    /// Public id, for listing and revoking: 16 hex characters drawn on
    /// their own, so knowing it tells nothing about the secret.
    pub id: String,
    /// The secret itself.
    pub secret: String,
    /// What it may do.
    pub kind: Kind,
}

impl Issued {
    /// What the store keeps: id, kind and the secret's hash.
    pub fn stored(&self) -> NewCredential {
        NewCredential {
            id: self.id.clone(),
            hash: hash(&self.secret),
            kind: self.kind,
        }
    }
}

/// The hash stored for `secret`.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `n` random bytes from the OS, hex-encoded.
pub fn random_hex(n: usize) -> Result<String, ServerError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| ServerError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Makes a fresh random credential of `kind` (not yet stored): a 192-bit
/// secret, and a 64-bit public id drawn separately from it.
pub fn generate(kind: Kind) -> Result<Issued, ServerError> {
    let secret = format!("{}{}", kind.prefix(), random_hex(24)?);
    let id = random_hex(8)?;
    Ok(Issued { id, secret, kind })
}

/// Issues and stores a credential of `kind` for `user`.
pub async fn issue(
    store: &dyn Store,
    user: UserId,
    kind: Kind,
    now: i64,
) -> Result<Issued, ServerError> {
    let issued = generate(kind)?;
    store.add_credential(user, &issued.stored(), now).await?;
    Ok(issued)
}

/// The user (id, name) a live credential of `kind` belongs to.
pub async fn lookup(
    store: &dyn Store,
    secret: &str,
    kind: Kind,
) -> Result<Option<(UserId, String)>, StoreError> {
    store.credential_owner(&hash(secret), kind).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_id_shares_nothing_with_its_secret() {
        for _ in 0..64 {
            let issued = generate(Kind::Api).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(issued.id.len(), 16);
            let body = issued.secret.trim_start_matches("rt_");
            assert_eq!(body.len(), 48);
            // No 4-character run of the id appears in the secret or its hash
            // beyond chance (a 4-hex run matches by chance with p ≈ 45/65536).
            assert!(!body.contains(&issued.id[..8]), "{issued:?}");
            assert!(!body.contains(&issued.id[8..]), "{issued:?}");
            assert!(!hash(&issued.secret).contains(&issued.id[..8]));
        }
    }
}
