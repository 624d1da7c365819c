// ReviewTime service worker: listeners only. Every listener is registered
// synchronously at top level (Chrome wakes the worker for an event only if its
// listener was registered in the first turn), and each handler awaits one
// memoised WASM initialisation. No state lives here: the Rust shell loads it
// from chrome.storage.local on every event.
import init, { dispatch } from './wasm/reviewtime_ext.js';

const ALARM = 'reviewtime.sync';
let ready; // the memoised init promise, not state: losing it costs one re-init

function wasm() {
  ready ??= init({ module_or_path: new URL('./wasm/reviewtime_ext_bg.wasm', import.meta.url) }).catch((e) => {
    ready = undefined; // let the next event try again
    throw e;
  });
  return ready;
}

async function handle(message) {
  try {
    await wasm();
  } catch (e) {
    return { ok: false, error: `background failed to start: ${e && e.message ? e.message : e}` };
  }
  return dispatch(message);
}

async function ensureAlarm() {
  // The alarm can vanish on browser restart; it is the safety net, not the main path.
  if (!(await chrome.alarms.get(ALARM))) await chrome.alarms.create(ALARM, { periodInMinutes: 1 });
}

chrome.runtime.onMessage.addListener((message, _sender, sendResponse) => {
  handle(message).then(sendResponse);
  return true; // answer asynchronously
});
chrome.runtime.onInstalled.addListener(() => { ensureAlarm(); });
chrome.runtime.onStartup.addListener(() => { ensureAlarm(); });
chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === ALARM) handle({ type: 'status' });
});
