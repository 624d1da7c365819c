//! The failed-sync list: what can never succeed as it is, kept for the
//! user to retry, discard or export (docs/ARCHITECTURE.md invariant 8).
//!
//! Rules:
//! - An item leaves the outbox only when the server acknowledged it or it
//!   enters this list; it leaves the list only when the user retries or
//!   discards it.
//! - A retried entry goes back to the outbox with fresh attempts; one with
//!   nothing to send (a conflict, an unreadable stored part) stays.
//! - Every entry comes with its reason, which also becomes the popup's last
//!   error; an eviction past the cap is said in words and counted.

use serde::Serialize;

use super::Engine;
use crate::dead_letter::{DeadLetter, DeadPayload};
use crate::UnixMillis;

impl Engine {
    /// Sends failed syncs again (one, or all when `id` is `None`): back to the
    /// outbox with fresh attempts, and a probe now. The user's command.
    pub fn retry_dead(&mut self, id: Option<&str>, now: UnixMillis) {
        self.begin(now);
        self.requeue_dead(id, now);
        self.finish(now);
    }

    /// Discards failed syncs (one, or all when `id` is `None`). The user's command.
    pub fn discard_dead(&mut self, id: Option<&str>, now: UnixMillis) {
        self.begin(now);
        self.state.dead.take(id);
        self.finish(now);
    }

    /// The failed-sync list as a JSON document, for export.
    pub fn export_dead_letters(&self) -> String {
        #[derive(Serialize)]
        struct Export<'a> {
            dead_letters: &'a std::collections::VecDeque<DeadLetter>,
            evicted: u64,
            evicted_items: u64,
        }
        let dead = &self.state.dead;
        serde_json::to_string_pretty(&Export {
            dead_letters: dead.entries(),
            evicted: dead.evicted(),
            evicted_items: dead.evicted_items(),
        })
        .unwrap_or_default()
    }

    pub(super) fn dead_letter(
        &mut self,
        payload: DeadPayload,
        status: Option<u16>,
        reason: String,
        attempts: u32,
        now: UnixMillis,
    ) {
        let entry = DeadLetter {
            id: String::new(),
            failed_at: now,
            status,
            reason: reason.clone(),
            attempts,
            payload,
        };
        let evicted = self
            .state
            .dead
            .push(entry, self.state.config.dead_letter_cap);
        self.state.last_error = Some(if evicted > 0 {
            format!("{reason} (the failed-sync list is full: {evicted} oldest entries dropped)")
        } else {
            reason
        });
    }

    fn requeue_dead(&mut self, id: Option<&str>, now: UnixMillis) {
        for entry in self.state.dead.take(id) {
            match entry.payload {
                DeadPayload::Session { record } => self.queue_session(record, now, true),
                DeadPayload::Activities { items, prs } => {
                    for a in items {
                        if !self.state.outbox.contains_activity(&a.id) {
                            let pr = prs.get(&a.session_id).cloned();
                            self.queue_activity(a, pr, now);
                        }
                    }
                }
                // Nothing to send (a conflict sent again conflicts again): it
                // stays for the user to export or discard.
                payload @ (DeadPayload::Unreadable { .. } | DeadPayload::Conflict { .. }) => {
                    let entry = DeadLetter { payload, ..entry };
                    self.state.dead.restore(entry);
                }
            }
        }
        self.state.flush_requested = true;
        self.probe_now(now);
    }
}
