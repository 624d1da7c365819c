//! Review sessions and their clocks (docs/ARCHITECTURE.md invariant 11).
//!
//! A session belongs to a pull request, not to a tab: every tab showing the
//! PR shares it. It starts when a tab first shows the PR and ends when no tab
//! shows it any more, or when the user has shown no sign of presence for the
//! idle limit.
//!
//! Active time is the union of the moments the user was there: a tab of the
//! PR is the active tab of the focused window ([`Reviews::front_tab`]), its
//! page is visible, and the system is not idle. It never exceeds wall time.
//!
//! Every clock stops at the last confirmed sign of the user
//! ([`Session::last_seen`]): a session ended by the idle limit, by a lost
//! close, or because the browser quit ends there, and counts no time after.
//! Presence comes from Chrome (the front tab, the idle state, the sender of a
//! message) and from the page's own visibility and focus; input proves
//! presence only in a page that is already the visible front tab, and never
//! makes any other page active. Each browser run is an epoch: tab ids, focus
//! and idle state do not carry over ([`Reviews::new_browser_run`]).

use std::collections::BTreeMap;

use reviewtime_protocol::{PrTab, PullRef, SessionRecord};
use serde::{Deserialize, Serialize};

use crate::UnixMillis;

/// A browser tab id, as Chrome numbers them (reused across browser runs).
pub type TabId = i64;

/// What a content script sees: the pull request (if the page is one) and which of its views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrPage {
    /// The pull request (owner and repository in lower case: GitHub ignores case).
    pub pr: PullRef,
    /// The view (Conversation, Commits, Checks or Files), when the URL says.
    #[serde(alias = "tab")]
    pub view: Option<PrTab>,
}

/// The key of a pull request: host, owner, repository, number, compared without case.
pub fn pr_key(pr: &PullRef) -> String {
    format!(
        "{}/{}/{}#{}",
        pr.host.to_ascii_lowercase(),
        pr.owner.to_ascii_lowercase(),
        pr.repo.to_ascii_lowercase(),
        pr.number
    )
}

/// A tab showing a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabView {
    /// The PR's key ([`pr_key`]).
    pub pr: String,
    /// Whether its page is visible (the page's own report).
    pub visible: bool,
    /// When the engine first heard of the tab: a list of open tabs read
    /// before then cannot say it is gone.
    #[serde(default)]
    pub since: UnixMillis,
}

/// A review session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Client-generated id.
    pub id: String,
    /// The pull request.
    pub pr: PullRef,
    /// The view last seen.
    pub view: Option<PrTab>,
    /// Start.
    pub started_at: UnixMillis,
    /// The last confirmed sign of the user.
    pub last_seen: UnixMillis,
    /// Active milliseconds as of `last_seen`: what a session ended there counts.
    #[serde(default)]
    pub seen_active_ms: i64,
    /// Active milliseconds counted so far (a running clock adds to it when it stops).
    pub active_ms: i64,
    /// Since when active time is running, if it is.
    pub active_since: Option<UnixMillis>,
    /// Revision of the last record produced.
    pub revision: u64,
    /// When its state was last queued for the server.
    pub reported_at: UnixMillis,
    /// Active milliseconds in the last record produced.
    pub reported_active_ms: i64,
}

impl Session {
    /// A session starting at `now`.
    pub fn start(id: String, page: &PrPage, now: UnixMillis) -> Self {
        Session {
            id,
            pr: page.pr.clone(),
            view: page.view,
            started_at: now,
            last_seen: now,
            seen_active_ms: 0,
            active_ms: 0,
            active_since: None,
            revision: 0,
            reported_at: now,
            reported_active_ms: 0,
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

    /// Active milliseconds up to `at`, never past it.
    pub fn active_at(&self, at: UnixMillis) -> i64 {
        self.active_ms + self.active_since.map_or(0, |s| (at - s).max(0))
    }

    /// A confirmed sign of the user at `now`.
    pub fn seen(&mut self, now: UnixMillis) {
        if now >= self.last_seen {
            self.last_seen = now;
            self.seen_active_ms = self.active_at(now);
        }
    }

    /// When the idle limit ends this session.
    pub fn idle_deadline(&self, idle_limit_ms: i64) -> UnixMillis {
        self.last_seen.saturating_add(idle_limit_ms)
    }

    /// The record of this session as of `at`, ended there or not, with the next revision.
    pub fn record(&mut self, at: UnixMillis, ended: bool) -> SessionRecord {
        self.revision += 1;
        let at = at.max(self.started_at);
        let wall_ms = at - self.started_at;
        let active_ms = self.active_at(at).min(wall_ms);
        self.reported_active_ms = active_ms;
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

/// A session record the engine must queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The record.
    pub record: SessionRecord,
    /// A start or an end: sent at once, not after the batching delay.
    pub urgent: bool,
}

/// What the engine knows of the user's presence, and the sessions it measures.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reviews {
    /// Tabs showing a pull request.
    tabs: BTreeMap<TabId, TabView>,
    /// Open sessions, by [`pr_key`].
    sessions: BTreeMap<String, Session>,
    /// Tabs closed in this browser run, and when: their late messages are refused.
    closed_tabs: BTreeMap<TabId, UnixMillis>,
    /// The front tab: the active tab of the focused window; `None` when
    /// Chrome has no focus.
    front_tab: Option<TabId>,
    /// Whether the system reports the user idle or locked.
    user_idle: bool,
}

impl Reviews {
    /// The open sessions, by [`pr_key`].
    pub fn sessions(&self) -> impl ExactSizeIterator<Item = &Session> {
        self.sessions.values()
    }

    /// The open session of the pull request whose [`pr_key`] is `key`.
    pub fn session(&self, key: &str) -> Option<&Session> {
        self.sessions.get(key)
    }

    /// The front tab, if Chrome has focus.
    pub fn front_tab(&self) -> Option<TabId> {
        self.front_tab
    }

    /// Whether the system reports the user idle or locked.
    pub fn is_idle(&self) -> bool {
        self.user_idle
    }

    /// The tabs showing a pull request, and what they show.
    pub fn tabs(&self) -> impl Iterator<Item = (TabId, &TabView)> {
        self.tabs.iter().map(|(t, v)| (*t, v))
    }

    /// The progress records of open sessions last reported `every` ms ago or
    /// more, marked reported at `now`.
    pub fn progress_due(&mut self, now: UnixMillis, every: i64) -> Vec<SessionRecord> {
        let mut records = Vec::new();
        for s in self.sessions.values_mut() {
            if now - s.reported_at >= every {
                s.reported_at = now;
                records.push(s.record(now, false));
            }
        }
        records
    }

    /// The session a tab shows, if any.
    pub fn session_of(&self, tab: TabId) -> Option<&Session> {
        self.sessions.get(&self.tabs.get(&tab)?.pr)
    }

    /// Whether the user is there, looking at `tab` now.
    fn present_in(&self, tab: TabId) -> bool {
        self.front_tab == Some(tab)
            && !self.user_idle
            && self.tabs.get(&tab).is_some_and(|t| t.visible)
    }

    /// Whether session `key` is active: a visible front tab shows it and the system is not idle.
    fn active(&self, key: &str) -> bool {
        self.front_tab
            .is_some_and(|t| self.present_in(t) && self.tabs.get(&t).is_some_and(|v| v.pr == key))
    }

    /// Records a sign of the user in `tab`, if they are there.
    fn seen_in(&mut self, tab: TabId, now: UnixMillis) {
        if !self.present_in(tab) {
            return;
        }
        if let Some(key) = self.tabs.get(&tab).map(|t| t.pr.clone()) {
            if let Some(s) = self.sessions.get_mut(&key) {
                s.seen(now);
            }
        }
    }

    /// Marks every active session seen at `now`.
    fn seen_active(&mut self, now: UnixMillis) {
        let keys: Vec<String> = self
            .sessions
            .keys()
            .filter(|k| self.active(k))
            .cloned()
            .collect();
        for k in keys {
            if let Some(s) = self.sessions.get_mut(&k) {
                s.seen(now);
            }
        }
    }

    /// Whether `tab` was closed in this run (its late messages are refused).
    pub fn closed(&self, tab: TabId) -> bool {
        self.closed_tabs.contains_key(&tab)
    }

    /// Opens the session of `page` unless one is open; returns its start.
    fn ensure_session(
        &mut self,
        page: &PrPage,
        now: UnixMillis,
        new_id: &mut dyn FnMut() -> String,
    ) -> Option<Report> {
        let key = pr_key(&page.pr);
        if let Some(s) = self.sessions.get_mut(&key) {
            if page.view.is_some() {
                s.view = page.view;
            }
            return None;
        }
        let mut s = Session::start(new_id(), page, now);
        let record = s.record(now, false);
        self.sessions.insert(key, s);
        Some(Report {
            record,
            urgent: true,
        })
    }

    /// Ends session `key` at `at` (its last confirmed moment, or now).
    fn end(&mut self, key: &str, at: UnixMillis) -> Option<Report> {
        let mut s = self.sessions.remove(key)?;
        let at = at.max(s.started_at);
        s.set_active(false, at);
        if at <= s.last_seen {
            // Ended at its last sign of the user: nothing after it counts.
            s.active_ms = s.active_ms.min(s.seen_active_ms);
        }
        // Skip the revision a beacon preview may have used: the worker's own end,
        // computed with full knowledge, supersedes the content script's.
        s.revision += 1;
        Some(Report {
            record: s.record(at, true),
            urgent: true,
        })
    }

    /// Ends the sessions no tab shows any more, at `at(session)`.
    fn end_unshown(&mut self, at: impl Fn(&Session) -> UnixMillis) -> Vec<Report> {
        let shown: std::collections::BTreeSet<&String> =
            self.tabs.values().map(|t| &t.pr).collect();
        let gone: Vec<(String, UnixMillis)> = self
            .sessions
            .iter()
            .filter(|(k, _)| !shown.contains(k))
            .map(|(k, s)| (k.clone(), at(s)))
            .collect();
        gone.into_iter()
            .filter_map(|(k, t)| self.end(&k, t))
            .collect()
    }

    /// A page reports what it shows, whether it is visible and whether it has focus.
    pub fn page(
        &mut self,
        tab: TabId,
        page: Option<PrPage>,
        visible: bool,
        focused: bool,
        now: UnixMillis,
        new_id: &mut dyn FnMut() -> String,
    ) -> Vec<Report> {
        if focused && visible {
            self.front_tab = Some(tab);
        } else if self.front_tab == Some(tab) {
            self.front_tab = None;
        }
        let out = self.location(tab, page, now, new_id);
        if let Some(t) = self.tabs.get_mut(&tab) {
            t.visible = visible;
        }
        self.seen_in(tab, now);
        self.match_clocks(now);
        out
    }

    /// `tab` shows `page` (a PR or not), as far as Chrome or the page says;
    /// visibility and focus are not touched.
    pub fn location(
        &mut self,
        tab: TabId,
        page: Option<PrPage>,
        now: UnixMillis,
        new_id: &mut dyn FnMut() -> String,
    ) -> Vec<Report> {
        let mut out = Vec::new();
        match page {
            Some(page) => {
                let key = pr_key(&page.pr);
                let (visible, since) = self
                    .tabs
                    .get(&tab)
                    .map_or((false, now), |t| (t.visible, t.since));
                self.tabs.insert(
                    tab,
                    TabView {
                        pr: key,
                        visible,
                        since,
                    },
                );
                out.extend(self.ensure_session(&page, now, new_id));
            }
            None => {
                self.tabs.remove(&tab);
            }
        }
        out.extend(self.end_unshown(|_| now));
        self.match_clocks(now);
        out
    }

    /// Input or a review action in `tab`: a sign of presence only if it is the visible front tab.
    pub fn input(&mut self, tab: TabId, now: UnixMillis) {
        self.seen_in(tab, now);
    }

    /// A tab closed: its sessions end now if no other tab shows them.
    pub fn tab_closed(&mut self, tab: TabId, now: UnixMillis) -> Vec<Report> {
        self.tabs.remove(&tab);
        if self.front_tab == Some(tab) {
            self.front_tab = None;
        }
        self.closed_tabs.insert(tab, now);
        let out = self.end_unshown(|_| now);
        self.match_clocks(now);
        out
    }

    /// Chrome's list of open tabs, read at `listed_at`: any other tab known
    /// before then lost its close, and a session no tab shows any more ends at
    /// its last confirmed moment. A tab first heard of after the list was read
    /// (its report overtook the list) is not in it and stays.
    pub fn open_tabs(
        &mut self,
        open: &[TabId],
        listed_at: UnixMillis,
        now: UnixMillis,
    ) -> Vec<Report> {
        let gone: Vec<TabId> = self
            .tabs
            .iter()
            .filter(|(t, v)| !open.contains(t) && v.since < listed_at)
            .map(|(t, _)| *t)
            .collect();
        for tab in gone {
            self.tabs.remove(&tab);
            self.closed_tabs.insert(tab, now);
            if self.front_tab == Some(tab) {
                self.front_tab = None;
            }
        }
        let out = self.end_unshown(|s| s.last_seen);
        self.match_clocks(now);
        out
    }

    /// The front tab changed (Chrome's `tabs.onActivated` / `windows.onFocusChanged`).
    pub fn front(&mut self, tab: Option<TabId>, now: UnixMillis) -> Vec<Report> {
        // A change of front tab is a sign of the user; being told the same
        // front tab again (every alarm re-reads it) is not.
        let changed = std::mem::replace(&mut self.front_tab, tab) != tab;
        if let Some(t) = tab.and_then(|t| self.tabs.get_mut(&t)) {
            // The active tab of the focused window is visible.
            t.visible = true;
        }
        if let Some(t) = tab.filter(|_| changed) {
            self.seen_in(t, now);
        }
        self.match_clocks(now);
        Vec::new()
    }

    /// The system's idle state changed.
    pub fn idle(&mut self, idle: bool, now: UnixMillis) -> Vec<Report> {
        let was_idle = std::mem::replace(&mut self.user_idle, idle);
        self.match_clocks(now);
        if was_idle && !idle {
            // Coming back from idle is a sign of the user; being told again
            // that the system is active (every alarm re-reads it) is not.
            self.seen_active(now);
        }
        Vec::new()
    }

    /// A new browser run: every session of the last one ends at its last
    /// confirmed moment; tab ids, focus and idle state are forgotten.
    pub fn new_browser_run(&mut self) -> Vec<Report> {
        self.tabs.clear();
        self.closed_tabs.clear();
        self.front_tab = None;
        self.user_idle = false;
        self.end_unshown(|s| s.last_seen)
    }

    /// Ends an open session taken over from an older layout, at its last sign of the user.
    pub fn end_legacy(mut session: Session) -> Report {
        let at = session.last_seen.max(session.started_at);
        session.set_active(false, at);
        session.active_ms = session.active_ms.min(at - session.started_at);
        session.revision += 1;
        Report {
            record: session.record(at, true),
            urgent: true,
        }
    }

    /// Ends the sessions idle past the limit (at their last sign of the user)
    /// and forgets closed tabs after `closed_memory_ms`.
    pub fn end_idle(
        &mut self,
        now: UnixMillis,
        idle_limit_ms: i64,
        closed_memory_ms: i64,
    ) -> Vec<Report> {
        let idle: Vec<(String, UnixMillis)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.idle_deadline(idle_limit_ms) <= now)
            .map(|(k, s)| (k.clone(), s.last_seen))
            .collect();
        self.closed_tabs
            .retain(|_, at| now - *at < closed_memory_ms);
        idle.into_iter()
            .filter_map(|(k, at)| self.end(&k, at))
            .collect()
    }

    /// Starts and stops active clocks to match presence at `now`.
    fn match_clocks(&mut self, now: UnixMillis) {
        let keys: Vec<(String, bool)> = self
            .sessions
            .keys()
            .map(|k| (k.clone(), self.active(k)))
            .collect();
        for (k, active) in keys {
            if let Some(s) = self.sessions.get_mut(&k) {
                // A clock never runs from before the last sign of the user.
                s.set_active(active, now);
            }
        }
    }

    /// The earliest idle deadline.
    pub fn next_deadline(&self, idle_limit_ms: i64) -> Option<UnixMillis> {
        self.sessions
            .values()
            .map(|s| s.idle_deadline(idle_limit_ms))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: u64) -> PrPage {
        PrPage {
            pr: PullRef {
                host: "github.com".into(),
                owner: "o".into(),
                repo: "r".into(),
                number: n,
            },
            view: None,
        }
    }

    #[test]
    fn active_time_counts_only_while_active() {
        let mut s = Session::start("s".into(), &page(1), 0);
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

    #[test]
    fn two_tabs_on_one_pr_share_one_session() {
        let mut r = Reviews::default();
        let mut n = 0;
        let mut id = || {
            n += 1;
            format!("s{n}")
        };
        let a = r.page(1, Some(page(7)), true, true, 0, &mut id);
        let b = r.page(2, Some(page(7)), true, true, 1_000, &mut id);
        assert_eq!((a.len(), b.len()), (1, 0));
        assert_eq!(r.sessions.len(), 1);
        assert!(r.tab_closed(1, 2_000).is_empty(), "tab 2 still shows it");
        let end = r.tab_closed(2, 3_000);
        assert_eq!(end[0].record.ended_at, Some(3_000));
        assert_eq!(end[0].record.wall_secs, 3);
    }

    #[test]
    fn a_browser_quit_ends_at_the_last_sign_of_the_user() {
        let mut r = Reviews::default();
        let mut id = || "s1".to_string();
        r.page(1, Some(page(7)), true, true, 0, &mut id);
        r.input(1, 5_000);
        // The browser quits at 5.5 s; it starts again at 20 s.
        let ends = r.new_browser_run();
        let rec = &ends[0].record;
        assert_eq!(
            (rec.ended_at, rec.wall_secs, rec.active_secs),
            (Some(5_000), 5, 5)
        );
    }

    #[test]
    fn a_tab_list_read_before_a_tab_was_reported_does_not_close_it() {
        let mut r = Reviews::default();
        let mut id = || "s1".to_string();
        r.page(7, Some(page(1)), true, true, 5_000, &mut id);
        // The alarm read the open tabs at 4 s; the list reaches the engine at 6 s.
        assert!(r.open_tabs(&[], 4_000, 6_000).is_empty());
        assert!(!r.closed(7) && r.sessions.len() == 1);
        // A list read after the tab was known, and without it, means it is gone.
        assert_eq!(r.open_tabs(&[], 6_500, 7_000).len(), 1);
        assert!(r.closed(7));
    }

    #[test]
    fn input_never_makes_a_background_page_active() {
        let mut r = Reviews::default();
        let mut id = || "s1".to_string();
        r.page(1, Some(page(7)), false, false, 0, &mut id);
        r.input(1, 1_000);
        r.input(1, 9_000);
        let s = &r.sessions[&pr_key(&page(7).pr)];
        assert_eq!((s.last_seen, s.active_at(10_000)), (0, 0));
    }
}
