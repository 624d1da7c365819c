//! What one record's text fields may hold: the item-level limits that do not
//! depend on anyone's clock, checked the same way by the client (before it
//! queues a record, so it never sends one the server would refuse) and by
//! the server (before it stores one).
//!
//! The rules are few on purpose: a text field is non-empty, at most
//! [`MAX_FIELD_LEN`] bytes of UTF-8, and holds no control character
//! (`char::is_control`: tab, newline, NUL, DEL, the C1 range). Ids are
//! otherwise opaque. Limits on times (which need the server's clock) and on
//! counters stay with the server.
//!
//! Some of these are legal where the value comes from: git allows a tab or a
//! newline in a file path, and a path of any length. Such a record cannot be
//! stored as sent; the check says which field and why, so that the client
//! can set that one record aside and deliver the rest.

use std::fmt;

use crate::routes::MAX_FIELD_LEN;
use crate::{Activity, ActivityKind, SessionRecord};

/// A text field a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// An activity's or a session's `id`.
    Id,
    /// An activity's `session_id` (or a query's or a beacon's).
    SessionId,
    /// A viewed file's `path`.
    Path,
    /// A pull request's `host`.
    Host,
    /// A pull request's `owner`.
    Owner,
    /// A pull request's `repo`.
    Repo,
}

impl Field {
    /// The field's name on the wire, e.g. `session_id` or `pr.host`.
    pub fn wire_name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::SessionId => "session_id",
            Field::Path => "path",
            Field::Host => "pr.host",
            Field::Owner => "pr.owner",
            Field::Repo => "pr.repo",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Id => "the id",
            Field::SessionId => "the session id",
            Field::Path => "the file path",
            Field::Host => "the host",
            Field::Owner => "the repository owner",
            Field::Repo => "the repository name",
        })
    }
}

/// What is wrong with a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldProblem {
    /// It is the empty string.
    Empty,
    /// It is longer than [`MAX_FIELD_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// It holds a control character (a tab, a newline, NUL…).
    ControlCharacter,
}

/// A text field that cannot be stored: which one, and why. Its
/// [`Display`](fmt::Display) says so in words; [`FieldError::code`] is the
/// stable code the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldError {
    /// The field.
    pub field: Field,
    /// What is wrong with it.
    pub problem: FieldProblem,
}

impl FieldError {
    /// The stable, machine-readable code: `field_empty`, `field_too_long`
    /// or `field_control_character`.
    pub fn code(&self) -> &'static str {
        match self.problem {
            FieldProblem::Empty => "field_empty",
            FieldProblem::TooLong { .. } => "field_too_long",
            FieldProblem::ControlCharacter => "field_control_character",
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (field, name) = (self.field, self.field.wire_name());
        match self.problem {
            FieldProblem::Empty => write!(f, "{field} ({name}) is empty"),
            FieldProblem::TooLong { len } => write!(
                f,
                "{field} ({name}) is {len} bytes long; the limit is {MAX_FIELD_LEN}"
            ),
            FieldProblem::ControlCharacter => write!(
                f,
                "{field} ({name}) contains a control character such as a tab or a newline"
            ),
        }
    }
}

impl std::error::Error for FieldError {}

/// Checks one text field: non-empty, at most [`MAX_FIELD_LEN`] bytes, no
/// control character (PostgreSQL's text cannot even hold NUL).
pub fn check_field(field: Field, value: &str) -> Result<(), FieldError> {
    let problem = if value.is_empty() {
        FieldProblem::Empty
    } else if value.len() > MAX_FIELD_LEN {
        FieldProblem::TooLong { len: value.len() }
    } else if value.chars().any(char::is_control) {
        FieldProblem::ControlCharacter
    } else {
        return Ok(());
    };
    Err(FieldError { field, problem })
}

/// Checks an activity's text fields — `id`, `session_id`, and a viewed
/// file's `path` when present — and reports the first that cannot be
/// stored. An activity that passes may still be refused for its time.
pub fn check_activity_fields(a: &Activity) -> Result<(), FieldError> {
    check_field(Field::Id, &a.id)?;
    check_field(Field::SessionId, &a.session_id)?;
    if let ActivityKind::FileViewed { path: Some(path) } = &a.kind {
        check_field(Field::Path, path)?;
    }
    Ok(())
}

/// Checks a session record's text fields — `id`, `pr.host`, `pr.owner`,
/// `pr.repo` — and reports the first that cannot be stored. A record that
/// passes may still be refused for its times or counters.
pub fn check_session_fields(s: &SessionRecord) -> Result<(), FieldError> {
    check_field(Field::Id, &s.id)?;
    check_field(Field::Host, &s.pr.host)?;
    check_field(Field::Owner, &s.pr.owner)?;
    check_field(Field::Repo, &s.pr.repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewed(path: &str) -> Activity {
        Activity {
            id: "inst-a1".into(),
            session_id: "inst-s1".into(),
            at: 1_700_000_000_000,
            kind: ActivityKind::FileViewed {
                path: Some(path.into()),
            },
        }
    }

    fn problem(a: &Activity) -> Option<(Field, FieldProblem, &'static str)> {
        check_activity_fields(a)
            .err()
            .map(|e| (e.field, e.problem, e.code()))
    }

    #[test]
    fn a_file_path_git_allows_but_the_server_cannot_store_is_named_with_its_reason() {
        assert_eq!(problem(&viewed("src/lib.rs")), None);
        assert_eq!(problem(&viewed(&"é".repeat(256))), None, "512 bytes fit");
        assert_eq!(
            problem(&viewed(&"é".repeat(257))),
            Some((
                Field::Path,
                FieldProblem::TooLong { len: 514 },
                "field_too_long"
            ))
        );
        assert_eq!(
            problem(&viewed("docs/a\tb.md")),
            Some((
                Field::Path,
                FieldProblem::ControlCharacter,
                "field_control_character"
            ))
        );
        assert_eq!(
            problem(&viewed("")),
            Some((Field::Path, FieldProblem::Empty, "field_empty"))
        );
        let unnamed = Activity {
            kind: ActivityKind::FileViewed { path: None },
            ..viewed("")
        };
        assert_eq!(problem(&unnamed), None, "a path the page did not show");
    }

    #[test]
    fn the_first_bad_field_is_reported_in_words() {
        let mut a = viewed("a\nb");
        a.session_id = String::new();
        let e = check_activity_fields(&a).err();
        assert_eq!(e.map(|e| e.field), Some(Field::SessionId));
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("the session id (session_id) is empty")
        );
        let long = viewed(&"x".repeat(MAX_FIELD_LEN + 1));
        assert_eq!(
            check_activity_fields(&long).map_err(|e| e.to_string()),
            Err("the file path (path) is 513 bytes long; the limit is 512".into())
        );
        a.id = "a\u{0}".into();
        assert_eq!(
            check_activity_fields(&a).map_err(|e| e.to_string()),
            Err("the id (id) contains a control character such as a tab or a newline".into())
        );
    }

    #[test]
    fn a_session_is_checked_on_its_pull_request_names() {
        let mut s = SessionRecord {
            id: "inst-s1".into(),
            pr: crate::PullRef {
                host: "github.com".into(),
                owner: "octo".into(),
                repo: "widgets".into(),
                number: 7,
            },
            started_at: 1_700_000_000_000,
            ended_at: None,
            wall_secs: 0,
            active_secs: 0,
            revision: 1,
        };
        assert_eq!(check_session_fields(&s), Ok(()));
        s.pr.repo = "r".repeat(MAX_FIELD_LEN + 1);
        assert_eq!(
            check_session_fields(&s).map_err(|e| (e.field, e.code())),
            Err((Field::Repo, "field_too_long"))
        );
    }
}
