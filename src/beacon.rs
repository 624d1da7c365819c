//! The payloads a content script sends with `navigator.sendBeacon` on pagehide.

use reviewtime_core::engine::BeaconPreview;
use reviewtime_core::protocol::{routes, BeaconPayload};

/// JSON bodies for the beacon endpoint, each under the 64 KiB beacon limit:
/// the session end first, activities after it as room allows.
pub fn bodies(key: &str, preview: &BeaconPreview) -> Vec<String> {
    let limit = routes::MAX_BEACON_BYTES - 1024;
    let mut out = Vec::new();
    let mut current = BeaconPayload {
        key: key.to_string(),
        sessions: vec![preview.session.clone()],
        activities: Vec::new(),
    };
    let mut size = serde_json::to_string(&current)
        .map(|s| s.len())
        .unwrap_or(0);
    for a in &preview.activities {
        let item = serde_json::to_string(a).map(|s| s.len() + 1).unwrap_or(0);
        if size + item > limit && (!current.activities.is_empty() || !current.sessions.is_empty()) {
            out.extend(serde_json::to_string(&current).ok());
            current = BeaconPayload {
                key: key.to_string(),
                sessions: Vec::new(),
                activities: Vec::new(),
            };
            size = serde_json::to_string(&current)
                .map(|s| s.len())
                .unwrap_or(0);
        }
        current.activities.push(a.clone());
        size += item;
    }
    out.extend(serde_json::to_string(&current).ok());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reviewtime_core::protocol::{Activity, ActivityKind, PullRef, SessionRecord};

    #[test]
    fn large_payloads_split_under_the_beacon_limit_and_keep_everything() {
        let session = SessionRecord {
            id: "s".into(),
            pr: PullRef {
                host: "h".into(),
                owner: "o".into(),
                repo: "r".into(),
                number: 1,
            },
            started_at: 1,
            ended_at: Some(2),
            wall_secs: 0,
            active_secs: 0,
            revision: 2,
        };
        let activities: Vec<Activity> = (0..2000)
            .map(|i| Activity {
                id: format!("a{i}"),
                session_id: "s".into(),
                at: 1,
                kind: ActivityKind::FileViewed {
                    path: Some(format!("src/some/rather/long/path/file{i}.rs")),
                },
            })
            .collect();
        let preview = BeaconPreview {
            session,
            activities,
        };
        let parts = bodies("rb_key", &preview);
        assert!(parts.len() > 1);
        let mut seen = 0;
        for (i, p) in parts.iter().enumerate() {
            assert!(
                p.len() <= routes::MAX_BEACON_BYTES,
                "part {i} is {} bytes",
                p.len()
            );
            let parsed: BeaconPayload =
                serde_json::from_str(p).unwrap_or_else(|e| panic!("part {i}: {e}"));
            assert_eq!(parsed.sessions.len(), usize::from(i == 0));
            seen += parsed.activities.len();
        }
        assert_eq!(seen, 2000);
    }
}
