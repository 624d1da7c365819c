//! The protocol's limits on an activity, applied when it is queued: a value
//! the core can make valid is made valid (with a visible marker), so one odd
//! file name never sinks a batch; one it cannot is refused with the reason.

use reviewtime_protocol::{routes::MAX_FIELD_LEN, Activity, ActivityKind};

/// Marks a path shortened to fit [`MAX_FIELD_LEN`].
pub const SHORTENED: &str = "…[shortened]";

/// `activity` within the protocol's limits, or it back with the reason it
/// cannot be. A file path (git allows any bytes but NUL) has its control
/// characters escaped (`\t`, `\n`, `\u{1b}`) and, past the limit, is cut at
/// a character boundary and marked with [`SHORTENED`]; an empty path is an
/// unknown one.
pub fn fit(mut activity: Activity) -> Result<Activity, (Activity, String)> {
    if let ActivityKind::FileViewed { path } = &mut activity.kind {
        if let Some(p) = path.take() {
            *path = fit_path(&p);
        }
    }
    match reviewtime_protocol::check_activity_fields(&activity) {
        Ok(()) => Ok(activity),
        Err(e) => {
            let reason = e.to_string();
            Err((activity, reason))
        }
    }
}

fn fit_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let mut text = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    if text.len() > MAX_FIELD_LEN {
        let mut end = MAX_FIELD_LEN - SHORTENED.len();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(SHORTENED);
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewed(path: &str) -> Activity {
        Activity {
            id: "a-12345678".into(),
            session_id: "s-12345678".into(),
            at: 1_700_000_000_000,
            kind: ActivityKind::FileViewed {
                path: Some(path.into()),
            },
        }
    }

    fn path_of(a: &Activity) -> Option<&str> {
        match &a.kind {
            ActivityKind::FileViewed { path } => path.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn paths_git_allows_are_made_to_fit() {
        let long = "d/".repeat(400) + "é.rs";
        let a = fit(viewed(&long)).expect("fits");
        let p = path_of(&a).expect("a path");
        assert!(
            p.len() <= MAX_FIELD_LEN && p.ends_with(SHORTENED),
            "{}",
            p.len()
        );
        assert!(long.starts_with(p.trim_end_matches(SHORTENED)));

        let a = fit(viewed("src/a\tb\nc.rs")).expect("fits");
        assert_eq!(path_of(&a), Some("src/a\\tb\\nc.rs"));

        let a = fit(viewed("")).expect("fits");
        assert_eq!(path_of(&a), None, "an empty path is an unknown one");

        // Multi-byte characters at the cut stay whole.
        let a = fit(viewed(&"é".repeat(600))).expect("fits");
        assert!(path_of(&a).is_some_and(|p| p.len() <= MAX_FIELD_LEN));

        let a = fit(viewed("src/lib.rs")).expect("fits");
        assert_eq!(path_of(&a), Some("src/lib.rs"), "a valid path is untouched");
    }

    #[test]
    fn what_cannot_fit_is_refused_with_the_reason() {
        let mut a = viewed("src/lib.rs");
        a.session_id = "x".repeat(MAX_FIELD_LEN + 1);
        let (back, reason) = fit(a).expect_err("cannot be made to fit");
        assert_eq!(back.id, "a-12345678");
        assert!(reason.contains("session"), "{reason}");
    }
}
