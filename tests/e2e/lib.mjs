// Shared helpers for the end-to-end tests: the real server, the real unpacked
// extension in Debian's headless Chromium, a local page, and the DevTools
// protocol to stop the service worker. Everything listens on 127.0.0.1 and is
// stopped by the test that started it.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const dist = process.env.REVIEWTIME_DIST || path.join(root, 'dist'); // another build to test, e.g. a mutant
export const outputDir = path.join(root, 'test-output');
const scratchRoot = path.join(root, '.scratch');

/** A fresh folder under the project's scratch dir, removed by `cleanup`. */
export function scratch(prefix) {
  mkdirSync(scratchRoot, { recursive: true });
  return mkdtempSync(path.join(scratchRoot, `${prefix}-`));
}

/** Starts the real server on 127.0.0.1 with a fresh database; resolves once it listens. */
export async function startServer({ data = scratch('server'), addr = '127.0.0.1:0', bin = path.join(root, 'target/debug/reviewtime-server') } = {}) {
  const child = spawn(bin, ['--data', data, 'serve', '--addr', addr, '--exit-after', '900'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const info = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 15000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const url = /^LISTENING (\S+)$/m.exec(out);
      if (url) {
        clearTimeout(timer);
        const pairing = /^PAIRING (\S+)$/m.exec(out);
        resolve({ url: url[1], pairing: pairing && pairing[1] });
      }
    });
    child.stderr.on('data', (chunk) => { out += chunk; });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
  return { ...info, data, child, stop };
}

/** Serves `pages` (path -> html) on 127.0.0.1 with GitHub's strict CSP. */
export async function startPageServer(pages) {
  const server = http.createServer((req, res) => {
    const body = pages[new URL(req.url, 'http://x').pathname];
    if (body === undefined) { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
    });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

/**
 * Launches headless Chromium with the unpacked extension from dist/; `args` adds
 * flags (e.g. the ones that serve https://github.com locally, see github.mjs).
 */
export async function launchExtension(profile = scratch('profile'), { args = [] } = {}) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [`--disable-extensions-except=${dist}`, `--load-extension=${dist}`, '--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic', ...args],
  });
  let [sw] = context.serviceWorkers();
  if (!sw) sw = await context.waitForEvent('serviceworker', { timeout: 15000 });
  const extensionId = new URL(sw.url()).host;
  return { context, extensionId, profile };
}

/** An extension page to talk to the worker from (like the popup does). */
export async function extensionPage(context, extensionId, file = 'popup.html') {
  const page = await context.newPage();
  await page.goto(`chrome-extension://${extensionId}/${file}`);
  return page;
}

/** Sends a runtime message from an extension page and returns the answer. */
export function send(page, message) {
  return page.evaluate((m) => chrome.runtime.sendMessage(m), message);
}

async function workerTargets(cdp) {
  const { targetInfos } = await cdp.send('Target.getTargets');
  return targetInfos.filter((t) => t.type === 'service_worker' && t.url.startsWith('chrome-extension://'));
}

const isolatedWorlds = new WeakMap();

/**
 * Evaluates `expression` in the content script's isolated world of `page` (the
 * 'ReviewTime' context of its main frame), where the content script keeps its
 * state: nothing of it is visible to the page. Resolves to undefined while the
 * content script has not run yet.
 */
export async function inIsolatedWorld(page, expression) {
  let world = isolatedWorlds.get(page);
  if (!world) {
    const cdp = await page.context().newCDPSession(page);
    const contexts = new Map();
    cdp.on('Runtime.executionContextCreated', ({ context }) => {
      if (context.name === 'ReviewTime' && context.auxData && context.auxData.type === 'isolated') contexts.set(context.id, context);
    });
    cdp.on('Runtime.executionContextDestroyed', ({ executionContextId }) => contexts.delete(executionContextId));
    cdp.on('Runtime.executionContextsCleared', () => contexts.clear());
    await cdp.send('Runtime.enable');
    const { frameTree } = await cdp.send('Page.getFrameTree');
    world = { cdp, contexts, mainFrame: frameTree.frame.id };
    isolatedWorlds.set(page, world);
  }
  const ctx = [...world.contexts.values()].reverse().find((c) => c.auxData.frameId === world.mainFrame);
  if (!ctx) return undefined;
  const { result, exceptionDetails } = await world.cdp.send('Runtime.evaluate', { contextId: ctx.id, awaitPromise: true, returnByValue: true, expression });
  if (exceptionDetails) {
    if (/Cannot find context/.test(exceptionDetails.text)) return undefined;
    throw new Error(`${exceptionDetails.text} ${exceptionDetails.exception ? exceptionDetails.exception.description : ''}`);
  }
  return result.value;
}

/**
 * What the content script of `page` last heard from the worker: 'tracking' (a
 * pull request with an open session), 'idle', 'error:…', or undefined before it ran.
 */
export async function tracking(page) {
  try {
    return await inIsolatedWorld(page, "globalThis.__reviewtime && globalThis.__reviewtime.tracking");
  } catch (e) {
    if (/context|Target closed|detached/i.test(String(e))) return undefined; // navigating
    throw e;
  }
}

/** Waits until the content script of `page` says its session is open. */
export async function untilTracking(page, ms = 10000) {
  let last;
  try {
    return await until(async () => (last = await tracking(page)) === 'tracking', ms);
  } catch (e) {
    throw new Error(`${e.message}: the content script of ${page.url()} says ${JSON.stringify(last)}`);
  }
}

/** Stops the extension's service worker through the DevTools protocol and waits until it is gone. */
export async function stopServiceWorker(context) {
  const cdp = await context.browser().newBrowserCDPSession();
  try {
    await cdp.send('Target.setDiscoverTargets', { discover: true });
    const closing = (await workerTargets(cdp)).map((t) => t.targetId);
    if (!closing.length) return;
    // A restarted worker may reuse the target id: the worker has stopped once the target
    // was destroyed or absent at any moment, even if an event has already started it again.
    let destroyed = false;
    cdp.on('Target.targetDestroyed', (e) => { if (closing.includes(e.targetId)) destroyed = true; });
    const deadline = Date.now() + 10000;
    let nextClose = 0;
    while (!destroyed && (await workerTargets(cdp)).some((t) => closing.includes(t.targetId))) {
      if (Date.now() > deadline) throw new Error('service worker did not stop');
      if (Date.now() >= nextClose) {
        // Chrome may ignore a close while the worker is starting up: ask again.
        for (const targetId of closing) await cdp.send('Target.closeTarget', { targetId }).catch(() => {});
        nextClose = Date.now() + 1000;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await cdp.detach();
  }
}

/** Whether a service worker of the extension is running. */
export async function serviceWorkerRunning(context) {
  const cdp = await context.browser().newBrowserCDPSession();
  try { return (await workerTargets(cdp)).length > 0; } finally { await cdp.detach(); }
}

export function cleanup(dir) {
  rmSync(dir, { recursive: true, force: true });
}

const GITHUB_CSP = "default-src 'none'; base-uri 'self'; connect-src 'self'; form-action 'self'; img-src 'self' data:; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

const PR_APP_JS = `
// A stand-in for GitHub's Turbo: in-page navigation with pushState, no reload.
function render() {
  const m = /^\\/([^/]+)\\/([^/]+)\\/pull\\/(\\d+)(?:\\/(\\w+))?/.exec(location.pathname);
  document.title = m ? 'PR #' + m[3] + ' · ' + m[1] + '/' + m[2] : 'Repository';
  document.getElementById('title').textContent = m ? 'Pull request #' + m[3] + (m[4] ? ' — ' + m[4] : '') : 'Repository home';
}
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a) return;
  e.preventDefault();
  history.pushState({}, '', a.getAttribute('href'));
  render();
  document.dispatchEvent(new Event('turbo:load', { bubbles: true }));
});
window.addEventListener('popstate', render);
for (const f of document.querySelectorAll('form')) f.addEventListener('submit', (e) => e.preventDefault());
render();
`;

function prPageHtml() {
  return `<!doctype html><html><head><meta charset="utf-8"><title>PR</title></head><body>
<h1 id="title">…</h1>
<nav>
  <a data-nav id="to-pr1" href="/octo/widgets/pull/1">PR 1</a>
  <a data-nav id="to-pr2" href="/octo/widgets/pull/2">PR 2</a>
  <a data-nav id="to-files" href="/octo/widgets/pull/1/files">Files</a>
  <a data-nav id="to-repo" href="/octo/widgets">Repository</a>
</nav>
<form id="comment-form" class="js-new-comment-form"><textarea name="comment[body]">LGTM</textarea><button id="comment" type="submit">Comment</button></form>
<form id="review-form">
  <label><input type="radio" name="pull_request_review[event]" value="comment">Comment</label>
  <label><input type="radio" name="pull_request_review[event]" value="approve" checked>Approve</label>
  <label><input type="radio" name="pull_request_review[event]" value="reject">Request changes</label>
  <button id="review" type="submit">Submit review</button>
</form>
<div class="file" data-path="src/lib.rs"><label><input type="checkbox" name="viewed" id="viewed">Viewed</label></div>
<div class="file" data-path="docs/${'a-very-long-directory-name/'.repeat(24)}notes.md"><label><input type="checkbox" name="viewed" id="viewed-long">Viewed</label></div>
<div class="file" data-path="src/main.rs"><label><input type="checkbox" name="viewed" id="viewed-main">Viewed</label></div>
<div class="file" data-path="src/refused.rs"><label><input type="checkbox" name="viewed" id="viewed-refused">Viewed</label></div>
<script src="/app.js"></script>
</body></html>`;
}

/** A local site shaped like GitHub's PR pages, with GitHub's strict CSP. */
export async function startGitHubLike() {
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (p === '/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(PR_APP_JS);
      return;
    }
    if (p === '/favicon.ico') { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': GITHUB_CSP });
    res.end(prPageHtml());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

/**
 * A proxy in front of the real server that can fail on purpose:
 * `fail(status, times, headers)`, `down()` (connection refused), `up()`.
 * Counts the requests that reach it, by path.
 */
export async function startFaultProxy(target) {
  const t = new URL(target);
  const state = { faults: [], delays: [], seen: [], sockets: new Set(), refusing: false, refused: 0, hook: null };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const seen = { method: req.method, path: req.url, at: Date.now(), status: null };
      state.seen.push(seen);
      const delay = state.delays[0];
      const fault = state.faults[0];
      const isApi = req.url.startsWith('/api/v1/sessions/') || req.url.startsWith('/api/v1/activities/batch');
      const hooked = req.url.startsWith('/api/v1/') && state.hook && state.hook({ method: req.method, path: req.url, body: body.toString() });
      if (hooked) {
        seen.status = hooked.status;
        res.writeHead(hooked.status, hooked.headers || {});
        res.end(hooked.body || '');
        return;
      }
      if (fault && isApi && (!fault.path || req.url.startsWith(fault.path))) {
        if (--fault.times <= 0) state.faults.shift();
        seen.status = fault.status;
        res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
        res.end(JSON.stringify({ code: 'injected', message: `injected ${fault.status}` }));
        return;
      }
      let hold = 0;
      if (delay && isApi && (!delay.path || req.url.startsWith(delay.path))) {
        if (--delay.times <= 0) state.delays.shift();
        hold = delay.ms;
      }
      const fwd = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } }, (up) => {
        const upChunks = [];
        up.on('data', (c) => upChunks.push(c));
        up.on('end', () => setTimeout(() => {
          if (res.destroyed) return;
          seen.status = up.statusCode;
          res.writeHead(up.statusCode, up.headers);
          res.end(Buffer.concat(upChunks));
        }, hold));
      });
      fwd.on('error', () => { res.writeHead(502); res.end(); });
      fwd.end(body);
    });
  });
  server.on('connection', (s) => {
    if (state.refusing) { state.refused++; s.destroy(); return; }
    state.sockets.add(s);
    s.on('close', () => state.sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const proxy = {
    url: `http://127.0.0.1:${port}`,
    seen: state.seen,
    fail(status, times = 1, headers = {}, path = null) { state.faults.push({ status, times, headers, path }); },
    /** The server processes the next `times` requests at once but its answer is held `ms`. */
    delay(ms, times = 1, path = null) { state.delays.push({ ms, times, path }); },
    clearFaults() { state.faults.length = 0; state.delays.length = 0; state.hook = null; },
    /** Answers /api/v1/ requests itself while `fn({ method, path, body })` returns `{ status, headers, body }` (null: forward). */
    answer(fn) { state.hook = fn; },
    async down() {
      for (const s of state.sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
    /** Reset every connection at once (a server that is down), counting the attempts. */
    refuse() { state.refusing = true; for (const s of state.sockets) s.destroy(); },
    accept() { state.refusing = false; },
    refused() { return state.refused; },
    async up() { await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve)); },
    async stop() { for (const s of state.sockets) s.destroy(); if (server.listening) await new Promise((r) => server.close(r)); },
  };
  return proxy;
}

/** Pairs the extension with `serverUrl` and tracks `origin`, through the options page's message. */
export async function pair(context, extensionId, { serverUrl, pairing, origin, idle = 15 }) {
  const page = await extensionPage(context, extensionId, 'options.html');
  const answer = await send(page, { type: 'set_settings', settings: { server_url: serverUrl, token: pairing.token, beacon_key: pairing.beacon_key, tracked_hosts: [origin], idle_limit_minutes: idle } });
  if (!answer.ok) throw new Error(`pairing failed: ${answer.error}`);
  return page;
}

/** Parses `http://HOST/pair#token=..&beacon=..`. */
export function parsePairing(link) {
  const m = /^(https?:\/\/[^#]+?)\/pair#token=([^&]+)&beacon=(.+)$/.exec(link);
  return { server: m[1], token: m[2], beacon_key: m[3] };
}

/** The real server's view, through its API. */
export async function api(server, token, path) {
  const r = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

/** Polls `fn` until it returns a truthy value or `ms` passes. */
export async function until(fn, ms = 10000, every = 25) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** The extension's sync state, as the worker holds it (asked from an extension page). */
export async function engineState(page) {
  const answer = await send(page, { type: 'snapshot' });
  if (!answer || !answer.ok) throw new Error(`snapshot: ${answer && answer.error}`);
  return JSON.parse(answer.snapshot);
}

/** A fresh server, a fault proxy in front of it, and a browser paired with it, tracking `site`. */
export async function setupEnv(t, site, { profile, args = site.args } = {}) {
  const server = await startServer();
  const proxy = await startFaultProxy(server.url);
  const pairing = parsePairing(server.pairing);
  const env = { server, proxy, pairing };
  env.launch = async () => {
    env.browser = await launchExtension(profile, { args });
    env.context = env.browser.context;
    env.ctl = await extensionPage(env.context, env.browser.extensionId, 'options.html');
    return env;
  };
  await env.launch();
  await pair(env.context, env.browser.extensionId, { serverUrl: proxy.url, pairing, origin: site.tracked ?? site.origin });
  t.after(async () => {
    await env.context.close().catch(() => {});
    cleanup(env.browser.profile);
    await proxy.stop();
    await server.stop();
    cleanup(server.data);
  });
  env.sessions = async () => (await api(server, pairing.token, '/api/v1/sessions?limit=500')).sessions;
  env.activities = async () => (await api(server, pairing.token, '/api/v1/activities?limit=1000')).activities;
  env.state = () => engineState(env.ctl);
  env.attempts = async () => { const st = await env.state(); return [...st.outbox.sessions, ...st.outbox.activities].map((i) => i.retry.attempts); };
  return env;
}

/** Opens a PR, comments, then closes the tab (the beacon also reports) or navigates off the PR (only the worker does). */
export async function reviewPr(context, site, { close = true, comments = 1, leave = 'close' } = {}) {
  const page = await context.newPage();
  await page.goto(`${site.origin}/octo/widgets/pull/1`);
  await untilTracking(page);
  for (let i = 0; i < comments; i++) await page.click('#comment');
  if (close) {
    await new Promise((r) => setTimeout(r, 300));
    if (leave === 'navigate') await page.click('#to-repo');
    else await page.close();
  }
  return page;
}


/** The extension's popup, sized as Chrome shows it, once it has drawn its first status. */
export async function openPopup(env) {
  const popup = await extensionPage(env.context, env.browser.extensionId, 'popup.html');
  await popup.setViewportSize({ width: 360, height: 520 });
  await popup.waitForFunction(() => document.getElementById('words').textContent !== 'Loading…');
  return popup;
}

/** A screenshot of the popup in test-output/popup-<name>.png. */
export async function popupShot(popup, name) {
  mkdirSync(outputDir, { recursive: true });
  await popup.screenshot({ path: path.join(outputDir, `popup-${name}.png`), fullPage: true });
}
