//! Answers: what each one means for the items it carried.
//!
//! Rules:
//! - An answer is matched to the request in flight by id *and* items; an
//!   answer to a request presumed lost changes nothing (its items are still
//!   queued, and the server keeps each once).
//! - Every answer is classified and decided on in one place
//!   ([`crate::policy`]); this file only carries the decision out.
//! - Only ReviewTime's own answers spend attempts; offline, unreachable,
//!   timeouts and anything that is not the API pause like an outage.
//! - One refused item is one failed sync, never its whole batch; a session
//!   whose newer revision is queued keeps it.
//! - A conflict (the server holds the same revision with other content) is
//!   a divergence to show, not to hide: a failed sync with both sides.

use std::collections::HashSet;

use reviewtime_protocol::{BatchAck, SessionAck};

use super::io::HttpResult;
use super::Engine;
use crate::dead_letter::DeadPayload;
use crate::outbox::Retry;
use crate::policy::{self, Answer, Decision, History};
use crate::state::{Auth, Hold, InFlightItems, Link};
use crate::UnixMillis;

impl Engine {
    pub(super) fn on_response(
        &mut self,
        request_id: u64,
        items: &InFlightItems,
        result: HttpResult,
        now: UnixMillis,
    ) {
        let Some(flight) = self
            .state
            .in_flight
            .take_if(|f| f.request_id == request_id && f.items == *items)
        else {
            // An answer to a request presumed lost: its items are still queued and
            // will be sent again; the server's deduplication absorbs the repeat.
            return;
        };
        let items = flight.items;
        let answer = policy::classify(result, &items, &self.state.config, now);
        let history = History {
            items: items.len(),
            most_tried: self.most_tried(&items),
            probe_failures: match self.state.link {
                Link::Unreachable { failures, .. } | Link::NotApi { failures, .. } => failures,
                _ => 0,
            },
        };
        let decision = policy::decide(
            &answer,
            history,
            &self.state.config,
            now,
            &mut self.state.rng,
        );
        // A server answered: the link is up, unless what answered is not the API.
        if !matches!(
            answer,
            Answer::Offline | Answer::Unreachable { .. } | Answer::Timeout | Answer::NotApi { .. }
        ) {
            self.state.link = Link::Online;
        }
        // Only ReviewTime's own answer past authentication proves the token.
        if matches!(
            answer,
            Answer::Session(_) | Answer::Batch(_) | Answer::Refused { .. }
        ) && matches!(self.state.auth, Auth::Rejected { .. })
        {
            self.state.auth = Auth::Ready;
        }
        let (status, reason) = answer_words(&answer);
        match decision {
            Decision::Delivered => match answer {
                Answer::Session(ack) => self.session_delivered(&items, ack, now),
                Answer::Batch(ack) => self.batch_delivered(&items, &ack, now),
                _ => {}
            },
            Decision::WaitOnline => self.state.link = Link::Offline,
            Decision::Probe { probe_at, failures } => {
                self.state.link = match answer {
                    Answer::NotApi { detail } => Link::NotApi {
                        probe_at,
                        failures,
                        detail,
                    },
                    _ => Link::Unreachable { probe_at, failures },
                };
                self.state.last_error = Some(reason);
            }
            Decision::Retry { retry_at } => self.fail_items(&items, retry_at, status, reason, now),
            Decision::Hold { until, retry_at } => {
                self.state.hold = Some(Hold { since: now, until });
                // The items back off as any failure does; the hold gates every request.
                self.fail_items(&items, retry_at, status, reason, now);
            }
            Decision::SignedOut { recheck_at } => {
                let since = match self.state.auth {
                    Auth::Rejected { since, .. } => since,
                    _ => now,
                };
                self.state.auth = Auth::Rejected {
                    since,
                    status: status.unwrap_or(401),
                    recheck_at,
                };
                self.state.last_error = Some(reason);
            }
            Decision::Split { cap, bisect } => {
                self.state.batch_cap = cap.max(1);
                self.state.bisecting |= bisect;
                self.state.flush_requested = true;
            }
            Decision::DeadLetter => {
                if matches!(items, InFlightItems::Batch { .. }) {
                    // The refused item is found: batches grow back.
                    self.state.bisecting = false;
                    self.state.batch_cap = self.state.config.max_batch_items;
                }
                self.permanent(&items, status, reason, now);
            }
        }
    }

    /// Failed attempts of the request's most-tried item.
    fn most_tried(&self, items: &InFlightItems) -> u32 {
        match items {
            InFlightItems::Session { id, .. } => self
                .state
                .outbox
                .session(id)
                .map_or(0, |p| p.retry.attempts),
            InFlightItems::Batch { ids } => {
                let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
                self.state
                    .outbox
                    .activities()
                    .iter()
                    .filter(|a| sent.contains(a.activity.id.as_str()))
                    .map(|a| a.retry.attempts)
                    .max()
                    .unwrap_or(0)
            }
        }
    }

    fn session_delivered(&mut self, items: &InFlightItems, ack: SessionAck, now: UnixMillis) {
        let InFlightItems::Session { id, revision } = items else {
            return;
        };
        let sent = self
            .state
            .outbox
            .session(id)
            .filter(|p| p.record.revision == *revision)
            .map(|p| p.record.clone());
        match sent {
            // The server holds the same revision with other content: a
            // divergence to show, not to hide.
            Some(sent) if ack.session.revision == sent.revision && ack.session != sent => {
                self.state.outbox.remove_session(id);
                self.dead_letter(
                    DeadPayload::Conflict {
                        sent,
                        stored: ack.session,
                    },
                    Some(409),
                    "conflict: the server holds this session, at the same revision, with other times"
                        .into(),
                    1,
                    now,
                );
            }
            // A newer revision queued meanwhile stays.
            _ => self
                .state
                .outbox
                .edit_session(id, |p| p.record.revision > *revision),
        }
        self.delivered(now);
    }

    fn batch_delivered(&mut self, items: &InFlightItems, ack: &BatchAck, now: UnixMillis) {
        let InFlightItems::Batch { ids } = items else {
            return;
        };
        let mut refused: Vec<(&str, u16, String)> = ack
            .conflicts
            .iter()
            .map(|c| (c.id.as_str(), 409, format!("conflict: {}", c.reason)))
            .collect();
        refused.extend(
            ack.rejected
                .iter()
                .map(|r| (r.id.as_str(), 400, format!("{} ({})", r.reason, r.code))),
        );
        let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut failed = Vec::new();
        self.state.outbox.edit_activities(&sent, |a| {
            if let Some((_, status, reason)) =
                refused.iter().find(|(id, _, _)| *id == a.activity.id)
            {
                failed.push((a.clone(), *status, reason.clone()));
            }
            false
        });
        // One bad item is one failed sync.
        for (a, status, reason) in failed {
            self.dead_letter(
                DeadPayload::activities(vec![(a.activity, a.pr)]),
                Some(status),
                reason,
                a.retry.attempts + 1,
                now,
            );
        }
        if !self.state.bisecting {
            self.state.batch_cap =
                (self.state.batch_cap * 2).min(self.state.config.max_batch_items);
        } else if self.state.outbox.activities().is_empty() {
            // Nothing left to search: what was refused passed item by item.
            self.state.bisecting = false;
            self.state.batch_cap = self.state.config.max_batch_items;
        }
        self.delivered(now);
    }

    fn delivered(&mut self, now: UnixMillis) {
        self.state.last_success_at = Some(now);
        if self.state.dead.entries().is_empty() {
            self.state.last_error = None;
        }
    }

    /// The items count one failed attempt and wait until `retry_at`; those
    /// past the attempt and age limits move to the dead-letter queue.
    fn fail_items(
        &mut self,
        items: &InFlightItems,
        retry_at: UnixMillis,
        status: Option<u16>,
        reason: String,
        now: UnixMillis,
    ) {
        let cfg = self.state.config.clone();
        let mut give_up = Vec::new();
        let fail = |retry: &mut Retry| -> bool {
            retry.attempts += 1;
            let first = *retry.first_failure_at.get_or_insert(now);
            retry.last_error = Some(reason.clone());
            retry.last_status = status;
            if policy::give_up(retry.attempts, first, &cfg, now) {
                return true;
            }
            retry.retry_at = retry_at;
            false
        };
        match items {
            InFlightItems::Session { id, .. } => {
                let mut dead = None;
                self.state.outbox.edit_session(id, |p| {
                    if fail(&mut p.retry) {
                        dead = Some((
                            DeadPayload::Session {
                                record: p.record.clone(),
                            },
                            p.retry.attempts,
                        ));
                        return false;
                    }
                    true
                });
                give_up.extend(dead);
            }
            InFlightItems::Batch { ids } => {
                let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
                let mut dead = Vec::new();
                let mut attempts = 0;
                self.state.outbox.edit_activities(&sent, |a| {
                    if fail(&mut a.retry) {
                        attempts = attempts.max(a.retry.attempts);
                        dead.push((a.activity.clone(), a.pr.clone()));
                        return false;
                    }
                    true
                });
                if !dead.is_empty() {
                    give_up.push((DeadPayload::activities(dead), attempts));
                }
            }
        }
        self.state.last_error = Some(reason.clone());
        for (payload, attempts) in give_up {
            self.dead_letter(
                payload,
                status,
                format!("gave up after {attempts} attempts: {reason}"),
                attempts,
                now,
            );
        }
    }

    fn permanent(
        &mut self,
        items: &InFlightItems,
        status: Option<u16>,
        reason: String,
        now: UnixMillis,
    ) {
        match items {
            InFlightItems::Session { id, revision } => {
                let Some(p) = self.state.outbox.session(id) else {
                    return;
                };
                if p.record.revision > *revision {
                    // A newer state is queued; it may well succeed. Only the sent revision failed.
                    return;
                }
                let Some(p) = self.state.outbox.remove_session(id) else {
                    return;
                };
                self.dead_letter(
                    DeadPayload::Session { record: p.record },
                    status,
                    reason,
                    p.retry.attempts + 1,
                    now,
                );
            }
            InFlightItems::Batch { ids } => {
                let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
                let mut dead = Vec::new();
                let mut attempts = 0;
                self.state.outbox.edit_activities(&sent, |a| {
                    attempts = attempts.max(a.retry.attempts + 1);
                    dead.push((a.activity.clone(), a.pr.clone()));
                    false
                });
                if !dead.is_empty() {
                    self.dead_letter(DeadPayload::activities(dead), status, reason, attempts, now);
                }
            }
        }
    }
}

/// The status and the words an answer comes with, for the popup and the
/// failed-sync list.
fn answer_words(answer: &Answer) -> (Option<u16>, String) {
    match answer {
        Answer::Session(_) | Answer::Batch(_) => (Some(200), String::new()),
        Answer::Offline => (None, "the browser is offline".into()),
        Answer::Unreachable { message } => (None, format!("cannot reach the server: {message}")),
        Answer::Timeout => (None, "the server did not answer in time".into()),
        Answer::NotApi { detail } => (None, detail.clone()),
        Answer::Unreadable { status } => (
            Some(*status),
            format!("the server's answer could not be read (HTTP {status}); it is sent again, and the server keeps each item once"),
        ),
        Answer::Throttled { status, reason, .. }
        | Answer::ServerError { status, reason }
        | Answer::Auth { status, reason }
        | Answer::Refused { status, reason } => (Some(*status), reason.clone()),
        Answer::TooLarge { reason } => (Some(413), reason.clone()),
    }
}
