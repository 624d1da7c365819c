//! The engine's behaviour, one promise per test.

mod common;

use common::{pr, Harness};
use reviewtime_core::protocol::{ActivityKind, ReviewVerdict, SessionRecord};
use reviewtime_core::{Effect, Event, HttpResult, SyncState};

fn comment() -> Event {
    Event::Activity {
        tab: 1,
        kind: ActivityKind::CommentPosted,
        client_id: None,
        at: None,
    }
}

/// Tab `tab` shows PR `n`, visible and in front.
fn shown(tab: i64, n: u64) -> Event {
    Event::Page {
        tab,
        page: Some(pr(n)),
        visible: true,
        focused: true,
    }
}

fn attempts(h: &Harness) -> Vec<u32> {
    let st = h.engine.state();
    st.outbox()
        .sessions()
        .iter()
        .map(|s| s.retry.attempts)
        .chain(st.outbox().activities().iter().map(|a| a.retry.attempts))
        .collect()
}

#[test]
fn a_session_end_is_persisted_then_sent_in_the_same_event_ahead_of_queued_activities() {
    let mut h = Harness::new();
    let start = h.open(1, 7);
    assert_eq!(start.len(), 1, "a session start is sent at once");
    assert!(h.ok(&start[0]).is_empty());
    h.handle(comment());
    h.now += 1_000;
    let effects = h.handle(Event::TabClosed { tab: 1 });
    assert!(
        matches!(effects[0], Effect::Persist(_)),
        "persist comes first: {effects:?}"
    );
    assert!(matches!(effects[1], Effect::Send(_)));
    let sends = Harness::sends(&effects);
    assert_eq!(sends.len(), 1, "one request at a time");
    let record: SessionRecord = serde_json::from_str(&sends[0].body).unwrap();
    assert_eq!(record.ended_at, Some(h.now));
    assert_eq!(record.wall_secs, 1);
    // After the end is acknowledged, the activity follows at once.
    let next = h.ok(&sends[0]);
    assert_eq!(next.len(), 1);
    assert!(next[0].path.ends_with("/activities/batch"));
    assert!(h.ok(&next[0]).is_empty());
    assert!(h.engine.state().outbox().is_empty());
    assert_eq!(h.engine.status(h.now).state, SyncState::AllSynced);
}

#[test]
fn activities_wait_for_the_flush_delay_or_a_full_batch() {
    let mut h = Harness::new();
    let start = h.open(1, 7);
    assert!(
        start[0].path.starts_with("/api/v1/sessions/"),
        "the start goes at once"
    );
    assert!(h.ok(&start[0]).is_empty());
    h.handle(comment());
    assert!(h.advance(2_999).is_empty(), "not before 3 s");
    let batch = h.advance(1);
    assert_eq!(batch.len(), 1);
    assert!(batch[0].path.ends_with("/activities/batch"));
    h.ok(&batch[0]);
    // A full batch goes at once.
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent.extend(h.handle_sends(comment()));
    }
    assert_eq!(sent.len(), 1, "the hundredth activity fills a batch");
    let body: serde_json::Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(body["activities"].as_array().unwrap().len(), 100);
    assert!(sent[0].body.len() <= 60 * 1024);
}

#[test]
fn the_alarm_flushes_whatever_waits() {
    let mut h = Harness::new();
    let start = h.open(1, 7);
    h.ok(&start[0]);
    h.handle(comment());
    let sent = h.handle_sends(Event::Alarm);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].path.ends_with("/activities/batch"));
}

#[test]
fn a_5xx_backs_off_with_jitter_and_a_429_honours_retry_after() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    assert!(h.reply(&req, 500, None, String::new()).is_empty());
    let retry_at = h.engine.state().outbox().sessions()[0].retry.retry_at;
    assert!(
        (h.now..=h.now + 1_000).contains(&retry_at),
        "first retry within the 1 s ceiling"
    );
    assert_eq!(h.engine.status(h.now).state, SyncState::Failing);
    assert_eq!(h.engine.poll_timeout(), Some(retry_at.max(h.now)));
    h.now = retry_at;
    let req = h.handle_sends(Event::Tick).remove(0);
    h.reply(&req, 429, Some("120"), String::new());
    assert_eq!(
        h.engine.status(h.now).hold_until,
        Some(h.now + 120_000),
        "Retry-After honoured"
    );
    assert!(h.advance(119_000).is_empty());
    assert_eq!(h.advance(1_000 + 2_000).len(), 1);
    assert_eq!(attempts(&h), vec![2]);
}

#[test]
fn offline_uses_no_attempts_and_coming_back_online_sends_at_once() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.handle(Event::Response {
        request_id: req.id,
        items: req.items.clone(),
        result: HttpResult::NetworkError {
            message: "refused".into(),
        },
    });
    assert_eq!(attempts(&h), vec![0]);
    assert_eq!(h.engine.status(h.now).state, SyncState::Unreachable);
    h.handle(Event::Offline);
    assert_eq!(h.engine.status(h.now).state, SyncState::Offline);
    for _ in 0..30 {
        assert!(
            h.advance(60_000).is_empty(),
            "nothing is sent while the browser is offline"
        );
    }
    let sent = h.handle_sends(Event::Online);
    assert_eq!(sent.len(), 1, "online sends at once");
    assert_eq!(attempts(&h), vec![0]);
}

#[test]
fn a_401_pauses_everything_until_sign_in_and_nothing_is_dead_lettered() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.unauthorized(&req);
    assert_eq!(h.engine.status(h.now).state, SyncState::SignedOut);
    h.handle(Event::TabClosed { tab: 1 });
    assert!(h.handle_sends(Event::Alarm).is_empty());
    assert!(h.engine.state().dead().entries().is_empty());
    let sent = h.command(|e, now| e.sign_in(now));
    assert_eq!(sent.len(), 1);
    let record: SessionRecord = serde_json::from_str(&sent[0].body).unwrap();
    assert!(
        record.ended_at.is_some(),
        "the newest state (the end) is what goes"
    );
}

#[test]
fn a_413_splits_the_batch_and_a_400_on_one_item_dead_letters_it_with_status_and_reason() {
    let mut h = Harness::new();
    let start = h.open(1, 7).remove(0);
    assert!(h.ok(&start).is_empty());
    let mut sent = Vec::new();
    for _ in 0..100 {
        sent.extend(h.handle_sends(comment()));
    }
    let next = h.reply(&sent[0], 413, None, String::new());
    assert_eq!(next.len(), 1, "split batch goes at once");
    let body: serde_json::Value = serde_json::from_str(&next[0].body).unwrap();
    assert_eq!(body["activities"].as_array().unwrap().len(), 50);
    assert_eq!(
        attempts(&h).iter().sum::<u32>(),
        0,
        "a split costs no attempt"
    );
    let rest = h.ok(&next[0]);
    assert_eq!(rest.len(), 1, "the other half follows");
    h.ok(&rest[0]);
    // One item, refused by the server: it alone is a failed sync.
    h.handle(comment());
    let one = h.advance(3_000).remove(0);
    let after = h.reply(
        &one,
        400,
        None,
        r#"{"code":"bad_request","message":"activity x: at must be positive"}"#.into(),
    );
    let dead = &h.engine.state().dead().entries();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].status, Some(400));
    assert!(
        dead[0].reason.contains("at must be positive"),
        "{}",
        dead[0].reason
    );
    assert!(after.is_empty());
    assert!(h.engine.state().outbox().is_empty());
    // Retry puts it back with attempts reset; the server now accepts it.
    let retried = h.command(|e, now| e.retry_dead(Some("dl-1"), now));
    assert_eq!(retried.len(), 1);
    h.ok(&retried[0]);
    assert!(h.engine.state().dead().entries().is_empty() && h.engine.state().outbox().is_empty());
    let export: serde_json::Value = serde_json::from_str(&h.engine.export_dead_letters()).unwrap();
    assert_eq!(export["dead_letters"].as_array().unwrap().len(), 0);
}

#[test]
fn transient_failures_dead_letter_only_after_10_attempts_and_24_hours() {
    let mut h = Harness::new();
    let mut req = h.open(1, 7).remove(0);
    for n in 1..=200 {
        h.reply(&req, 500, None, "oops".into());
        if !h.engine.state().dead().entries().is_empty() {
            let first = h.engine.state().dead().entries()[0].clone();
            assert!(n >= 10, "not before 10 attempts (gave up at {n})");
            assert!(h.now - common::T0 >= 24 * 3_600_000, "not before 24 h");
            assert_eq!(first.status, Some(500));
            return;
        }
        h.now += 10 * 60_000;
        let sent = h.handle_sends(Event::Alarm);
        req = sent.into_iter().next().expect("retried");
    }
    panic!("never dead-lettered");
}

#[test]
fn the_dead_letter_cap_evicts_and_counts() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.ok(&req);
    for _ in 0..55 {
        h.handle(comment());
        let req = h.advance(3_000).remove(0);
        assert!(req.path.ends_with("/batch"));
        h.reply(
            &req,
            422,
            None,
            r#"{"code":"invalid","message":"refused"}"#.into(),
        );
    }
    let st = h.engine.status(h.now);
    assert_eq!((st.dead_letters, st.evicted, st.evicted_items), (50, 5, 5));
    assert!(st.last_error.unwrap().contains("5 oldest") || h.engine.state().dead().evicted() == 5);
}

#[test]
fn two_tabs_on_the_same_pr_never_count_the_same_seconds_twice() {
    let mut h = Harness::new();
    h.open(1, 7);
    h.open(2, 7); // focus moves to tab 2
    h.now += 60_000;
    let st = h.engine.status(h.now);
    let total: u64 = st.open_sessions.iter().map(|s| s.active_secs).sum();
    assert_eq!(total, 60);
    h.handle(Event::Idle {
        state: reviewtime_core::IdleState::Idle,
    });
    h.now += 60_000;
    let total: u64 = h
        .engine
        .status(h.now)
        .open_sessions
        .iter()
        .map(|s| s.active_secs)
        .sum();
    assert_eq!(total, 60, "idle time is not active time");
}

#[test]
fn an_idle_session_ends_at_the_idle_limit_and_navigating_off_the_pr_ends_it() {
    let mut h = Harness::new();
    let start = h.open(1, 7);
    h.ok(&start[0]);
    assert_eq!(h.engine.poll_timeout(), Some(common::T0 + 15 * 60_000));
    h.now += 5 * 60_000;
    h.handle(Event::UserInput { tab: 1 });
    h.now += 40 * 60_000;
    let sent = h.handle_sends(Event::Tick);
    let record: SessionRecord = serde_json::from_str(&sent[0].body).unwrap();
    // It ends at the last sign of the user, and the idle gap counts for nothing.
    assert_eq!(record.ended_at, Some(common::T0 + 5 * 60_000));
    assert_eq!((record.wall_secs, record.active_secs), (300, 300));
    h.ok(&sent[0]);
    let start = h.open(1, 8);
    h.ok(&start[0]);
    let sent = h.handle_sends(Event::Page {
        tab: 1,
        page: None,
        visible: true,
        focused: true,
    });
    let record: SessionRecord = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(record.pr.number, 8);
    assert!(record.ended_at.is_some());
}

#[test]
fn switching_pr_tabs_is_recorded_and_a_review_is_an_activity() {
    let mut h = Harness::new();
    h.open(1, 7);
    let mut page = pr(7);
    page.view = Some(reviewtime_core::protocol::PrTab::Files);
    h.handle(Event::Page {
        tab: 1,
        page: Some(page),
        visible: true,
        focused: true,
    });
    h.handle(Event::Activity {
        tab: 1,
        kind: ActivityKind::ReviewSubmitted {
            verdict: ReviewVerdict::Approve,
        },
        client_id: None,
        at: None,
    });
    let kinds: Vec<_> = h
        .engine
        .state()
        .outbox()
        .activities()
        .iter()
        .map(|a| a.activity.kind.clone())
        .collect();
    assert_eq!(kinds.len(), 2);
    assert_eq!(
        h.engine.state().reviews().sessions().len(),
        1,
        "same PR, same session"
    );
    // An activity for a tab with no session is refused and counted.
    h.handle(Event::Activity {
        tab: 99,
        kind: ActivityKind::CommentPosted,
        client_id: None,
        at: None,
    });
    assert_eq!(h.engine.state().counters().rejected_inputs, 1);
}

#[test]
fn a_new_worker_life_sends_again_at_once_what_the_last_one_had_in_flight() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.reload();
    let again = h.handle_sends(Event::WorkerStarted);
    assert_eq!(again.len(), 1, "not after the marker's expiry");
    assert_eq!(again[0].items, req.items);
    assert_ne!(again[0].id, req.id);
    assert_eq!(h.engine.state().counters().abandoned_requests, 1);
    // The dead life's answer, should one come, changes nothing.
    h.ok(&req);
    assert_eq!(h.engine.state().outbox().len(), 1);
    h.ok(&again[0]);
    assert!(h.engine.state().outbox().is_empty());
}

#[test]
fn a_worker_killed_mid_request_never_blocks_later_syncs() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    // The worker dies: the next wake loads the persisted snapshot, in-flight marker included.
    h.reload();
    assert!(h.advance(1_000).is_empty(), "one sync at a time");
    let again = h.advance(30_000);
    assert_eq!(again.len(), 1, "the marker expired");
    assert_ne!(again[0].id, req.id);
    // The stale answer to the first request changes nothing.
    h.ok(&req);
    assert_eq!(h.engine.state().outbox().len(), 1);
    h.ok(&again[0]);
    assert!(h.engine.state().outbox().is_empty());
    assert_eq!(h.engine.state().counters().abandoned_requests, 1);
}

#[test]
fn same_inputs_same_outputs() {
    let run = || {
        let mut h = Harness::new();
        let mut out = Vec::new();
        h.open(1, 7);
        for i in 0..5 {
            let req = h.handle_sends(Event::Alarm);
            if let Some(r) = req.first() {
                h.reply(r, 503, None, String::new());
            }
            h.now += 1_000 * i;
            out.push(h.engine.state().to_json());
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn a_report_racing_the_tab_close_opens_no_ghost_session_and_the_real_end_supersedes_the_beacon() {
    let mut h = Harness::new();
    let start = h.open(1, 7);
    h.ok(&start[0]);
    h.now += 2_000;
    let beacon = h.engine.beacon_preview(1, h.now).unwrap();
    let end = h.handle_sends(Event::TabClosed { tab: 1 });
    let real: SessionRecord = serde_json::from_str(&end[0].body).unwrap();
    assert!(
        real.revision > beacon.session.revision,
        "the worker's end wins over the beacon's"
    );
    h.open(1, 7); // the page's last visibility report arrives after the close
    assert!(h.engine.state().reviews().sessions().len() == 0);
    assert_eq!(h.engine.state().counters().rejected_inputs, 1);
}

#[test]
fn a_content_script_repeating_an_activity_gets_it_recorded_once_with_its_own_time() {
    let mut h = Harness::new();
    h.open(1, 7);
    h.now += 5_000;
    let repeat = || Event::Activity {
        tab: 1,
        kind: ActivityKind::CommentPosted,
        client_id: Some("cs-0123456789abcdef".into()),
        at: Some(common::T0 + 1_000),
    };
    h.handle(repeat());
    h.handle(repeat());
    let acts = &h.engine.state().outbox().activities();
    assert_eq!(acts.len(), 1);
    assert_eq!(acts[0].activity.id, "cs-0123456789abcdef");
    assert_eq!(acts[0].activity.at, common::T0 + 1_000);
    // A bad id is refused; a time outside the session falls back to now.
    h.handle(Event::Activity {
        tab: 1,
        kind: ActivityKind::CommentPosted,
        client_id: Some("x y".into()),
        at: None,
    });
    h.handle(Event::Activity {
        tab: 1,
        kind: ActivityKind::CommentPosted,
        client_id: Some("cs-fedcba9876543210".into()),
        at: Some(common::T0 + 99_999_999),
    });
    let acts = &h.engine.state().outbox().activities();
    assert_eq!(acts.len(), 2);
    assert_eq!(acts[1].activity.at, h.now);
    assert_eq!(h.engine.state().counters().rejected_inputs, 1);
}

#[test]
fn the_beacon_preview_carries_progress_never_an_end_and_only_the_newest_activities() {
    let mut h = Harness::new();
    h.open(1, 7);
    for _ in 0..60 {
        h.handle(comment());
    }
    h.open(2, 7); // the same PR in another tab: a beacon from tab 1 must not end it
    let preview = h.engine.beacon_preview(1, h.now).unwrap();
    assert_eq!(preview.session.ended_at, None);
    assert_eq!(
        preview.activities.len(),
        reviewtime_core::engine::BEACON_ACTIVITIES
    );
    let newest = &h
        .engine
        .state()
        .outbox()
        .activities()
        .back()
        .unwrap()
        .activity;
    assert_eq!(preview.activities.last(), Some(newest));
}

#[test]
fn an_open_session_reports_progress_every_five_minutes_not_every_alarm() {
    let mut h = Harness::new();
    let start = h.open(1, 7).remove(0);
    assert!(h.ok(&start).is_empty());
    h.now += 60_000;
    assert!(h.handle_sends(Event::UserInput { tab: 1 }).is_empty());
    assert!(
        h.handle_sends(Event::Alarm).is_empty(),
        "nothing new after a minute"
    );
    h.now += 4 * 60_000;
    h.handle(Event::UserInput { tab: 1 });
    let progress = h.handle_sends(Event::Alarm);
    let record: SessionRecord = serde_json::from_str(&progress[0].body).unwrap();
    assert_eq!((record.ended_at, record.wall_secs), (None, 300));
}

#[test]
fn three_actions_within_200_ms_leave_in_one_request_after_the_flush_delay() {
    let mut h = Harness::new();
    let start = h.open(1, 7);
    assert_eq!(start.len(), 1, "the start goes at once");
    assert!(h.ok(&start[0]).is_empty());
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.extend(h.handle_sends(Event::Activity {
            tab: 1,
            kind: ActivityKind::CommentPosted,
            client_id: None,
            at: None,
        }));
        h.now += 90;
    }
    assert!(sent.is_empty());
    let second = h.advance(3_000);
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(second[0].path.ends_with("/batch"));
    let batch: reviewtime_core::protocol::ActivityBatch =
        serde_json::from_str(&second[0].body).unwrap();
    assert_eq!(batch.activities.len(), 3, "all three in one batch");
    assert!(h.ok(&second[0]).is_empty());
    assert!(h.engine.state().outbox().is_empty());
}

#[test]
fn the_items_of_a_failed_batch_retry_together() {
    let mut h = Harness::new();
    let start = h.open(1, 7).remove(0);
    h.ok(&start);
    for _ in 0..5 {
        h.handle(Event::Activity {
            tab: 1,
            kind: ActivityKind::CommentPosted,
            client_id: None,
            at: None,
        });
    }
    let batch = h.advance(3_000).remove(0);
    h.reply(&batch, 503, None, String::new());
    let times: std::collections::HashSet<i64> = h
        .engine
        .state()
        .outbox()
        .activities()
        .iter()
        .map(|a| a.retry.retry_at)
        .collect();
    assert_eq!(times.len(), 1, "one retry time for the whole batch");
}

#[test]
fn no_request_leaves_before_its_persist_is_acknowledged() {
    let mut h = Harness::new();
    h.engine.handle(shown(1, 7), h.now);
    let Some(Effect::Persist(changes)) = h.engine.poll_effect() else {
        panic!("a commit starts with its persist");
    };
    // The session's start is in the changes, with the small part.
    assert_eq!(changes.items.len(), 1, "{changes:?}");
    assert!(changes.meta.is_some());
    // Not acknowledged: nothing more, however often the shell asks.
    for _ in 0..3 {
        assert_eq!(h.engine.poll_effect(), None);
    }
    h.engine.persisted();
    let rest: Vec<Effect> = std::iter::from_fn(|| h.engine.poll_effect()).collect();
    assert!(
        matches!(&rest[..], [Effect::Send(r), Effect::Notify(_)] if r.path.contains("/sessions/")),
        "{rest:?}"
    );
}

#[test]
fn a_persist_not_acknowledged_is_owed_again_and_holds_its_request_back() {
    let mut h = Harness::new();
    h.engine.handle(shown(1, 7), h.now);
    let Some(Effect::Persist(first)) = h.engine.poll_effect() else {
        panic!("a commit starts with its persist");
    };
    // The shell handles another input without acknowledging the write.
    h.now += 10;
    h.engine.handle(comment(), h.now);
    let Some(Effect::Persist(second)) = h.engine.poll_effect() else {
        panic!("the next effect is a persist again");
    };
    assert!(
        first.items.is_subset(&second.items),
        "the unacknowledged items are owed: {first:?} then {second:?}"
    );
    assert_eq!(second.items.len(), 2, "the start and the comment");
    assert_eq!(h.engine.poll_effect(), None);
    h.engine.persisted();
    let sends = Harness::sends(&h.effects());
    assert_eq!(sends.len(), 1, "the start goes once, after the write");
}

#[test]
fn a_commit_that_changes_nothing_writes_nothing() {
    let mut h = Harness::new();
    h.open(1, 7);
    h.handle(Event::Tick);
    let effects = h.handle(Event::Tick);
    let Some(Effect::Persist(changes)) = effects.first() else {
        panic!("{effects:?}");
    };
    assert!(changes.is_empty(), "{changes:?}");
}

#[test]
fn user_commands_are_methods_with_the_same_commit() {
    let mut h = Harness::new();
    h.engine.sync_now(h.now);
    assert!(matches!(h.engine.poll_effect(), Some(Effect::Persist(_))));
    assert_eq!(
        h.engine.poll_effect(),
        None,
        "released only after the write"
    );
    h.engine.persisted();
    assert!(matches!(h.engine.poll_effect(), Some(Effect::Notify(_))));
    assert_eq!(h.engine.poll_effect(), None);
}
