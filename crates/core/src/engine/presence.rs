//! From presence to the outbox: what the pages report becomes session
//! states and review actions queued for the server.
//!
//! Rules:
//! - The clocks are [`crate::session`]'s; this file only queues what they
//!   report. A start or an end is urgent (sent at once); an end also asks
//!   for its session's actions to go along.
//! - A report from a tab already closed in this browser run is refused and
//!   counted: it would open a session no close will end. Chrome does not
//!   reuse tab ids within a run; a new run forgets them.
//! - A review action needs the session of its tab; one without is refused
//!   and counted. A content script's id is checked and makes a repeated
//!   message count once; its clock is trusted only within the session.
//! - What cannot be queued is never dropped silently: an action that cannot
//!   fit the protocol's limits becomes a failed sync with its reason, and a
//!   full outbox is counted and said in words.

use reviewtime_protocol::{Activity, ActivityKind, PullRef, SessionRecord};

use super::io::valid_client_id;
use super::Engine;
use crate::dead_letter::DeadPayload;
use crate::limits;
use crate::session::{pr_key, PrPage, Report, TabId};
use crate::UnixMillis;

/// How often an open session's progress is sent.
const PROGRESS_REPORT_MS: i64 = 5 * 60_000;

impl Engine {
    pub(super) fn on_page(
        &mut self,
        tab: TabId,
        page: Option<PrPage>,
        visible: bool,
        focused: bool,
        now: UnixMillis,
    ) {
        if self.tab_closed(tab) {
            return;
        }
        // A switch between the PR's views (Conversation, Files…) is an activity.
        let switched = page.as_ref().and_then(|p| {
            let before = self.state.reviews.session(&pr_key(&p.pr))?;
            (p.view.is_some() && p.view != before.view)
                .then_some(p.view)
                .flatten()
        });
        let ids = &mut self.state.ids;
        let reports = self
            .state
            .reviews
            .page(tab, page, visible, focused, now, &mut || ids.next("s"));
        self.queue_reports(reports, now);
        if let Some(view) = switched {
            self.on_activity(
                tab,
                ActivityKind::TabSwitched { tab: view },
                None,
                None,
                now,
            );
        }
    }

    pub(super) fn on_location(&mut self, tab: TabId, page: Option<PrPage>, now: UnixMillis) {
        if self.tab_closed(tab) {
            return;
        }
        let ids = &mut self.state.ids;
        let reports = self
            .state
            .reviews
            .location(tab, page, now, &mut || ids.next("s"));
        self.queue_reports(reports, now);
    }

    pub(super) fn queue_reports(&mut self, reports: Vec<Report>, now: UnixMillis) {
        for r in reports {
            let ended = r.record.ended_at.is_some();
            self.queue_session(r.record, now, r.urgent);
            if ended {
                // The session's actions go along with its end.
                self.state.flush_requested = true;
            }
        }
    }

    /// Whether `tab` was closed in this browser run; its report is then
    /// refused, and counted.
    fn tab_closed(&mut self, tab: TabId) -> bool {
        let closed = self.state.reviews.closed(tab);
        if closed {
            self.state.counters.rejected_inputs += 1;
        }
        closed
    }

    pub(super) fn on_activity(
        &mut self,
        tab: TabId,
        kind: ActivityKind,
        client_id: Option<String>,
        at: Option<UnixMillis>,
        now: UnixMillis,
    ) {
        self.state.reviews.input(tab, now);
        let Some((session_id, started_at, pr)) = self
            .state
            .reviews
            .session_of(tab)
            .map(|s| (s.id.clone(), s.started_at, s.pr.clone()))
        else {
            self.state.counters.rejected_inputs += 1;
            return;
        };
        let id = match client_id {
            Some(id) if valid_client_id(&id) => {
                if self.state.outbox.contains_activity(&id) {
                    return; // a repeat of a message already recorded
                }
                id
            }
            Some(_) => {
                self.state.counters.rejected_inputs += 1;
                return;
            }
            None => self.state.ids.next("a"),
        };
        // A content script's clock is trusted only within the session and up to now.
        let at = at.filter(|t| (started_at..=now).contains(t)).unwrap_or(now);
        self.queue_activity(
            Activity {
                id,
                session_id,
                at,
                kind,
            },
            Some(pr),
            now,
        );
    }

    /// Queues a session state; refused (and counted, shown in the popup) only
    /// when the outbox is full and the session is not already queued.
    pub(super) fn queue_session(&mut self, record: SessionRecord, now: UnixMillis, urgent: bool) {
        let cap = self.state.config.max_outbox_sessions;
        if self
            .state
            .outbox
            .queue_session(record, now, cap, urgent)
            .is_err()
        {
            self.state.counters.refused_sessions += 1;
            self.state.last_error = Some(format!(
                "the sync queue is full ({cap} sessions waiting): newer sessions are not recorded"
            ));
        }
    }

    /// Queues an activity, made to fit the protocol's limits first (an
    /// over-long or multi-line path is shortened or escaped, with a marker);
    /// one that cannot fit is dead-lettered alone, with the reason, rather
    /// than sinking a batch. Refused and counted when the outbox is full.
    pub(super) fn queue_activity(
        &mut self,
        activity: Activity,
        pr: Option<PullRef>,
        now: UnixMillis,
    ) {
        let activity = match limits::fit(activity) {
            Ok(a) => a,
            Err((activity, reason)) => {
                self.dead_letter(
                    DeadPayload::activities(vec![(activity, pr)]),
                    None,
                    format!("not sent: {reason}"),
                    0,
                    now,
                );
                return;
            }
        };
        let cap = self.state.config.max_outbox_activities;
        if self
            .state
            .outbox
            .queue_activity(activity, pr, now, cap)
            .is_err()
        {
            self.state.counters.refused_activities += 1;
            self.state.last_error = Some(format!(
                "the sync queue is full ({cap} review actions waiting): newer actions are not recorded"
            ));
        }
    }

    /// Sessions in progress report their wall and active time to the dashboard
    /// every few minutes; their start and end go at once anyway.
    pub(super) fn refresh_open_sessions(&mut self, now: UnixMillis) {
        let records = self.state.reviews.progress_due(now, PROGRESS_REPORT_MS);
        for r in records {
            self.queue_session(r, now, false);
        }
    }
}
