//! Sending: when anything may go, when each item is due, and the one
//! request a commit may start.
//!
//! Rules:
//! - One request at a time (docs/ARCHITECTURE.md invariant 6), marked in
//!   flight with an expiry, so a worker killed mid-request never wedges the
//!   queue.
//! - The gate: the link, the credentials and the server's hold must all
//!   allow a request; offline and unpaired wait for an outside event, an
//!   unreachable or not-the-API server is probed at its own time.
//! - Order: session ends first (the critical path, invariant 9), then other
//!   urgent session states, then other session states, then activities.
//! - A session end or start is due at once; another session state, and the
//!   batch of activities, once its oldest item has waited the flush delay for
//!   company — at once when a flush was asked for, the batch is full, or it
//!   is a retry.
//! - A batch is cut by count and bytes ([`crate::batch`]); an item that can
//!   fit no request is a failed sync, alone.

use reviewtime_protocol::{routes, Activity, ActivityBatch};

use super::io::{Method, Request};
use super::Engine;
use crate::batch;
use crate::dead_letter::DeadPayload;
use crate::outbox::Retry;
use crate::state::{Auth, InFlight, InFlightItems, Link};
use crate::UnixMillis;

/// What [`Engine::due_batch`] found.
enum Due {
    /// This batch goes.
    Batch(Vec<Activity>),
    /// The first ready item fits no request: it became a failed sync.
    Dropped,
}

impl Engine {
    /// The next probe of an unreachable server is now. An alarm or sign-in
    /// while "offline" probes too: if the browser's online event was missed
    /// while the worker slept, this recovers; if it is still offline, the
    /// probe costs no attempt.
    pub(super) fn probe_now(&mut self, now: UnixMillis) {
        match &mut self.state.link {
            Link::Unreachable { probe_at, .. } | Link::NotApi { probe_at, .. } => {
                *probe_at = (*probe_at).min(now)
            }
            link @ Link::Offline => {
                *link = Link::Unreachable {
                    probe_at: now,
                    failures: 0,
                }
            }
            Link::Online => {}
        }
    }

    /// The earliest time anything may be sent, whatever waits; `None` while
    /// nothing but an outside event (online, sign-in) can open it.
    fn gate(&self) -> Option<UnixMillis> {
        let st = &self.state;
        let auth = match st.auth {
            Auth::Ready => i64::MIN,
            // One request checks a refused token again, now and then.
            Auth::Rejected { recheck_at, .. } => recheck_at,
            Auth::Unpaired => return None,
        };
        let link = match st.link {
            Link::Online => i64::MIN,
            Link::Offline => return None,
            Link::Unreachable { probe_at, .. } | Link::NotApi { probe_at, .. } => probe_at,
        };
        let hold = st.hold.as_ref().map_or(i64::MIN, |h| h.until);
        Some(auth.max(link).max(hold))
    }

    /// When something becomes sendable, ignoring the in-flight marker.
    pub(super) fn next_send_at(&self) -> Option<UnixMillis> {
        let st = &self.state;
        if st.outbox.is_empty() {
            return None;
        }
        let gate = self.gate()?;
        let sessions = st.outbox.sessions().iter().map(|p| {
            if p.urgent {
                p.retry.retry_at
            } else {
                self.due_at(p.queued_at, &p.retry, false)
            }
        });
        let full = st.outbox.activities().len() >= st.batch_cap;
        let acts = st
            .outbox
            .activities()
            .iter()
            .map(|a| self.due_at(a.queued_at, &a.retry, full));
        sessions.chain(acts).min().map(|t| t.max(gate))
    }

    /// When an item queued at `queued_at` may leave.
    fn due_at(&self, queued_at: UnixMillis, retry: &Retry, full: bool) -> UnixMillis {
        if self.state.flush_requested || full || retry.attempts > 0 {
            retry.retry_at
        } else {
            retry
                .retry_at
                .max(queued_at.saturating_add(self.state.config.flush_delay_ms))
        }
    }

    /// Starts the request due now, if the gate is open and none is in
    /// flight: marks it in flight and returns it, to be released after the
    /// commit's persist.
    pub(super) fn start_request(&mut self, now: UnixMillis) -> Option<Request> {
        if self.state.in_flight.is_some() || self.gate().is_none_or(|at| at > now) {
            return None;
        }
        if self.next_send_at().is_none_or(|at| at > now) {
            if self.state.outbox.is_empty() {
                self.state.flush_requested = false;
            }
            return None;
        }
        if let Some(record) = self.due_session(now) {
            let body = serde_json::to_string(&record).unwrap_or_default();
            let items = InFlightItems::Session {
                id: record.id.clone(),
                revision: record.revision,
            };
            if self.state.outbox.activities().is_empty() {
                self.state.flush_requested = false;
            }
            let path = format!("{}/{}", routes::SESSIONS, record.id);
            return Some(self.launch(Method::Put, path, body, items, now));
        }
        let batch = match self.due_batch(now)? {
            Due::Batch(batch) => batch,
            // An item that fits no request left as a failed sync: look again.
            Due::Dropped => return self.start_request(now),
        };
        let ids = batch.iter().map(|a| a.id.clone()).collect();
        let body = serde_json::to_string(&ActivityBatch { activities: batch }).unwrap_or_default();
        let path = routes::ACTIVITIES_BATCH.to_string();
        Some(self.launch(Method::Post, path, body, InFlightItems::Batch { ids }, now))
    }

    /// The session state to send now, in order: ends, other urgent states, the rest.
    fn due_session(&self, now: UnixMillis) -> Option<reviewtime_protocol::SessionRecord> {
        let sessions = self.state.outbox.sessions();
        sessions
            .iter()
            .find(|p| p.urgent && p.record.ended_at.is_some() && p.retry.retry_at <= now)
            .or_else(|| {
                sessions
                    .iter()
                    .find(|p| p.urgent && p.retry.retry_at <= now)
            })
            .or_else(|| {
                sessions
                    .iter()
                    .find(|p| self.due_at(p.queued_at, &p.retry, false) <= now)
            })
            .map(|p| p.record.clone())
    }

    /// The batch of activities to send now, if it is due: every item not
    /// backing off goes with it, whenever it was queued. An item that can
    /// fit no request is dead-lettered instead.
    fn due_batch(&mut self, now: UnixMillis) -> Option<Due> {
        let activities = self.state.outbox.activities();
        let full = activities.len() >= self.state.batch_cap;
        if !activities
            .iter()
            .any(|a| self.due_at(a.queued_at, &a.retry, full) <= now)
        {
            return None;
        }
        let ready: Vec<usize> = activities
            .iter()
            .enumerate()
            .filter(|(_, a)| a.retry.retry_at <= now)
            .map(|(i, _)| i)
            .collect();
        let sizes = ready.iter().map(|&i| activities[i].size);
        let n = batch::cut(
            sizes,
            self.state.batch_cap,
            self.state.config.max_batch_bytes,
        );
        if n == 0 {
            // The first ready item can never fit in any request.
            let item = self.state.outbox.remove_activity_at(*ready.first()?)?;
            let reason = format!(
                "activity is {} bytes, larger than any request may be",
                item.size
            );
            self.dead_letter(
                DeadPayload::activities(vec![(item.activity, item.pr)]),
                None,
                reason,
                item.retry.attempts,
                now,
            );
            return Some(Due::Dropped);
        }
        let batch = ready[..n]
            .iter()
            .map(|&i| activities[i].activity.clone())
            .collect();
        // The flush asked for is sent once no ready item is left behind.
        if n == ready.len() {
            self.state.flush_requested = false;
        }
        Some(Due::Batch(batch))
    }

    fn launch(
        &mut self,
        method: Method,
        path: String,
        body: String,
        items: InFlightItems,
        now: UnixMillis,
    ) -> Request {
        let id = self.state.ids.next_request();
        let timeout_ms = self.state.config.request_timeout_ms;
        if let Auth::Rejected { recheck_at, .. } = &mut self.state.auth {
            // This request re-checks the token; the next one waits its turn.
            *recheck_at = now + self.state.config.auth_recheck_ms;
        }
        self.state.in_flight = Some(InFlight {
            request_id: id,
            items: items.clone(),
            started_at: now,
            expires_at: now + timeout_ms + self.state.config.in_flight_grace_ms,
        });
        Request {
            id,
            method,
            path,
            body,
            timeout_ms,
            items,
        }
    }
}
