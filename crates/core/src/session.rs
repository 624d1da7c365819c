//! Review sessions: one pull request viewed in one tab, with its wall and
//! active time. Active time runs only for the one tab that is visible in the
//! focused window while the user is not idle, so two tabs on the same PR
//! never count the same seconds twice.

use reviewtime_protocol::{PrTab, PullRef, SessionRecord};
use serde::{Deserialize, Serialize};

use crate::UnixMillis;

/// A browser tab id, as Chrome numbers them.
pub type TabId = i64;

/// What a content script sees: the pull request (if the page is one) and which of its tabs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrPage {
    /// The pull request.
    pub pr: PullRef,
    /// Conversation, Commits, Checks or Files, when the URL says.
    pub tab: Option<PrTab>,
}

/// An open session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabSession {
    /// Client-generated id.
    pub id: String,
    /// The pull request.
    pub pr: PullRef,
    /// The PR tab last seen.
    pub page_tab: Option<PrTab>,
    /// Start.
    pub started_at: UnixMillis,
    /// Last sign of the user (page shown, input, action).
    pub last_activity_at: UnixMillis,
    /// Active milliseconds settled so far.
    pub active_ms: i64,
    /// Since when active time is running, if it is.
    pub active_since: Option<UnixMillis>,
    /// Whether the page is visible.
    pub visible: bool,
    /// Revision of the last record produced.
    pub revision: u64,
    /// When its state was last queued for the server.
    #[serde(default)]
    pub reported_at: UnixMillis,
}

impl TabSession {
    /// A session starting now.
    pub fn start(id: String, page: &PrPage, visible: bool, now: UnixMillis) -> Self {
        TabSession {
            id,
            pr: page.pr.clone(),
            page_tab: page.tab,
            started_at: now,
            last_activity_at: now,
            active_ms: 0,
            active_since: None,
            visible,
            revision: 0,
            reported_at: now,
        }
    }

    /// Starts or stops the active clock at `now`.
    pub fn set_active(&mut self, active: bool, now: UnixMillis) {
        match (self.active_since, active) {
            (None, true) => self.active_since = Some(now),
            (Some(since), false) => {
                self.active_ms += (now - since).max(0);
                self.active_since = None;
            }
            _ => {}
        }
    }

    /// Active milliseconds up to `now`.
    pub fn active_at(&self, now: UnixMillis) -> i64 {
        self.active_ms + self.active_since.map_or(0, |s| (now - s).max(0))
    }

    /// When the idle limit ends this session.
    pub fn idle_deadline(&self, idle_limit_ms: i64) -> UnixMillis {
        self.last_activity_at.saturating_add(idle_limit_ms)
    }

    /// The record of this session at `at`, ended or not, with the next revision.
    pub fn record(&mut self, at: UnixMillis, ended: bool) -> SessionRecord {
        self.revision += 1;
        let at = at.max(self.started_at);
        let wall_ms = at - self.started_at;
        let active_ms = self.active_at(at).min(wall_ms);
        SessionRecord {
            id: self.id.clone(),
            pr: self.pr.clone(),
            started_at: self.started_at,
            ended_at: ended.then_some(at),
            wall_secs: (wall_ms / 1000) as u64,
            active_secs: (active_ms / 1000) as u64,
            revision: self.revision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> PrPage {
        PrPage {
            pr: PullRef {
                host: "github.com".into(),
                owner: "o".into(),
                repo: "r".into(),
                number: 1,
            },
            tab: None,
        }
    }

    #[test]
    fn active_time_counts_only_while_active() {
        let mut s = TabSession::start("s".into(), &page(), true, 0);
        s.set_active(true, 1_000);
        s.set_active(true, 2_000); // no double start
        s.set_active(false, 5_000);
        s.set_active(false, 9_000);
        s.set_active(true, 10_000);
        assert_eq!(s.active_at(12_500), 6_500);
        let r = s.record(12_500, true);
        assert_eq!(
            (r.wall_secs, r.active_secs, r.ended_at, r.revision),
            (12, 6, Some(12_500), 1)
        );
    }
}
