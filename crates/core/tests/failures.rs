//! Every answer handled as a person would expect (issue 12): what the
//! engine does, and what the status says, for each kind of failure.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Harness, T0};
use reviewtime_core::dead_letter::DeadPayload;
use reviewtime_core::protocol::{
    routes::MAX_FIELD_LEN, ActivityBatch, ActivityKind, BatchAck, Rejected, SessionAck,
    SessionRecord,
};
use reviewtime_core::{Event, HttpResult, Request, SyncState};

const PAGE: &str = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Log in to continue</body></html>";

fn viewed(path: &str) -> Event {
    Event::Activity {
        tab: 1,
        kind: ActivityKind::FileViewed {
            path: Some(path.into()),
        },
        client_id: None,
        at: None,
    }
}

fn attempts(h: &Harness) -> u32 {
    h.engine
        .state()
        .outbox()
        .retries()
        .map(|r| r.attempts)
        .sum()
}

fn batch_ids(req: &Request) -> Vec<String> {
    serde_json::from_str::<ActivityBatch>(&req.body)
        .unwrap()
        .activities
        .into_iter()
        .map(|a| a.id)
        .collect()
}

/// Runs the engine against `answer` until nothing is due for a minute.
fn drain(
    h: &mut Harness,
    first: Vec<Request>,
    mut answer: impl FnMut(&Request) -> (u16, String),
) -> usize {
    let mut queue = first;
    let mut sent = 0;
    for _ in 0..10_000 {
        if let Some(req) = queue.pop() {
            sent += 1;
            let (status, body) = answer(&req);
            queue.extend(h.reply(&req, status, None, body));
            continue;
        }
        if h.engine.state().outbox().is_empty() {
            break;
        }
        queue.extend(h.advance(1_000));
    }
    sent
}

#[test]
fn a_web_page_where_the_api_should_be_pauses_and_loses_nothing() {
    let mut h = Harness::new();
    // A captive portal answers 200 with its page for every path, for 20 s,
    // while three sessions open and close.
    let mut sent = 0;
    let mut queue = Vec::new();
    for n in 1..=3 {
        queue.extend(h.open(n, n as u64));
        h.now += 1_000;
        queue.extend(h.handle_sends(Event::TabClosed { tab: n }));
    }
    let until = h.now + 20_000;
    while h.now < until {
        while let Some(req) = queue.pop() {
            sent += 1;
            queue.extend(h.reply(&req, 200, None, PAGE.into()));
        }
        queue.extend(h.advance(250));
    }
    assert!(sent >= 3, "it kept probing: {sent}");
    assert!(sent <= 20, "with backoff, not a storm: {sent}");
    let st = h.engine.status(h.now);
    assert_eq!(st.state, SyncState::NotApi);
    assert_eq!(
        st.probe_at,
        h.engine.poll_timeout(),
        "the popup's 'checking again at'"
    );
    assert!(st.probe_at.is_some_and(|t| t > h.now && t <= h.now + 8_000));
    assert!(
        st.not_api.as_deref().unwrap().contains("web page"),
        "{:?}",
        st.not_api
    );
    assert_eq!(st.dead_letters, 0);
    assert_eq!(st.evicted, 0);
    assert_eq!(attempts(&h), 0, "no item used an attempt");
    assert_eq!(h.engine.state().outbox().sessions().len(), 3);
    // The portal is gone: everything arrives within a probe's wait.
    queue.extend(h.advance(8_000));
    assert!(!queue.is_empty(), "a probe went");
    drain(&mut h, queue, |r| (200, Harness::ok_body(r)));
    assert!(h.engine.state().outbox().is_empty());
    assert_eq!(h.engine.status(h.now).state, SyncState::AllSynced);
    assert_eq!(h.engine.state().dead().entries().len(), 0);
}

#[test]
fn a_redirect_or_an_error_page_is_not_the_api_but_the_api_s_own_refusal_is() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.handle(Event::Response {
        request_id: req.id,
        items: req.items.clone(),
        result: HttpResult::Redirected,
    });
    let st = h.engine.status(h.now);
    assert_eq!(st.state, SyncState::NotApi);
    assert!(st.not_api.unwrap().contains("redirects"));
    let req = h.advance(10_000).remove(0);
    h.reply(
        &req,
        404,
        None,
        "<html><body>Not Found</body></html>".into(),
    );
    assert_eq!(h.engine.status(h.now).state, SyncState::NotApi);
    assert_eq!(h.engine.state().dead().entries().len(), 0);
    // ReviewTime's own refusal, with its JSON error, is about the item.
    let req = h.advance(10_000).remove(0);
    h.reply(
        &req,
        400,
        None,
        r#"{"code":"bad_request","message":"pull request number must be positive"}"#.into(),
    );
    assert_eq!(h.engine.state().dead().entries().len(), 1);
    assert!(h.engine.state().dead().entries()[0]
        .reason
        .contains("must be positive"));
    let st = h.engine.status(h.now);
    assert_eq!((st.state, st.dead_letters), (SyncState::AllSynced, 1));
}

#[test]
fn a_garbled_answer_is_sent_again_and_said_so() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.reply(&req, 200, None, r#"{"unexpected":true}"#.into());
    assert_eq!(h.engine.state().dead().entries().len(), 0);
    assert_eq!(attempts(&h), 1);
    let st = h.engine.status(h.now);
    assert_eq!(st.state, SyncState::Failing);
    assert!(st.last_error.unwrap().contains("could not be read"));
    assert!(!h
        .engine
        .status(h.now)
        .last_error
        .unwrap_or_default()
        .contains("refused"));
}

#[test]
fn paths_git_allows_are_made_to_fit_and_one_refused_item_is_one_failed_sync() {
    let mut h = Harness::new();
    let start = h.open(1, 7).remove(0);
    h.ok(&start);
    h.handle(viewed(&"a/".repeat(400)));
    h.handle(viewed("src/tab\there.rs"));
    h.handle(viewed("src/ok.rs"));
    let paths: Vec<String> = h
        .engine
        .state()
        .outbox()
        .activities()
        .iter()
        .map(|a| match &a.activity.kind {
            ActivityKind::FileViewed { path } => path.clone().unwrap(),
            _ => unreachable!(),
        })
        .collect();
    assert!(paths[0].len() <= MAX_FIELD_LEN && paths[0].contains("shortened"));
    assert_eq!(paths[1], "src/tab\\there.rs");
    // A server that still refuses one of them answers the batch with its id.
    let req = h.advance(3_000).remove(0);
    let ids = batch_ids(&req);
    let ack = BatchAck {
        accepted: 2,
        rejected: vec![Rejected {
            id: ids[1].clone(),
            code: "field_invalid".into(),
            reason: "the file path holds a character the server refuses".into(),
        }],
        ..BatchAck::default()
    };
    h.reply(&req, 200, None, serde_json::to_string(&ack).unwrap());
    let st = h.engine.state();
    assert!(st.outbox().is_empty());
    assert_eq!(st.dead().entries().len(), 1, "only the refused item");
    match &st.dead().entries()[0].payload {
        DeadPayload::Activities { items, prs } => {
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].id, ids[1]);
            assert_eq!(prs.get(&items[0].session_id).map(|p| p.number), Some(7));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_server_that_refuses_a_whole_batch_is_bisected_to_the_bad_item() {
    for bad in [0usize, 1, 37, 99] {
        let mut h = Harness::new();
        let start = h.open(1, 7).remove(0);
        h.ok(&start);
        for i in 0..100 {
            h.handle(viewed(&format!("src/f{i}.rs")));
        }
        let bad_id = h.engine.state().outbox().activities()[bad]
            .activity
            .id
            .clone();
        let first = h.advance(0);
        let sent = drain(&mut h, first, |r| {
            if batch_ids(r).contains(&bad_id) {
                (
                    400,
                    r#"{"code":"bad_request","message":"the file path is refused"}"#.into(),
                )
            } else {
                (200, Harness::ok_body(r))
            }
        });
        let st = h.engine.state();
        assert!(st.outbox().is_empty());
        assert_eq!(st.dead().entries().len(), 1, "bad item {bad}");
        match &st.dead().entries()[0].payload {
            DeadPayload::Activities { items, .. } => assert_eq!(items[0].id, bad_id),
            other => panic!("{other:?}"),
        }
        assert_eq!(attempts(&h), 0);
        assert!(
            sent <= 16,
            "bisection, not one request per item: {sent} for bad item {bad}"
        );
        assert_eq!(st.batch_cap(), 100, "batches grow back once it is found");
    }
}

#[test]
fn a_429_with_retry_after_holds_every_request_even_new_session_ends() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.open(2, 8);
    h.reply(&req, 429, Some("5"), String::new());
    let st = h.engine.status(h.now);
    assert_eq!(st.state, SyncState::Throttled);
    assert_eq!(st.hold_until, Some(h.now + 5_000));
    // New work, an urgent session end and "Sync now" all wait.
    let mut sent = h.handle_sends(Event::TabClosed { tab: 2 });
    sent.extend(h.command(|e, now| e.sync_now(now)));
    for _ in 0..49 {
        sent.extend(h.advance(100));
    }
    assert!(sent.is_empty(), "nothing for 5 s: {sent:?}");
    assert_eq!(h.engine.poll_timeout(), Some(T0 + 5_000));
    assert_eq!(h.advance(100).len(), 1, "then at once");
}

#[test]
fn retry_after_in_every_date_form_and_absurd_values_are_capped() {
    for value in [
        "Tue, 14 Nov 2023 22:13:30 GMT",
        "Tuesday, 14-Nov-23 22:13:30 GMT",
        "Tue Nov 14 22:13:30 2023",
    ] {
        let mut h = Harness::new();
        let req = h.open(1, 7).remove(0);
        h.reply(&req, 503, Some(value), String::new());
        assert_eq!(
            h.engine.status(h.now).hold_until,
            Some(1_700_000_010_000),
            "{value}"
        );
    }
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.reply(&req, 429, Some("99999999999999999999"), String::new());
    assert_eq!(
        h.engine.status(h.now).hold_until,
        Some(h.now + 3_600_000),
        "capped at an hour"
    );
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.reply(
        &req,
        503,
        Some("Fri, 31 Dec 9999 23:59:59 GMT"),
        String::new(),
    );
    assert_eq!(h.engine.status(h.now).hold_until, Some(h.now + 3_600_000));
}

#[test]
fn after_a_401_sync_now_a_slow_timer_or_the_same_pairing_link_resume() {
    // Sync now re-checks with one request.
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.unauthorized(&req);
    let st = h.engine.status(h.now);
    assert_eq!(st.state, SyncState::SignedOut);
    assert_eq!(st.auth_refused, Some(401));
    assert_eq!(
        st.probe_at,
        Some(h.now + 300_000),
        "the popup's 'checked again at'"
    );
    assert!(h.advance(60_000).is_empty(), "paused");
    let check = h.command(|e, now| e.sync_now(now));
    assert_eq!(check.len(), 1, "one request checks the token");
    h.ok(&check[0]);
    assert_eq!(h.engine.status(h.now).state, SyncState::AllSynced);

    // A slow timer re-checks on its own.
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    h.unauthorized(&req);
    assert_eq!(h.engine.poll_timeout(), Some(h.now + 300_000));
    assert!(h.advance(299_000).is_empty());
    let check = h.advance(1_000);
    assert_eq!(check.len(), 1);
    // Still refused: paused again for another interval, no attempt used.
    h.unauthorized(&check[0]);
    assert_eq!(attempts(&h), 0);
    assert!(h.advance(299_000).is_empty());

    // Saving the same pairing link again resumes at once.
    let sent = h.command(|e, now| e.sign_in(now));
    assert_eq!(sent.len(), 1);
}

#[test]
fn a_clock_that_goes_back_an_hour_holds_nothing() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    // The request is in flight; the clock jumps back an hour.
    let _ = req;
    h.now -= 3_600_000;
    h.reload();
    let sent = h.command(|e, now| e.sync_now(now));
    assert_eq!(
        sent.len(),
        1,
        "the in-flight marker from the future was dropped"
    );
    // A retry time and a hold from the future are clamped too.
    h.reply(&sent[0], 429, Some("60"), String::new());
    h.now -= 3_600_000;
    h.reload();
    h.handle(Event::Tick);
    let st = h.engine.status(h.now);
    assert_eq!(
        st.hold_until,
        Some(h.now + 60_000),
        "the wait asked for, from now"
    );
    let retry_at = h.engine.state().outbox().sessions()[0].retry.retry_at;
    assert!(retry_at <= h.now + 300_000, "within the backoff cap");
    assert_eq!(h.advance(60_000).len(), 1);
}

#[test]
fn a_session_stored_with_other_content_is_a_conflict_with_both_versions() {
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    let sent: SessionRecord = serde_json::from_str(&req.body).unwrap();
    let mut stored = sent.clone();
    stored.started_at -= 60_000;
    stored.wall_secs += 60;
    let ack = SessionAck {
        session: stored.clone(),
        applied: false,
    };
    h.reply(&req, 200, None, serde_json::to_string(&ack).unwrap());
    let st = h.engine.state();
    assert!(st.outbox().is_empty());
    match &st.dead().entries()[0].payload {
        DeadPayload::Conflict { sent: s, stored: t } => {
            assert_eq!(s, &sent);
            assert_eq!(t, &stored);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.engine.status(h.now).conflicts, 1);
    // Retrying a conflict changes nothing: it stays for export or discard.
    h.command(|e, now| e.retry_dead(None, now));
    assert_eq!(h.engine.state().dead().entries().len(), 1);
    // The same content at the same revision is no conflict.
    let mut h = Harness::new();
    let req = h.open(1, 7).remove(0);
    let session: SessionRecord = serde_json::from_str(&req.body).unwrap();
    let ack = SessionAck {
        session,
        applied: false,
    };
    h.reply(&req, 200, None, serde_json::to_string(&ack).unwrap());
    assert!(h.engine.state().dead().entries().is_empty());
}
