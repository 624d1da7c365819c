//! Request and response bodies.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Time is always a value passed in, never read.
pub type UnixMillis = i64;

/// A pull request: `host/owner/name#number`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PullRef {
    /// Host name, e.g. `github.com` or a GitHub Enterprise host (may carry a port).
    pub host: String,
    /// Repository owner (user or organisation).
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// Pull-request number.
    pub number: u64,
}

impl std::fmt::Display for PullRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}#{}", self.owner, self.repo, self.number)
    }
}

/// A review session's state as the client last knew it.
///
/// The server keeps, per id, the record with the highest `revision`; once it
/// holds an ended record, no later "active" record reopens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Client-generated id, unique per user.
    pub id: String,
    /// The pull request under review.
    pub pr: PullRef,
    /// When the session started.
    pub started_at: UnixMillis,
    /// When it ended; `None` while in progress.
    pub ended_at: Option<UnixMillis>,
    /// Seconds from start to end (or to the last update).
    pub wall_secs: u64,
    /// Seconds the page was visible, focused and the user not idle.
    pub active_secs: u64,
    /// Monotonic per session; a higher revision supersedes a lower one.
    pub revision: u64,
}

/// Which tab of a pull request page is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrTab {
    /// The discussion.
    Conversation,
    /// The commit list.
    Commits,
    /// CI checks.
    Checks,
    /// The diff.
    Files,
}

/// A reviewer's verdict when submitting a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewVerdict {
    /// Approve.
    Approve,
    /// Request changes.
    RequestChanges,
    /// Comment only.
    Comment,
}

/// What the reviewer did. On the wire it is flat — `{"type": "review_submitted",
/// "verdict": "approve"}` — read through [`FlatKind`] rather than serde's
/// internally tagged enums, whose buffering machinery would double the wasm's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FlatKind", into = "FlatKind")]
pub enum ActivityKind {
    /// A comment was posted.
    CommentPosted,
    /// A review was submitted.
    ReviewSubmitted {
        /// Its verdict.
        verdict: ReviewVerdict,
    },
    /// A file was marked viewed.
    FileViewed {
        /// The file's path, if the page showed it.
        path: Option<String>,
    },
    /// The reviewer switched to another tab of the pull request.
    TabSwitched {
        /// The tab now open.
        tab: PrTab,
    },
}

/// The kinds of activity, as the `type` field names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityType {
    /// See [`ActivityKind::CommentPosted`].
    CommentPosted,
    /// See [`ActivityKind::ReviewSubmitted`].
    ReviewSubmitted,
    /// See [`ActivityKind::FileViewed`].
    FileViewed,
    /// See [`ActivityKind::TabSwitched`].
    TabSwitched,
}

/// The flat wire form of an [`ActivityKind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlatKind {
    /// Which kind.
    #[serde(rename = "type")]
    pub kind: ActivityType,
    /// For reviews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<ReviewVerdict>,
    /// For viewed files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For tab switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tab: Option<PrTab>,
}

impl TryFrom<FlatKind> for ActivityKind {
    type Error = String;
    fn try_from(f: FlatKind) -> Result<Self, String> {
        Ok(match f.kind {
            ActivityType::CommentPosted => ActivityKind::CommentPosted,
            ActivityType::ReviewSubmitted => ActivityKind::ReviewSubmitted {
                verdict: f.verdict.ok_or("a submitted review needs a verdict")?,
            },
            ActivityType::FileViewed => ActivityKind::FileViewed { path: f.path },
            ActivityType::TabSwitched => ActivityKind::TabSwitched {
                tab: f.tab.ok_or("a tab switch needs the tab")?,
            },
        })
    }
}

impl From<ActivityKind> for FlatKind {
    fn from(k: ActivityKind) -> Self {
        let mut f = FlatKind {
            kind: ActivityType::CommentPosted,
            verdict: None,
            path: None,
            tab: None,
        };
        match k {
            ActivityKind::CommentPosted => {}
            ActivityKind::ReviewSubmitted { verdict } => {
                f.kind = ActivityType::ReviewSubmitted;
                f.verdict = Some(verdict);
            }
            ActivityKind::FileViewed { path } => {
                f.kind = ActivityType::FileViewed;
                f.path = path;
            }
            ActivityKind::TabSwitched { tab } => {
                f.kind = ActivityType::TabSwitched;
                f.tab = Some(tab);
            }
        }
        f
    }
}

/// One activity inside a session; on the wire its kind's fields sit beside its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FlatActivity", into = "FlatActivity")]
pub struct Activity {
    /// Client-generated id, unique per user.
    pub id: String,
    /// The session it happened in.
    pub session_id: String,
    /// When it happened.
    pub at: UnixMillis,
    /// What happened.
    pub kind: ActivityKind,
}

/// The flat wire form of an [`Activity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlatActivity {
    /// See [`Activity::id`].
    pub id: String,
    /// See [`Activity::session_id`].
    pub session_id: String,
    /// See [`Activity::at`].
    pub at: UnixMillis,
    /// Which kind.
    #[serde(rename = "type")]
    pub kind: ActivityType,
    /// For reviews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<ReviewVerdict>,
    /// For viewed files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// For tab switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tab: Option<PrTab>,
}

impl TryFrom<FlatActivity> for Activity {
    type Error = String;
    fn try_from(a: FlatActivity) -> Result<Self, String> {
        let kind = ActivityKind::try_from(FlatKind {
            kind: a.kind,
            verdict: a.verdict,
            path: a.path,
            tab: a.tab,
        })?;
        Ok(Activity {
            id: a.id,
            session_id: a.session_id,
            at: a.at,
            kind,
        })
    }
}

impl From<Activity> for FlatActivity {
    fn from(a: Activity) -> Self {
        let k = FlatKind::from(a.kind);
        FlatActivity {
            id: a.id,
            session_id: a.session_id,
            at: a.at,
            kind: k.kind,
            verdict: k.verdict,
            path: k.path,
            tab: k.tab,
        }
    }
}

/// `POST /api/v1/activities/batch` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityBatch {
    /// At most [`crate::routes::MAX_BATCH_ITEMS`].
    pub activities: Vec<Activity>,
}

/// An item the server refused because its id already holds different content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The conflicting id.
    pub id: String,
    /// Why, in words.
    pub reason: String,
}

/// An item the server refused on its own, because of what it holds (a
/// field it cannot store, a time out of range, a body that is not an
/// activity); the rest of its batch was handled as if it had not been sent.
/// Sending it again gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The refused item's id, as sent.
    pub id: String,
    /// Stable, machine-readable code, like an [`ApiError`]'s: e.g.
    /// `field_too_long`, `field_control_character`, `field_empty` (see
    /// [`crate::FieldError::code`]), `time_out_of_range`, `malformed_item`.
    pub code: String,
    /// Why, in words a user understands.
    pub reason: String,
}

/// Answer (HTTP 200) to a batch: every item sent is accounted for exactly
/// once, in exactly one of the four outcomes, so
/// `accepted + duplicates + conflicts.len() + rejected.len()` (see
/// [`BatchAck::accounted`]) equals the number of items sent. An id sent
/// twice in one batch is two items: the first occurrence is decided against
/// what is stored, the repeat against the first (a duplicate or a conflict),
/// as if they had been sent one after the other; an invalid item is
/// rejected wherever it stands and is not compared with anything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchAck {
    /// Newly stored.
    pub accepted: u32,
    /// Already stored with the same content: acknowledged, not stored twice.
    pub duplicates: u32,
    /// Same id, different content: not stored.
    #[serde(default)]
    pub conflicts: Vec<Conflict>,
    /// Refused for what they hold, one entry per item in the order sent;
    /// absent from the JSON when empty (and read as empty when absent, from
    /// a server that predates it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejected>,
}

impl BatchAck {
    /// How many items this answer accounts for; equals the number sent.
    pub fn accounted(&self) -> usize {
        self.accepted as usize
            + self.duplicates as usize
            + self.conflicts.len()
            + self.rejected.len()
    }
}

/// Answer to a session update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAck {
    /// The session as the server now holds it.
    pub session: SessionRecord,
    /// Whether this request changed anything.
    pub applied: bool,
}

/// `PUT /api/v1/sessions/{id}` body that also registers the session's
/// beacon capability: the [`SessionRecord`]'s fields, flat, and
/// `beacon_hash`. A server that predates it ignores the extra field.
///
/// The client picks a random secret per session (256 bits, e.g. 64 hex
/// characters), keeps it out of reach of content scripts except for that
/// session's own, and sends `beacon_hash` = lowercase hex SHA-256 of the
/// secret's UTF-8 bytes on its writes of the session. The first applied
/// write that carries one registers it; another hash later is refused (409
/// `beacon_hash_conflict`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPut {
    /// The session's state.
    #[serde(flatten)]
    pub session: SessionRecord,
    /// Hex SHA-256 of the session's beacon secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beacon_hash: Option<String>,
}

/// `POST /api/v1/beacon` body with a session's own capability, sent as
/// `text/plain` on pagehide: it may record that one session (an end or a
/// progress record) and that session's activities, nothing else, and read
/// nothing. The server refuses it (404 `unknown_session`) until an
/// authenticated write registered the session's `beacon_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionBeacon {
    /// The session this beacon speaks for.
    pub session_id: String,
    /// The secret whose SHA-256 the client registered as `beacon_hash`.
    pub beacon_secret: String,
    /// At most one record, of `session_id`.
    #[serde(default)]
    pub sessions: Vec<SessionRecord>,
    /// Activities of `session_id` only.
    #[serde(default)]
    pub activities: Vec<Activity>,
}

/// `POST /api/v1/beacon` body, sent as `text/plain` on pagehide, with the
/// user-wide beacon key.
///
/// Deprecated: the key lets a beacon write any of the user's sessions, and
/// content scripts hold it. Use [`SessionBeacon`]; the server keeps
/// accepting this form (ended sessions only, within the same bounds) until
/// the extension has switched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeaconPayload {
    /// The user's beacon key: may record session ends and activities, may read nothing.
    pub key: String,
    /// Session states to record.
    #[serde(default)]
    pub sessions: Vec<SessionRecord>,
    /// Activities to record.
    #[serde(default)]
    pub activities: Vec<Activity>,
}

/// Every error the server answers with: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable, machine-readable code, e.g. `unauthorized`, `too_large`, `bad_request`.
    pub code: String,
    /// What went wrong, in words a user understands.
    pub message: String,
}

/// `GET /api/v1/health` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `"ok"` when the server answers.
    pub status: String,
    /// Server version.
    pub version: String,
}

/// `GET /api/v1/whoami` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The user the token belongs to.
    pub user: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_put_is_a_session_record_with_one_more_field() {
        let session = SessionRecord {
            id: "s1".into(),
            pr: PullRef {
                host: "github.com".into(),
                owner: "o".into(),
                repo: "r".into(),
                number: 1,
            },
            started_at: 1,
            ended_at: None,
            wall_secs: 0,
            active_secs: 0,
            revision: 1,
        };
        let put = SessionPut {
            session: session.clone(),
            beacon_hash: Some("ab".into()),
        };
        let json = serde_json::to_value(&put).unwrap();
        assert_eq!(json["beacon_hash"], "ab");
        assert_eq!(json["revision"], 1);
        let plain: SessionRecord = serde_json::from_value(json).unwrap();
        assert_eq!(plain, session, "a record reader ignores the hash");
        let bare = serde_json::to_value(SessionPut {
            session,
            beacon_hash: None,
        })
        .unwrap();
        assert!(bare.get("beacon_hash").is_none());
    }

    #[test]
    fn a_batch_answer_lists_rejected_items_only_when_there_are_some() {
        let old: BatchAck =
            serde_json::from_str(r#"{"accepted":2,"duplicates":1,"conflicts":[]}"#).unwrap();
        assert_eq!(old.rejected, vec![], "a server that predates `rejected`");
        assert_eq!(old.accounted(), 3);
        assert!(serde_json::to_value(&old)
            .unwrap()
            .get("rejected")
            .is_none());
        let ack = BatchAck {
            accepted: 2,
            duplicates: 0,
            conflicts: vec![],
            rejected: vec![Rejected {
                id: "a3".into(),
                code: "field_too_long".into(),
                reason: "the file path (path) is 600 bytes long; the limit is 512".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&ack).unwrap(),
            serde_json::json!({"accepted":2,"duplicates":0,"conflicts":[],"rejected":[
                {"id":"a3","code":"field_too_long","reason":"the file path (path) is 600 bytes long; the limit is 512"}
            ]})
        );
        assert_eq!(ack.accounted(), 3);
    }

    #[test]
    fn activity_wire_form_is_flat_and_tagged() {
        let a = Activity {
            id: "a1".into(),
            session_id: "s1".into(),
            at: 5,
            kind: ActivityKind::ReviewSubmitted {
                verdict: ReviewVerdict::RequestChanges,
            },
        };
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id":"a1","session_id":"s1","at":5,"type":"review_submitted","verdict":"request_changes"})
        );
        let back: Activity = serde_json::from_value(json).unwrap();
        assert_eq!(back, a);
    }
}
