//! The entry points: load the snapshot, let the core decide, perform its
//! effects in order (persist before send), answer.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use reviewtime_core::dead_letter::DeadLetter;
use reviewtime_core::protocol::{routes, WhoAmI};
use reviewtime_core::state::Auth;
use reviewtime_core::{Effect, Engine, Event, HttpResult, Request, State, Status, SyncState};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{spawn_local, JsFuture};

use crate::chrome;
use crate::error::ShellError;
use crate::js;
use crate::message::{BrowserEvent, Message, Sender};
use crate::pages::parse_pr_url;
use crate::settings::{Settings, SETTINGS_KEY};
use crate::transport;

/// Key of the snapshot in `chrome.storage.local`.
pub const STATE_KEY: &str = "reviewtime.state";
/// Key a snapshot that failed to parse is moved to, so nothing is lost.
pub const CORRUPT_KEY: &str = "reviewtime.state.corrupt";

/// Every answer: `{ ok: true, ...reply }` or `{ ok: false, error }`.
#[derive(Serialize)]
struct Answer {
    ok: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    reply: Option<Reply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Reply {
    Status {
        status: Status,
    },
    /// For content scripts: what to send on pagehide.
    Page {
        tracked: bool,
        beacon_url: Option<String>,
        beacons: Vec<String>,
    },
    DeadLetters {
        status: Status,
        dead_letters: Vec<DeadLetter>,
    },
    Export {
        export: String,
    },
    Settings {
        settings: Settings,
    },
    Connection {
        connected: bool,
        message: String,
    },
    Done {},
}

fn encode(answer: &Answer) -> JsValue {
    js::to_js(answer).unwrap_or_else(|e| JsValue::from_str(&e.to_string()))
}

fn answer(result: Result<Reply, ShellError>) -> JsValue {
    encode(&match result {
        Ok(reply) => Answer {
            ok: true,
            reply: Some(reply),
            error: None,
        },
        Err(e) => Answer {
            ok: false,
            reply: None,
            error: Some(e.to_string()),
        },
    })
}

fn now() -> i64 {
    js_sys::Date::now() as i64
}

/// Handles one runtime message; `sender` is `{ tab_id }` from Chrome's MessageSender.
///
/// Never throws: every failure becomes `{ ok: false, error }`.
#[wasm_bindgen(js_name = dispatchMessage)]
pub async fn dispatch_message(message: JsValue, sender: JsValue) -> JsValue {
    let sender: Sender = js::from_js(&sender).unwrap_or_default();
    let result = match js::from_js::<Message>(&message) {
        Ok(message) => handle_message(message, sender).await,
        Err(e) => Err(e),
    };
    if matches!(result, Err(ShellError::BadMessage(_))) {
        // Counted, so a misbehaving page shows up in the popup's diagnostics.
        let _ = run(Vec::new(), |engine, _, _| {
            engine.count_rejected();
            Reply::Done {}
        })
        .await;
    }
    answer(result)
}

/// Handles one browser event (tabs, windows, idle, alarms, startup, network, wake).
#[wasm_bindgen(js_name = dispatchEvent)]
pub async fn dispatch_event(event: JsValue) -> JsValue {
    let result = match js::from_js::<BrowserEvent>(&event) {
        Ok(event) => handle_event(event).await,
        Err(e) => Err(e),
    };
    answer(result)
}

async fn handle_event(event: BrowserEvent) -> Result<Reply, ShellError> {
    let events = match event {
        BrowserEvent::TabRemoved { tab_id } => vec![Event::TabClosed { tab: tab_id }],
        BrowserEvent::TabUpdated { tab_id, url } => {
            let settings = load_settings().await?;
            // Leaving PR pages ends the session; a PR page reports itself from its content script.
            match parse_pr_url(&url, &settings.tracked_hosts) {
                None => vec![Event::Page {
                    tab: tab_id,
                    page: None,
                    visible: false,
                    focused: false,
                }],
                Some(_) => Vec::new(),
            }
        }
        BrowserEvent::WindowFocus { window_id } => {
            let tab = if window_id < 0 {
                None
            } else {
                chrome::active_tab(window_id).await?
            };
            vec![Event::WindowFocus { tab }]
        }
        BrowserEvent::Idle { state } => vec![Event::Idle { state }],
        BrowserEvent::Alarm { .. } => {
            let mut events = closed_while_asleep().await;
            events.push(Event::Alarm);
            events
        }
        BrowserEvent::Startup => {
            chrome::ensure_alarm().await?;
            let settings = load_settings().await?;
            chrome::register_content_script(&settings.content_script_matches()).await?;
            let mut events = closed_while_asleep().await;
            events.push(Event::Alarm);
            events
        }
        BrowserEvent::Online => vec![Event::Online],
        BrowserEvent::Offline => vec![Event::Offline],
        BrowserEvent::Wake => vec![Event::Tick],
    };
    run(events, |engine, now, _| Reply::Status {
        status: engine.status(now),
    })
    .await
}

/// Sessions whose tab no longer exists: its close event was lost (the worker
/// was stopped as it fired, or the browser quit). The alarm and startup end them.
async fn closed_while_asleep() -> Vec<Event> {
    let (Ok(open), Some(state)) = (chrome::all_tab_ids().await, peek_state().await) else {
        return Vec::new();
    };
    state
        .tabs
        .keys()
        .filter(|tab| !open.contains(tab))
        .map(|&tab| Event::TabClosed { tab })
        .collect()
}

async fn handle_message(message: Message, sender: Sender) -> Result<Reply, ShellError> {
    if message.privileged() && !sender.extension_page {
        return Err(ShellError::BadMessage(
            "only the extension's own pages may send this message".into(),
        ));
    }
    let tab = sender.tab_id;
    let need_tab =
        || tab.ok_or_else(|| ShellError::BadMessage("this message must come from a tab".into()));
    match message {
        Message::Status => {
            run(Vec::new(), |e, now, _| {
                e.count_message();
                Reply::Status {
                    status: e.status(now),
                }
            })
            .await
        }
        Message::Page {
            url,
            visible,
            focused,
        } => {
            let tab = need_tab()?;
            let settings = load_settings().await?;
            let page = parse_pr_url(&url, &settings.tracked_hosts);
            run(
                vec![Event::Page {
                    tab,
                    page,
                    visible,
                    focused,
                }],
                move |e, now, s| page_reply(e, tab, now, s),
            )
            .await
        }
        Message::Input { url } => {
            let tab = need_tab()?;
            let mut events = resume(tab, url).await?;
            events.push(Event::UserInput { tab });
            run(events, move |e, now, s| page_reply(e, tab, now, s)).await
        }
        Message::Activity {
            activity,
            id,
            at,
            url,
        } => {
            let tab = need_tab()?;
            if let Some(id) = &id {
                if !reviewtime_core::engine::valid_client_id(id) {
                    return Err(ShellError::BadMessage(
                        "activity id must be 8 to 64 letters, digits, - or _".into(),
                    ));
                }
            }
            let mut events = resume(tab, url).await?;
            events.push(Event::Activity {
                tab,
                kind: activity,
                client_id: id,
                at,
            });
            run(events, move |e, now, s| page_reply(e, tab, now, s)).await
        }
        Message::SyncNow => {
            run(vec![Event::SyncNow], |e, now, _| Reply::Status {
                status: e.status(now),
            })
            .await
        }
        Message::DeadLetters => {
            run(Vec::new(), |e, now, _| Reply::DeadLetters {
                status: e.status(now),
                dead_letters: e.state().dead.entries.iter().cloned().collect(),
            })
            .await
        }
        Message::RetryDead { id } => {
            run(vec![Event::RetryDead { id }], |e, now, _| Reply::Status {
                status: e.status(now),
            })
            .await
        }
        Message::DiscardDead { id } => {
            run(vec![Event::DiscardDead { id }], |e, now, _| Reply::Status {
                status: e.status(now),
            })
            .await
        }
        Message::ExportDead => {
            run(Vec::new(), |e, _, _| Reply::Export {
                export: e.export_dead_letters(),
            })
            .await
        }
        Message::GetSettings => Ok(Reply::Settings {
            settings: load_settings().await?,
        }),
        Message::SetSettings { settings } => {
            let settings = settings.validated()?;
            let old = load_settings().await?;
            let value = js::to_js(&settings)?;
            chrome::storage_set(SETTINGS_KEY, &value).await?;
            SETTINGS.with(|c| *c.borrow_mut() = Some(settings.clone()));
            chrome::register_content_script(&settings.content_script_matches()).await?;
            // New credentials lift an authentication pause at once.
            let events = if settings.paired()
                && (settings.token != old.token || settings.server_url != old.server_url)
            {
                vec![Event::SignedIn]
            } else {
                Vec::new()
            };
            run(events, |_, _, s| Reply::Settings {
                settings: s.clone(),
            })
            .await
        }
        Message::TestConnection { settings } => Ok(test_connection(settings).await),
    }
}

/// A user acting in a tab is looking at it: report its page first, so a worker
/// that lost its state (or never saw the page) starts the session before the action.
async fn resume(tab: i64, url: Option<String>) -> Result<Vec<Event>, ShellError> {
    let Some(url) = url else {
        return Ok(Vec::new());
    };
    let settings = load_settings().await?;
    Ok(match parse_pr_url(&url, &settings.tracked_hosts) {
        Some(page) => vec![Event::Page {
            tab,
            page: Some(page),
            visible: true,
            focused: true,
        }],
        None => Vec::new(),
    })
}

fn page_reply(engine: &Engine, tab: i64, now: i64, settings: &Settings) -> Reply {
    match engine.beacon_preview(tab, now) {
        Some(preview) if settings.paired() && !settings.beacon_key.is_empty() => Reply::Page {
            tracked: true,
            beacon_url: Some(format!("{}{}", settings.server_url, routes::BEACON)),
            beacons: crate::beacon::bodies(&settings.beacon_key, &preview),
        },
        preview => Reply::Page {
            tracked: preview.is_some(),
            beacon_url: None,
            beacons: Vec::new(),
        },
    }
}

// ---- the driver: one commit at a time, events grouped ----

type ReplyFn = Box<dyn FnOnce(&mut Engine, i64, &Settings) -> Reply>;
type Slot = Rc<RefCell<Option<Result<Reply, String>>>>;

/// One caller's events, and where its answer goes.
struct Job {
    events: Vec<Event>,
    reply: ReplyFn,
    slot: Slot,
    resolve: Option<js_sys::Function>,
}

thread_local! {
    /// Events waiting for the next commit. Not state: a new worker starts empty,
    /// and a job is only answered after its commit persisted.
    static QUEUE: RefCell<Vec<Job>> = const { RefCell::new(Vec::new()) };
    /// Whether a commit loop is running.
    static DRAINING: Cell<bool> = const { Cell::new(false) };
    /// Write-through copy of the snapshot in chrome.storage.local, valid for this
    /// worker's life only: storage stays the truth, read again on every wake.
    static CACHE: RefCell<Option<State>> = const { RefCell::new(None) };
    /// Likewise for the settings.
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
}

/// Feeds `events` and answers with `reply`, in the next commit.
///
/// Events arriving while a commit runs are handled together in the following
/// one: one load, one persist, whatever the burst (group commit). Each caller
/// is answered only after the snapshot holding its events was saved.
async fn run<F>(events: Vec<Event>, reply: F) -> Result<Reply, ShellError>
where
    F: FnOnce(&mut Engine, i64, &Settings) -> Reply + 'static,
{
    let slot: Slot = Rc::new(RefCell::new(None));
    let mut resolve = None;
    let done = js_sys::Promise::new(&mut |res, _| resolve = Some(res));
    QUEUE.with(|q| {
        q.borrow_mut().push(Job {
            events,
            reply: Box::new(reply),
            slot: slot.clone(),
            resolve,
        })
    });
    if !DRAINING.with(Cell::get) {
        spawn_local(drain());
    }
    let _ = JsFuture::from(done).await;
    let result = slot.borrow_mut().take();
    match result {
        Some(Ok(reply)) => Ok(reply),
        Some(Err(message)) => Err(ShellError::Failed(message)),
        None => Err(ShellError::Failed(
            "the background stopped before answering".into(),
        )),
    }
}

/// Commits queued jobs until none are left.
fn drain() -> Task {
    Box::pin(async {
        DRAINING.with(|d| d.set(true));
        loop {
            let jobs = QUEUE.with(|q| std::mem::take(&mut *q.borrow_mut()));
            if jobs.is_empty() {
                break;
            }
            commit(jobs).await;
        }
        DRAINING.with(|d| d.set(false));
    })
}

/// Loads, feeds every job's events, saves once, answers, then starts any request.
async fn commit(jobs: Vec<Job>) {
    let mut waiters = Vec::with_capacity(jobs.len());
    let mut work = Vec::with_capacity(jobs.len());
    for job in jobs {
        waiters.push((job.slot, job.resolve));
        work.push((job.events, job.reply));
    }
    match apply(work).await {
        Ok(done) => {
            for ((slot, resolve), reply) in waiters.into_iter().zip(done.replies) {
                finish(slot, resolve, Ok(reply));
            }
            if let Some(status) = done.notify {
                show(&status).await;
            }
            for request in done.sends {
                spawn_local(send(request, done.settings.clone()));
            }
        }
        // Nothing was saved: every caller hears why, and their senders may repeat.
        Err(e) => {
            let message = e.to_string();
            for (slot, resolve) in waiters {
                finish(slot, resolve, Err(message.clone()));
            }
        }
    }
}

fn finish(slot: Slot, resolve: Option<js_sys::Function>, result: Result<Reply, String>) {
    *slot.borrow_mut() = Some(result);
    if let Some(r) = resolve {
        let _ = r.call0(&JsValue::NULL);
    }
}

/// What one commit produced.
struct Committed {
    replies: Vec<Reply>,
    sends: Vec<Request>,
    notify: Option<Box<Status>>,
    settings: Settings,
}

async fn apply(work: Vec<(Vec<Event>, ReplyFn)>) -> Result<Committed, ShellError> {
    let settings = load_settings().await?;
    let (mut state, recovered) = take_state().await?;
    state.config.idle_limit_ms = i64::from(settings.idle_limit_minutes) * 60_000;
    let mut engine = Engine::new(state);
    let now = now();
    if recovered {
        engine.count_recovered_corrupt();
    }
    match (&engine.state().auth, settings.paired()) {
        (Auth::Unpaired, true) => engine.handle(Event::SignedIn, now),
        (Auth::Ready | Auth::Rejected { .. }, false) => engine.handle(Event::SignedOut, now),
        _ => {}
    }
    let mut replies = Vec::with_capacity(work.len());
    for (events, reply) in work {
        for event in events {
            engine.handle(event, now);
        }
        replies.push(reply(&mut engine, now, &settings));
    }
    // Even a commit that changed nothing persists: counters and time moved.
    engine.handle(Event::Tick, now);
    let mut sends = Vec::new();
    let mut notify = None;
    while let Some(effect) = engine.poll_effect() {
        match effect {
            Effect::Persist => save_state(engine.state()).await?,
            Effect::Send(request) => sends.push(request),
            Effect::Wake { at } => {
                chrome::set_wake_timer((at - now) as f64, || spawn_local(wake()))
            }
            Effect::Notify(status) => notify = Some(status),
        }
    }
    CACHE.with(|c| *c.borrow_mut() = Some(engine.into_state()));
    Ok(Committed {
        replies,
        sends,
        notify,
        settings,
    })
}

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// A wake-up the engine asked for (boxed: `run` spawns it, and it calls `run`).
fn wake() -> Task {
    Box::pin(async {
        let _ = handle_event(BrowserEvent::Wake).await;
    })
}

/// Performs a request outside the turn, then feeds its outcome back.
fn send(request: Request, settings: Settings) -> Task {
    Box::pin(async move {
        let request_id = request.id;
        let result = perform(&request, &settings).await;
        let _ = run(vec![Event::Response { request_id, result }], |_, _, _| {
            Reply::Done {}
        })
        .await;
    })
}

/// Makes one request for the engine, turning every failure into an outcome.
async fn perform(request: &Request, settings: &Settings) -> HttpResult {
    if !chrome::online() {
        return HttpResult::Offline;
    }
    let url = format!("{}{}", settings.server_url, request.path);
    let method = match request.method {
        reviewtime_core::engine::Method::Put => "PUT",
        reviewtime_core::engine::Method::Post => "POST",
    };
    let timeout = u32::try_from(request.timeout_ms).unwrap_or(15_000);
    match transport::send(
        method,
        &url,
        Some(&settings.token),
        Some(request.body.clone()),
        timeout,
    )
    .await
    {
        Ok(reply) => HttpResult::Reply {
            status: reply.status,
            retry_after: reply.retry_after,
            body: reply.body,
        },
        Err(ShellError::Timeout(_)) => HttpResult::Timeout,
        Err(_) if !chrome::online() => HttpResult::Offline,
        Err(e) => HttpResult::NetworkError {
            message: e.to_string(),
        },
    }
}

/// Badge and popup: failed syncs as a number, a distinct mark when signed out.
async fn show(status: &Status) {
    let (text, color) = match status.state {
        SyncState::SignedOut => ("!".to_string(), "#9a6700"),
        _ if status.dead_letters > 0 => (status.dead_letters.to_string(), "#cf222e"),
        _ => (String::new(), "#000000"),
    };
    let _ = chrome::set_badge(&text, color).await;
    #[derive(Serialize)]
    struct Push<'a> {
        r#type: &'static str,
        status: &'a Status,
    }
    if let Ok(msg) = js::to_js(&Push {
        r#type: "status_changed",
        status,
    }) {
        chrome::broadcast(&msg).await;
    }
}

async fn test_connection(settings: Settings) -> Reply {
    let fail = |message: String| Reply::Connection {
        connected: false,
        message,
    };
    let settings = match settings.validated() {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    if settings.server_url.is_empty() {
        return fail("Enter the server URL first.".into());
    }
    if settings.token.is_empty() {
        return fail("Enter the API token (paste the pairing link).".into());
    }
    let url = format!("{}{}", settings.server_url, routes::WHOAMI);
    match transport::send("GET", &url, Some(&settings.token), None, 5_000).await {
        Ok(r) if r.status == 200 => match serde_json::from_str::<WhoAmI>(&r.body) {
            Ok(who) => Reply::Connection { connected: true, message: format!("Connected to {} as {}.", settings.server_url, who.user) },
            Err(_) => fail(format!("{} answered, but it is not a ReviewTime server.", settings.server_url)),
        },
        Ok(r) if r.status == 401 || r.status == 403 => {
            fail("The server does not accept this token: it is wrong or was revoked. Pair again with a new link.".into())
        }
        Ok(r) if r.status == 404 => fail(format!("{} answered 404: it is not a ReviewTime server (or an old version).", settings.server_url)),
        Ok(r) => fail(format!("The server answered HTTP {}; try again later.", r.status)),
        Err(ShellError::Timeout(_)) => fail(format!("{} did not answer within 5 seconds.", settings.server_url)),
        Err(e) => fail(format!("Cannot reach {}: is the server running? ({e})", settings.server_url)),
    }
}

// ---- storage ----

async fn load_settings() -> Result<Settings, ShellError> {
    if let Some(s) = SETTINGS.with(|c| c.borrow().clone()) {
        return Ok(s);
    }
    let settings = match chrome::storage_get(SETTINGS_KEY).await? {
        None => Settings::default(),
        // Settings that no longer parse fall back to defaults rather than wedge the worker.
        Some(raw) => js::from_js(&raw).unwrap_or_default(),
    };
    SETTINGS.with(|c| *c.borrow_mut() = Some(settings.clone()));
    Ok(settings)
}

/// The snapshot for a commit: this worker's cached copy, else storage's (or a
/// fresh one); `true` when an unreadable one was set aside. The cache is empty
/// until the commit puts the new state back after saving it.
async fn take_state() -> Result<(State, bool), ShellError> {
    if let Some(state) = CACHE.with(|c| c.borrow_mut().take()) {
        return Ok((state, false));
    }
    let Some(raw) = chrome::storage_get(STATE_KEY).await? else {
        return Ok((fresh_state(), false));
    };
    match raw.as_string().map(|text| State::from_json(&text)) {
        Some(Ok(state)) => Ok((state, false)),
        _ => {
            // Keep what we could not read, then start clean rather than crash.
            chrome::storage_set(CORRUPT_KEY, &raw).await?;
            Ok((fresh_state(), true))
        }
    }
}

/// A read-only look at the snapshot, outside a commit.
async fn peek_state() -> Option<State> {
    if let Some(state) = CACHE.with(|c| c.borrow().clone()) {
        return Some(state);
    }
    let raw = chrome::storage_get(STATE_KEY).await.ok()??;
    State::from_json(&raw.as_string()?).ok()
}

async fn save_state(state: &State) -> Result<(), ShellError> {
    chrome::storage_set(STATE_KEY, &JsValue::from_str(&state.to_json())).await
}

/// A new install: its id and jitter seed are the shell's to choose (the core takes no randomness).
fn fresh_state() -> State {
    let word = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
    let id = (word() << 32) | word();
    State::new(format!("{id:016x}"), (word() << 32) | word())
}
