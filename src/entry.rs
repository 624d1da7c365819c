//! The entry points: what sw.js hands over (runtime messages, browser
//! events), turned into the core's events and submitted to the one
//! [`Driver`] of this worker life, whose commit loop does the rest.

use std::rc::Rc;

use reviewtime_core::dead_letter::DeadLetter;
use reviewtime_core::protocol::{routes, Pairing, WhoAmI};
use reviewtime_core::{Engine, Event, Status};
use reviewtime_driver::{Command, Driver, Input};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::browser::WasmBrowser;
use crate::capability;
use crate::chrome;
use crate::dropbox;
use crate::error::ShellError;
use crate::js;
use crate::message::{BrowserEvent, Message, Sender};
use crate::pages::parse_pr_url;
use crate::settings::{load_settings, save_settings, Settings};
use crate::transport;

thread_local! {
    /// The driver of this worker life. Not state: it holds a write-through
    /// cache of what storage holds, and a new worker starts a new one.
    static DRIVER: Rc<Driver<WasmBrowser>> = Driver::new(WasmBrowser);
}

/// Submits `events` to the commit loop; `reply` reads the answer from the
/// engine once they were saved. With no events, a read that writes nothing.
async fn run<R: 'static>(
    inputs: Vec<Input>,
    reply: impl FnOnce(&Engine, i64) -> R + 'static,
) -> Result<R, ShellError> {
    let driver = DRIVER.with(Rc::clone);
    driver
        .submit(inputs, reply)
        .await
        .map_err(|e| ShellError::Failed(e.to_string()))
}

/// A read: `reply` from the engine as it is; nothing is handled or written.
async fn read<R: 'static>(
    reply: impl FnOnce(&Engine, i64) -> R + 'static,
) -> Result<R, ShellError> {
    run(Vec::new(), reply).await
}

/// Events as the driver's inputs.
fn events(events: Vec<Event>) -> Vec<Input> {
    events.into_iter().map(Input::from).collect()
}

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
        /// Whether the URL is a pull-request page this worker tracks
        /// (src/pages.rs): the content script knows no URL shape.
        pr: bool,
        /// The tab, which keys the content script's drop box (src/dropbox.rs).
        tab: i64,
        beacon_url: Option<String>,
        beacons: Vec<String>,
    },
    DeadLetters {
        status: Status,
        dead_letters: Vec<DeadLetter>,
    },
    /// The state as JSON text (its 64-bit numbers are not all JS-safe).
    Snapshot {
        snapshot: String,
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
    /// The pairing link read, or `None` when it is not one.
    PairingLink {
        pairing: Option<Pairing>,
    },
    /// The host permissions settings need, as match patterns.
    Patterns {
        origins: Vec<String>,
    },
    /// Today's active seconds on the server; `None` when it was not asked.
    Today {
        active_secs: Option<u64>,
    },
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
        let _ = run(vec![Command::RejectedInput.into()], |_, _| ()).await;
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
    let mut dropped = Vec::new(); // drop boxes to remove once their actions are saved
    let inputs = match event {
        BrowserEvent::TabRemoved { tab_id } => {
            let settings = load_settings().await?;
            let left = dropbox::take(tab_id, false).await;
            let mut inputs = left.inputs(tab_id, &settings);
            inputs.push(Event::TabClosed { tab: tab_id }.into());
            dropped = left.keys;
            inputs
        }
        BrowserEvent::TabUpdated { tab_id, url } => {
            let settings = load_settings().await?;
            let left = dropbox::take(tab_id, true).await;
            let mut inputs = left.inputs(tab_id, &settings);
            dropped = left.keys;
            // Leaving PR pages ends the session; a PR page reports itself from its
            // content script. The URL is read again now, as the last step before the
            // events are submitted: the event may have waited (a worker starting,
            // the drop box) while the tab went on to a PR page that has already
            // reported itself, and a stale "not a PR" must not end its session.
            let url = chrome::tab_url(tab_id).await.unwrap_or(url);
            if parse_pr_url(&url, &settings.tracked_hosts).is_none() {
                inputs.push(
                    Event::Location {
                        tab: tab_id,
                        page: None,
                    }
                    .into(),
                );
            }
            inputs
        }
        // Which tab is in front comes from Chrome, read afresh: the window
        // that gained focus, or the tab activated in a window that may not have it.
        BrowserEvent::WindowFocus { window_id } => {
            let tab = if window_id < 0 {
                None
            } else {
                chrome::front_tab().await?
            };
            events(vec![Event::WindowFocus { tab }])
        }
        BrowserEvent::TabActivated { .. } => events(vec![Event::WindowFocus {
            tab: chrome::front_tab().await?,
        }]),
        BrowserEvent::Idle { state } => events(vec![Event::Idle { state }]),
        BrowserEvent::Alarm { .. } => {
            let mut found = presence().await;
            found.push(Event::Alarm);
            events(found)
        }
        BrowserEvent::Startup => {
            // The token and the queue are for the worker and the extension's pages only
            // (an older Chrome without access levels keeps working, less protected).
            let _ = chrome::close_local_storage().await;
            dropbox::open_to_content_scripts().await?;
            chrome::ensure_alarm().await?;
            let settings = load_settings().await?;
            chrome::register_content_script(&settings.content_script_matches()).await?;
            let mut found = presence().await;
            found.push(Event::Alarm);
            events(found)
        }
        BrowserEvent::Online => events(vec![Event::Online]),
        BrowserEvent::Offline => events(vec![Event::Offline]),
        BrowserEvent::Wake => events(vec![Event::Tick]),
    };
    let reply = run(inputs, |engine, now| Reply::Status {
        status: engine.status(now),
    })
    .await?;
    dropbox::remove(&dropped).await;
    Ok(reply)
}

/// Presence as Chrome sees it now: the open tabs (sessions of any other tab
/// lost their close), the system's idle state and the tab in front. The
/// alarm and startup read it afresh, so a missed event is corrected within a
/// minute, and an active session is confirmed present.
async fn presence() -> Vec<Event> {
    let mut events = Vec::new();
    // Taken before the list is read: a tab reported after this is kept.
    let listed_at = js_sys::Date::now() as i64;
    if let Ok(tabs) = chrome::all_tab_ids().await {
        events.push(Event::OpenTabs { tabs, listed_at });
    }
    if let Ok(state) = chrome::idle_state().await {
        events.push(Event::Idle { state });
    }
    if let Ok(tab) = chrome::front_tab().await {
        events.push(Event::WindowFocus { tab });
    }
    events
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
            read(|e, now| Reply::Status {
                status: e.status(now),
            })
            .await
        }
        Message::BrowserEvent { event } => handle_event(event).await,
        Message::Snapshot => {
            read(|e, _| Reply::Snapshot {
                snapshot: e.state().to_json(),
            })
            .await
        }
        Message::Page {
            url,
            visible,
            focused,
        } => {
            let tab = need_tab()?;
            let (settings, seed) = page_settings().await?;
            let url = trusted_url(sender.url.as_deref(), Some(url)).unwrap_or_default();
            // A tab that is not the active one of its window is neither visible nor focused.
            let active = sender.tab_active.unwrap_or(true);
            let (visible, focused) = (visible && active, focused && active);
            let page = parse_pr_url(&url, &settings.tracked_hosts);
            let pr = page.is_some();
            run(
                events(vec![Event::Page {
                    tab,
                    page,
                    visible,
                    focused,
                }]),
                move |e, now| page_reply(e, tab, now, &settings, seed.as_deref(), pr),
            )
            .await
        }
        Message::Input { url } => {
            let tab = need_tab()?;
            let (settings, seed) = page_settings().await?;
            let url = trusted_url(sender.url.as_deref(), url);
            let pr = is_pr(url.as_deref(), &settings);
            let mut found = resume(tab, url, &settings);
            found.push(Event::UserInput { tab });
            run(events(found), move |e, now| {
                page_reply(e, tab, now, &settings, seed.as_deref(), pr)
            })
            .await
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
            let (settings, seed) = page_settings().await?;
            let url = trusted_url(sender.url.as_deref(), url);
            let pr = is_pr(url.as_deref(), &settings);
            let mut found = resume(tab, url, &settings);
            found.push(Event::Activity {
                tab,
                kind: activity,
                client_id: id,
                at,
            });
            run(events(found), move |e, now| {
                page_reply(e, tab, now, &settings, seed.as_deref(), pr)
            })
            .await
        }
        Message::SyncNow => {
            run(vec![Command::SyncNow.into()], |e, now| Reply::Status {
                status: e.status(now),
            })
            .await
        }
        Message::DeadLetters => {
            read(|e, now| Reply::DeadLetters {
                status: e.status(now),
                dead_letters: e.state().dead().entries().iter().cloned().collect(),
            })
            .await
        }
        Message::RetryDead { id } => {
            run(vec![Command::RetryDead(id).into()], |e, now| {
                Reply::Status {
                    status: e.status(now),
                }
            })
            .await
        }
        Message::DiscardDead { id } => {
            run(vec![Command::DiscardDead(id).into()], |e, now| {
                Reply::Status {
                    status: e.status(now),
                }
            })
            .await
        }
        Message::ExportDead => {
            read(|e, _| Reply::Export {
                export: e.export_dead_letters(),
            })
            .await
        }
        Message::GetSettings => Ok(Reply::Settings {
            settings: load_settings().await?,
        }),
        Message::SetSettings { settings } => {
            let settings = settings.validated()?;
            save_settings(&settings).await?;
            chrome::register_content_script(&settings.content_script_matches()).await?;
            // Saved credentials lift an authentication pause at once, the same
            // pairing link too: a 401 from a proxy or a server restored from a
            // backup is not fixed by a new token.
            let inputs = if settings.paired() {
                vec![Command::SignIn.into()]
            } else {
                Vec::new()
            };
            run(inputs, move |_, _| Reply::Settings { settings }).await
        }
        Message::TestConnection { settings } => Ok(test_connection(settings).await),
        Message::ParsePairing { link } => Ok(Reply::PairingLink {
            pairing: Pairing::parse_link(&link),
        }),
        Message::HostPatterns { settings } => Ok(Reply::Patterns {
            origins: settings.validated()?.host_patterns(),
        }),
        Message::Today => today().await,
    }
}

/// The URL a content script's message speaks for. Chrome's `sender.url`
/// gives the frame's origin, which a page cannot fake; it is not updated by
/// in-page navigation (`history.pushState`), so the path comes from the
/// message, and only when its origin is the sender's.
fn trusted_url(sender: Option<&str>, message: Option<String>) -> Option<String> {
    let Some(sender) = sender else {
        return message;
    };
    let origin = |u: &str| {
        let (scheme, rest) = u.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        crate::pages::normalise_origin_text(&format!("{scheme}://{}", &rest[..end]))
    };
    match message {
        Some(m) if origin(&m).is_some() && origin(&m) == origin(sender) => Some(m),
        _ => Some(sender.to_string()),
    }
}

/// Which PR the acting tab shows, so a worker that lost track of the tab (or
/// never saw its page) has the session before the action. It says nothing of
/// visibility or focus: input never makes a page active.
pub(crate) fn resume(tab: i64, url: Option<String>, settings: &Settings) -> Vec<Event> {
    let Some(url) = url else {
        return Vec::new();
    };
    match parse_pr_url(&url, &settings.tracked_hosts) {
        Some(page) => vec![Event::Location {
            tab,
            page: Some(page),
        }],
        None => Vec::new(),
    }
}

/// The settings a page's message needs, and the install's beacon seed when
/// a page can reach the server at all (src/capability.rs); otherwise the seed
/// is not read.
async fn page_settings() -> Result<(Settings, Option<String>), ShellError> {
    let settings = load_settings().await?;
    let seed = if settings.paired() && capability::page_can_reach(&settings.server_url) {
        capability::seed().await.ok()
    } else {
        None
    };
    Ok((settings, seed))
}

/// What a content script hears: whether its tab is tracked, its tab id (the
/// key of its pagehide drop box) and, only where a page-context beacon can
/// arrive (an https server with a public name), a beacon carrying its own
/// session's capability and nothing else. Never the API token or the
/// user-wide beacon key: a content script runs inside github.com's renderer.
/// What a closing page leaves behind goes through the drop box and the
/// worker's own authenticated requests, which reach a server on any
/// address; the beacon is never counted on.
fn page_reply(
    engine: &Engine,
    tab: i64,
    now: i64,
    settings: &Settings,
    seed: Option<&str>,
    pr: bool,
) -> Reply {
    let beacon = seed
        .zip(engine.beacon_preview(tab, now))
        .and_then(|(seed, preview)| capability::beacon(seed, &settings.server_url, preview));
    let (beacon_url, beacons) = match beacon {
        Some((url, body)) => (Some(url), vec![body]),
        None => (None, Vec::new()),
    };
    Reply::Page {
        tracked: engine.tracks(tab),
        pr,
        tab,
        beacon_url,
        beacons,
    }
}

/// Whether `url` is a pull-request page the settings track.
fn is_pr(url: Option<&str>, settings: &Settings) -> bool {
    url.is_some_and(|u| parse_pr_url(u, &settings.tracked_hosts).is_some())
}

/// Today's active review time on the server, for the popup: the last day of
/// `GET /api/v1/totals?days=1`, asked through the transport with the token.
/// Not asked (`None`) when unpaired, or while the server asked every request
/// to wait (Retry-After): no request of any kind until then.
async fn today() -> Result<Reply, ShellError> {
    #[derive(serde::Deserialize)]
    struct Day {
        active_secs: u64,
    }
    #[derive(serde::Deserialize)]
    struct Totals {
        per_day: Vec<Day>,
    }
    let settings = load_settings().await?;
    let held = read(|e, now| e.status(now).hold_until.is_some_and(|until| until > now)).await?;
    if !settings.paired() || held {
        return Ok(Reply::Today { active_secs: None });
    }
    let url = format!("{}{}?days=1", settings.server_url, routes::TOTALS);
    let r = transport::send("GET", &url, Some(&settings.token), None, 5_000).await?;
    if r.redirected || r.status != 200 {
        return Err(ShellError::Network(format!(
            "the server answered HTTP {} for today's total",
            r.status
        )));
    }
    let totals: Totals = serde_json::from_str(&r.body)
        .map_err(|e| ShellError::Network(format!("today's total did not parse: {e}")))?;
    Ok(Reply::Today {
        active_secs: Some(totals.per_day.last().map_or(0, |d| d.active_secs)),
    })
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
        Ok(r) if r.redirected => fail(format!("{} redirects elsewhere (a sign-in page or a network's login portal?): it is not answering as a ReviewTime server.", settings.server_url)),
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
