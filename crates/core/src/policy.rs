//! Failure policies as plain data, in one place: what an answer means
//! ([`classify`]) and what to do about it ([`decide`]), from the answer, the
//! attempt history and the tunables in [`Config`]. The engine applies the
//! decision to its state; nothing here holds state, reads a clock or does IO.
//!
//! The rules, in a reviewer's terms:
//! - Only ReviewTime's own answers spend an item's attempts. A web page where
//!   the API should be (a captive portal, a sign-in redirect, a wrong address
//!   answering 200 everywhere) pauses sending like an unreachable server, and
//!   probes with backoff: nothing is dead-lettered for it.
//! - 429, 503 and any Retry-After hold *every* request until that time.
//! - One bad item is one failed sync: a refused batch is cut in halves until
//!   the item is found, and only it is dead-lettered.
//! - 401/403 pause sending; the token is re-checked with one request on a slow
//!   timer and on "Sync now".

use reviewtime_protocol::{ApiError, BatchAck, SessionAck};

use crate::backoff::Backoff;
use crate::classify::{classify_status, StatusClass};
use crate::config::Config;
use crate::engine::HttpResult;
use crate::rng::Rng;
use crate::state::InFlightItems;
use crate::UnixMillis;

/// A request's outcome, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The server stored (or already had) the session.
    Session(SessionAck),
    /// The server accounted for every item of the batch.
    Batch(BatchAck),
    /// The browser is offline: nothing was sent.
    Offline,
    /// No server was reached (DNS, refused, reset, TLS, CORS).
    Unreachable {
        /// What the browser said.
        message: String,
    },
    /// No answer in time; the server may have processed it.
    Timeout,
    /// Something that is not ReviewTime's API answered: a web page, a
    /// redirect, an error page. Says nothing about the items.
    NotApi {
        /// What answered, in words.
        detail: String,
    },
    /// ReviewTime's JSON, but not the answer the request calls for: the
    /// server may have stored the items, so they are sent again.
    Unreadable {
        /// The status it came with.
        status: u16,
    },
    /// The server asks everyone to wait (429, 503, or any Retry-After).
    Throttled {
        /// 429, 503…
        status: u16,
        /// When, if it said (already capped at the longest wait honoured).
        until: Option<UnixMillis>,
        /// In words.
        reason: String,
    },
    /// A server error worth retrying (408, 5xx).
    ServerError {
        /// The status.
        status: u16,
        /// In words.
        reason: String,
    },
    /// The credentials were refused (401, 403).
    Auth {
        /// The status.
        status: u16,
        /// In words.
        reason: String,
    },
    /// The request was too large (413).
    TooLarge {
        /// In words.
        reason: String,
    },
    /// ReviewTime's server refused the request as it is (400, 404, 409, 422…,
    /// with its JSON error): sent again unchanged, it fails again.
    Refused {
        /// The status.
        status: u16,
        /// The server's words.
        reason: String,
    },
}

/// What the engine does about an [`Answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The answer accounts for the items (the engine reads the ack).
    Delivered,
    /// The browser is offline: wait for it; no attempt is used.
    WaitOnline,
    /// Pause everything and probe at `probe_at` (`failures` in a row); no
    /// item uses an attempt.
    Probe {
        /// Next probe.
        probe_at: UnixMillis,
        /// Failed probes in a row.
        failures: u32,
    },
    /// The items count one failed attempt and retry at `retry_at`; those past
    /// the attempt and age limits are dead-lettered.
    Retry {
        /// When.
        retry_at: UnixMillis,
    },
    /// Hold every request until `until`; the items count one attempt and
    /// back off to `retry_at` (the hold gates them anyway).
    Hold {
        /// When sending may resume.
        until: UnixMillis,
        /// The items' own backoff.
        retry_at: UnixMillis,
    },
    /// Pause sending until the token is checked again at `recheck_at`.
    SignedOut {
        /// When one request re-checks the token.
        recheck_at: UnixMillis,
    },
    /// Send the items in smaller requests; no attempt is used. `bisect`
    /// when one of them is refused (the halves are not grown back until it
    /// is found), not when the request was merely too large.
    Split {
        /// Items per request from now.
        cap: usize,
        /// Hunting for a refused item.
        bisect: bool,
    },
    /// It can never succeed as it is: dead-letter it with the reason.
    DeadLetter,
}

/// Classifies what happened to a request carrying `items`, at `now`.
pub fn classify(
    result: HttpResult,
    items: &InFlightItems,
    config: &Config,
    now: UnixMillis,
) -> Answer {
    match result {
        HttpResult::Offline => Answer::Offline,
        HttpResult::NetworkError { message } => Answer::Unreachable { message },
        HttpResult::Timeout => Answer::Timeout,
        HttpResult::Redirected => Answer::NotApi {
            detail: "the server address redirects elsewhere, as a sign-in page or a network's login portal does, instead of answering as ReviewTime's API".into(),
        },
        HttpResult::Reply {
            status,
            retry_after,
            body,
        } => {
            let class = classify_status(status);
            if class == StatusClass::Success {
                return success(status, &body, items);
            }
            let api_error = serde_json::from_str::<ApiError>(&body).ok();
            let reason = reason_of(status, api_error.as_ref(), &body);
            let asked = retry_after
                .as_deref()
                .and_then(|v| crate::retry_after::parse(v, now))
                .map(|t| t.clamp(now, now.saturating_add(config.max_retry_after_ms)));
            if status == 429
                || status == 503
                || (asked.is_some() && class == StatusClass::Transient)
            {
                return Answer::Throttled {
                    status,
                    until: asked,
                    reason,
                };
            }
            match class {
                StatusClass::Transient => Answer::ServerError { status, reason },
                StatusClass::Auth => Answer::Auth { status, reason },
                StatusClass::TooLarge => Answer::TooLarge { reason },
                // Only ReviewTime's own refusal says the items are wrong; any
                // other page with that status says the address is.
                StatusClass::Permanent if api_error.is_some() => {
                    Answer::Refused { status, reason }
                }
                StatusClass::Permanent | StatusClass::Success => not_api(status, &body),
            }
        }
    }
}

/// A 2xx: the acknowledgement the request calls for, or what it is instead.
fn success(status: u16, body: &str, items: &InFlightItems) -> Answer {
    match items {
        InFlightItems::Session { id, .. } => match serde_json::from_str::<SessionAck>(body) {
            Ok(ack) if ack.session.id == *id => return Answer::Session(ack),
            _ => {}
        },
        InFlightItems::Batch { ids } => match serde_json::from_str::<BatchAck>(body) {
            Ok(ack) if ack.accounted() == ids.len() => return Answer::Batch(ack),
            _ => {}
        },
    }
    if serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok()
        && body.trim_start().starts_with('{')
    {
        Answer::Unreadable { status }
    } else {
        not_api(status, body)
    }
}

/// An answer with `status` and `body` from something that is not the API, in words.
fn not_api(status: u16, body: &str) -> Answer {
    Answer::NotApi {
        detail: format!(
            "the server address answers HTTP {status} {}",
            what_it_is(body)
        ),
    }
}

/// What a body that is not the API looks like, in words.
fn what_it_is(body: &str) -> String {
    let head: String = body
        .trim_start()
        .chars()
        .take(200)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.is_empty() {
        "with an empty page, not ReviewTime's API".into()
    } else if head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.contains("<body")
        || head.contains("<head")
    {
        "with a web page, not ReviewTime's API (a sign-in page, a network's login portal, or another site)".into()
    } else {
        "with something that is not ReviewTime's API".into()
    }
}

/// The server's error message if it sent our JSON error, else the status in words.
fn reason_of(status: u16, api_error: Option<&ApiError>, body: &str) -> String {
    match api_error {
        Some(e) => format!("{} ({})", e.message, e.code),
        None => {
            let excerpt: String = body.chars().take(120).collect();
            if excerpt.trim().is_empty() || excerpt.trim_start().starts_with('<') {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {}", excerpt.trim())
            }
        }
    }
}

/// The history a decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// Items the request carried.
    pub items: usize,
    /// Failed attempts of its most-tried item.
    pub most_tried: u32,
    /// Probes that failed in a row before this one.
    pub probe_failures: u32,
}

/// What to do about `answer`, given the request's `history`.
pub fn decide(
    answer: &Answer,
    history: History,
    config: &Config,
    now: UnixMillis,
    rng: &mut impl Rng,
) -> Decision {
    match answer {
        Answer::Session(_) | Answer::Batch(_) => Decision::Delivered,
        Answer::Offline => Decision::WaitOnline,
        Answer::Unreachable { .. } | Answer::NotApi { .. } => {
            let failures = history.probe_failures + 1;
            let probe = Backoff {
                base_ms: config.backoff.base_ms,
                cap_ms: config.probe_cap_ms,
            };
            Decision::Probe {
                probe_at: probe.retry_at(now, failures, rng).max(now + 250),
                failures,
            }
        }
        Answer::Timeout | Answer::Unreadable { .. } | Answer::ServerError { .. } => {
            Decision::Retry {
                retry_at: config.backoff.retry_at(now, history.most_tried + 1, rng),
            }
        }
        Answer::Throttled { until, .. } => {
            let retry_at = config.backoff.retry_at(now, history.most_tried + 1, rng);
            Decision::Hold {
                until: until.unwrap_or(retry_at).max(now),
                retry_at,
            }
        }
        Answer::Auth { .. } => Decision::SignedOut {
            recheck_at: now + config.auth_recheck_ms,
        },
        Answer::TooLarge { .. } if history.items > 1 => Decision::Split {
            cap: history.items / 2,
            bisect: false,
        },
        Answer::Refused { .. } if history.items > 1 => Decision::Split {
            cap: history.items / 2,
            bisect: true,
        },
        Answer::TooLarge { .. } | Answer::Refused { .. } => Decision::DeadLetter,
    }
}

/// Whether an item that failed again is given up on: only after both enough
/// attempts and enough time, so neither a burst of failures nor one slow
/// failure a day dead-letters it.
pub fn give_up(
    attempts: u32,
    first_failure_at: UnixMillis,
    config: &Config,
    now: UnixMillis,
) -> bool {
    attempts >= config.max_attempts && now - first_failure_at >= config.dead_letter_after_ms
}
