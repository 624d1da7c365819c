//! API tokens and beacon keys: random, shown once, stored only as SHA-256
//! hashes. This module makes and hashes secrets; the [`Store`] keeps the hashes.

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
    /// Short public id, for listing and revoking.
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

/// Makes a fresh random credential of `kind` (not yet stored).
pub fn generate(kind: Kind) -> Result<Issued, ServerError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| ServerError::Random(e.to_string()))?;
    let secret = format!("{}{}", kind.prefix(), hex::encode(bytes));
    let id = secret[3..11].to_string();
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
