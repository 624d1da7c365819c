//! Copying an SQLite database into PostgreSQL, for `migrate`: one
//! transaction, every id kept, bulk inserts from arrays (`unnest`).

use super::{counts, pg, PgStore, LOCK};
use crate::auth::Kind;
use crate::migrate::{ActivityRow, SessionRow, TokenRow};
use crate::store::sqlite::Export;
use crate::store::{Counts, StoreError};

impl PgStore {
    /// Copies everything `source` holds into this database, in one
    /// transaction, keeping user ids and credential hashes (so every token
    /// keeps working). Refuses with [`Imported::NotEmpty`] when the target
    /// holds any row, unless `force`, which first empties it.
    pub async fn import(&self, source: &Export, force: bool) -> Result<Imported, StoreError> {
        const CHUNK: usize = 2_000;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute(LOCK, &[]).await.map_err(pg)?;
        let before = counts(&tx).await?;
        if !before.is_empty() {
            if !force {
                return Ok(Imported::NotEmpty(before));
            }
            tx.batch_execute("TRUNCATE activities, sessions, tokens, users")
                .await
                .map_err(pg)?;
        }
        let users = source.users()?;
        tx.execute(
            "INSERT INTO users (id, name, created_at) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])",
            &[
                &users.iter().map(|u| u.id).collect::<Vec<_>>(),
                &users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
                &users.iter().map(|u| u.created_at).collect::<Vec<_>>(),
            ],
        )
        .await
        .map_err(pg)?;
        tx.execute(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM users",
            &[],
        )
        .await
        .map_err(pg)?;
        let tokens: Vec<TokenRow> = source.tokens()?;
        for t in &tokens {
            if Kind::parse(&t.kind).is_none() {
                return Err(StoreError::Corrupt(format!(
                    "credential {} has kind {}",
                    t.id, t.kind
                )));
            }
        }
        tx.execute(
            "INSERT INTO tokens (id, hash, user_id, kind, created_at, revoked_at)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[])",
            &[
                &tokens.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
                &tokens.iter().map(|t| t.hash.as_str()).collect::<Vec<_>>(),
                &tokens.iter().map(|t| t.user_id).collect::<Vec<_>>(),
                &tokens.iter().map(|t| t.kind.as_str()).collect::<Vec<_>>(),
                &tokens.iter().map(|t| t.created_at).collect::<Vec<_>>(),
                &tokens.iter().map(|t| t.revoked_at).collect::<Vec<_>>(),
            ],
        )
        .await
        .map_err(pg)?;
        let insert_sessions = tx
            .prepare(
                "INSERT INTO sessions (user_id, id, host, owner, repo, number, started_at, ended_at, wall_secs, active_secs, revision, updated_at,
                                       auth_revision, beacon_hash, beacon_revision)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
                                      $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::text[],
                                      $15::bigint[])",
            )
            .await
            .map_err(pg)?;
        let mut after = None;
        loop {
            let rows: Vec<SessionRow> = source.sessions(after.as_ref(), CHUNK)?;
            let Some(last) = rows.last() else { break };
            after = Some((last.user_id, last.id.clone()));
            let col = |f: fn(&SessionRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
            let text = |f: fn(&SessionRow) -> &str| rows.iter().map(f).collect::<Vec<_>>();
            tx.execute(
                &insert_sessions,
                &[
                    &col(|r| r.user_id),
                    &text(|r| &r.id),
                    &text(|r| &r.host),
                    &text(|r| &r.owner),
                    &text(|r| &r.repo),
                    &col(|r| r.number),
                    &col(|r| r.started_at),
                    &rows.iter().map(|r| r.ended_at).collect::<Vec<_>>(),
                    &col(|r| r.wall_secs),
                    &col(|r| r.active_secs),
                    &col(|r| r.revision),
                    &col(|r| r.updated_at),
                    &col(|r| r.auth_revision),
                    &rows
                        .iter()
                        .map(|r| r.beacon_hash.as_deref())
                        .collect::<Vec<_>>(),
                    &col(|r| r.beacon_revision),
                ],
            )
            .await
            .map_err(pg)?;
        }
        let insert_activities = tx
            .prepare(
                "INSERT INTO activities (user_id, id, session_id, at, kind, body, received_at)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])",
            )
            .await
            .map_err(pg)?;
        let mut after = None;
        loop {
            let rows: Vec<ActivityRow> = source.activities(after.as_ref(), CHUNK)?;
            let Some(last) = rows.last() else { break };
            after = Some((last.user_id, last.id.clone()));
            let col = |f: fn(&ActivityRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
            let text = |f: fn(&ActivityRow) -> &str| rows.iter().map(f).collect::<Vec<_>>();
            tx.execute(
                &insert_activities,
                &[
                    &col(|r| r.user_id),
                    &text(|r| &r.id),
                    &text(|r| &r.session_id),
                    &col(|r| r.at),
                    &text(|r| &r.kind),
                    &text(|r| &r.body),
                    &col(|r| r.received_at),
                ],
            )
            .await
            .map_err(pg)?;
        }
        let after = counts(&tx).await?;
        tx.commit().await.map_err(pg)?;
        Ok(Imported::Copied {
            replaced: (!before.is_empty()).then_some(before),
            now: after,
        })
    }
}

/// What [`PgStore::import`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// Nothing: the target holds these rows and `force` was not given.
    NotEmpty(Counts),
    /// Copied; the target now holds `now`, having held `replaced` before.
    Copied {
        /// What the target held and lost, when it was not empty.
        replaced: Option<Counts>,
        /// What it holds now.
        now: Counts,
    },
}
