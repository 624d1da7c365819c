// ReviewTime service worker: listeners only. Every listener is registered
// synchronously at top level (Chrome wakes the worker for an event only if its
// listener was registered in the first turn), and each handler awaits one
// memoised WASM initialisation. No state lives here: the Rust shell loads it
// from chrome.storage.local on every event.
import init, { dispatchEvent, dispatchMessage } from './wasm/reviewtime_ext.js';

let ready; // the memoised init promise, not state: losing it costs one re-init

function wasm() {
  ready ??= init({ module_or_path: new URL('./wasm/reviewtime_ext_bg.wasm', import.meta.url) }).catch((e) => {
    ready = undefined; // let the next event try again
    throw e;
  });
  return ready;
}

const failed = (e) => ({ ok: false, error: `background failed to start: ${e && e.message ? e.message : e}` });

async function onEvent(event) {
  try { await wasm(); } catch (e) { return failed(e); }
  return dispatchEvent(event);
}

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  wasm()
    .then(() => dispatchMessage(message, {
      tab_id: sender.tab ? sender.tab.id : undefined,
      url: sender.tab && typeof sender.url === 'string' ? sender.url : undefined,
      tab_active: sender.tab ? sender.tab.active : undefined,
      extension_page: sender.id === chrome.runtime.id && typeof sender.url === 'string' && sender.url.startsWith(chrome.runtime.getURL('')),
    }))
    .catch(failed)
    .then(sendResponse);
  return true; // answer asynchronously
});
chrome.tabs.onRemoved.addListener((tabId) => { onEvent({ source: 'tab_removed', tab_id: tabId }); });
chrome.tabs.onUpdated.addListener((tabId, change) => {
  if (change.url) onEvent({ source: 'tab_updated', tab_id: tabId, url: change.url });
});
chrome.tabs.onActivated.addListener((info) => { onEvent({ source: 'tab_activated', tab_id: info.tabId }); });
chrome.windows.onFocusChanged.addListener((windowId) => { onEvent({ source: 'window_focus', window_id: windowId }); });
chrome.idle.onStateChanged.addListener((state) => { onEvent({ source: 'idle', state }); });
chrome.alarms.onAlarm.addListener((alarm) => { onEvent({ source: 'alarm', name: alarm.name }); });
chrome.runtime.onStartup.addListener(() => { onEvent({ source: 'startup' }); });
chrome.runtime.onInstalled.addListener(() => { onEvent({ source: 'startup' }); });
self.addEventListener('online', () => { onEvent({ source: 'online' }); });
self.addEventListener('offline', () => { onEvent({ source: 'offline' }); });
