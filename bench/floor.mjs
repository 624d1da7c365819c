// ReviewTime beside what Chrome itself costs, measured in one run with the
// contenders alternated round by round, so that noise from other work on the
// machine hits them alike. The floors are tiny extensions this script writes:
//   - empty: a module service worker that answers a message at once;
//   - js-state: a plain JavaScript module worker that reads the same state
//     ReviewTime keeps (a copy of its chrome.storage.local) and parses it first;
//   - close-floor: a worker whose tabs.onRemoved posts at once to a bare server;
//   - probe: ReviewTime's own dist/ with one import put in front of sw.js
//     (bench-probe.js, below) that times, inside the worker, the wasm fetch,
//     compile and instantiate, the snapshot reads and the answer. Nothing in
//     extension/ or src/ changes: the probe wraps WebAssembly.instantiateStreaming,
//     chrome.storage.local and the message listener from outside.
// Phase 1 (one browser with ReviewTime paired to the real server, one with the
// close floor): tab close -> the server has the session completed, and page
// shown -> the server has it in progress. Phase 2 (the same profile again,
// with the floors and the probe loaded beside ReviewTime): worker wake-up, and
// an open popup with nothing happening.
//   ROUNDS=40 node bench/floor.mjs      prints one JSON line per measurement
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { cleanup, dist, parsePairing, scratch, startGitHubLike, startServer, tracking, until } from '../tests/e2e/lib.mjs';

const ROUNDS = Number(process.env.ROUNDS || 40);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, median: +q(0.5).toFixed(1), p95: +q(0.95).toFixed(1), min: +s[0].toFixed(1), max: +s[s.length - 1].toFixed(1) };
};
const emit = (measure, data) => console.log(JSON.stringify({ measure, ...data }));
const log = (...a) => console.error('[floor]', ...a);

/** Chrome's id of an unpacked extension: its absolute path's SHA-256, first 32 hex digits as a-p. */
const extensionIdOf = (dir) => [...createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 32)]
  .map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');

function writeExtension(dir, manifest, files) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ manifest_version: 3, version: '1.0', ...manifest }, null, 2));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return { dir, id: extensionIdOf(dir) };
}

const PAGE = '<!doctype html><meta charset="utf-8"><title>bench</title><p>bench page</p>';

/** Put in front of ReviewTime's sw.js in the probe copy: timestamps inside the worker, returned with the answer. */
const PROBE = `// Bench-only (bench/floor.mjs): timestamps inside the worker (performance.now()), kept in
// globalThis.__benchProbe and attached to each message answer as __probe.
const t = { origin: performance.timeOrigin, script: performance.now(), calls: [] };
globalThis.__benchProbe = t;
const instantiate = WebAssembly.instantiateStreaming;
WebAssembly.instantiateStreaming = async (source, imports) => {
  t.wasm_call = performance.now();
  const response = await source;
  t.wasm_fetched = performance.now();
  const module = await WebAssembly.compileStreaming(response);
  t.wasm_compiled = performance.now();
  const instance = await WebAssembly.instantiate(module, imports);
  t.wasm_instantiated = performance.now();
  return { module, instance };
};
const timed = (kind, real) => (...args) => {
  const entry = [kind, performance.now(), null];
  t.calls.push(entry);
  return real(...args).then((v) => { entry[2] = performance.now(); return v; }, (e) => { entry[2] = performance.now(); throw e; });
};
// Every chrome.* call the shell awaits on these paths.
for (const [label, obj, names] of [['', chrome.storage.local, ['get', 'set', 'remove', 'setAccessLevel']],
  ['scripting.', chrome.scripting, ['getRegisteredContentScripts', 'registerContentScripts', 'unregisterContentScripts', 'updateContentScripts']],
  ['alarms.', chrome.alarms, ['create', 'get', 'getAll', 'clear']], ['tabs.', chrome.tabs, ['query', 'get']], ['idle.', chrome.idle, ['queryState']]]) {
  for (const name of names) if (obj && typeof obj[name] === 'function') obj[name] = timed(label + name, obj[name].bind(obj));
}
const realFetch = globalThis.fetch.bind(globalThis);
globalThis.fetch = (input, init) => timed('fetch ' + ((init && init.method) || (input && input.method) || 'GET') + ' ' + new URL(String(input && input.url ? input.url : input), location.href).pathname, realFetch)(input, init);
const onRemoved = chrome.tabs.onRemoved.addListener.bind(chrome.tabs.onRemoved);
chrome.tabs.onRemoved.addListener = (listener) => onRemoved((...args) => { t.calls.push(['tab_removed', performance.now(), performance.now()]); return listener(...args); });
const addListener = chrome.runtime.onMessage.addListener.bind(chrome.runtime.onMessage);
chrome.runtime.onMessage.addListener = (listener) => addListener((message, sender, sendResponse) => {
  const from = t.calls.length;
  const listened = performance.now();
  return listener(message, sender, (answer) => {
    const answered = performance.now();
    if (answer && typeof answer === 'object') answer.__probe = { ...t, calls: t.calls.slice(from), listener: listened, answer: answered };
    sendResponse(answer);
  });
});
`;

/** A proxy in front of a server that records, for each request, its body and when the answer came back. */
async function startTimingProxy(target) {
  const t = new URL(target);
  const seen = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const fwd = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } }, (up) => {
        const back = [];
        up.on('data', (c) => back.push(c));
        up.on('end', () => {
          seen.push({ method: req.method, path: req.url, body: body.toString(), status: up.statusCode, answered: now() });
          res.writeHead(up.statusCode, up.headers);
          res.end(Buffer.concat(back));
        });
      });
      fwd.on('error', () => { res.writeHead(502); res.end(); });
      fwd.end(body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, stop: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

/** A bare HTTP server: answers 204 to everything. */
async function startBareServer() {
  const server = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(204, { 'access-control-allow-origin': '*' }); res.end(); }); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, stop: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

async function launch(profile, dirs) {
  const list = dirs.join(',');
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: [`--disable-extensions-except=${list}`, `--load-extension=${list}`, '--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  });
}

async function workerTargets(cdp, id) {
  const { targetInfos } = await cdp.send('Target.getTargets');
  return targetInfos.filter((x) => x.type === 'service_worker' && x.url.startsWith(`chrome-extension://${id}/`));
}

/** Waits until the worker of extension `id` runs (each starts once at install). */
async function untilWorker(context, id) {
  const cdp = await context.browser().newBrowserCDPSession();
  try { await until(async () => (await workerTargets(cdp, id)).length > 0, 15000, 50); } finally { await cdp.detach(); }
}

/** Stops the service worker of extension `id` only, and waits until it is gone (as tests/e2e/lib.mjs does for all). */
async function stopWorker(cdp, id) {
  const closing = (await workerTargets(cdp, id)).map((x) => x.targetId);
  if (!closing.length) return;
  let destroyed = false;
  const onDestroyed = (e) => { if (closing.includes(e.targetId)) destroyed = true; };
  cdp.on('Target.targetDestroyed', onDestroyed);
  try {
    const deadline = Date.now() + 10000;
    let nextClose = 0;
    while (!destroyed && (await workerTargets(cdp, id)).some((x) => closing.includes(x.targetId))) {
      if (Date.now() > deadline) throw new Error(`the worker of ${id} did not stop`);
      if (Date.now() >= nextClose) {
        for (const targetId of closing) await cdp.send('Target.closeTarget', { targetId }).catch(() => {});
        nextClose = Date.now() + 1000;
      }
      await sleep(10);
    }
  } finally { cdp.off('Target.targetDestroyed', onDestroyed); }
}

/** From an extension page: send a message to a (stopped) worker; time to the answer, measured in the page. */
const wakeFrom = (page, message) => page.evaluate(async (m) => {
  const sent = performance.now();
  const answer = await chrome.runtime.sendMessage(m);
  const received = performance.now();
  return { ms: received - sent, sentEpoch: performance.timeOrigin + sent, receivedEpoch: performance.timeOrigin + received, ok: !!(answer && answer.ok), error: answer && answer.error, probe: answer && answer.__probe };
}, message);

const site = await startGitHubLike();
const server = await startServer({ bin: process.env.REVIEWTIME_SERVER_BIN });
const pairing = parsePairing(server.pairing);
const rtProxy = await startTimingProxy(server.url);
const bare = await startBareServer();
const floorProxy = await startTimingProxy(bare.url);
const work = scratch('bench-floor');
const profileA = path.join(work, 'profile-a');
const profileB = path.join(work, 'profile-b');
const profileD = path.join(work, 'profile-d');
const browsers = [];

// The contenders, written here. ReviewTime itself is a copy of dist/, so a
// rebuild of dist/ by someone else during the run cannot pull it away.
const rt = { dir: path.join(work, 'reviewtime'), id: null };
cpSync(dist, rt.dir, { recursive: true });
rt.id = extensionIdOf(rt.dir);
const probeDir = path.join(work, 'reviewtime-probe');
cpSync(dist, probeDir, { recursive: true });
writeFileSync(path.join(probeDir, 'bench-probe.js'), PROBE);
writeFileSync(path.join(probeDir, 'sw.js'), `import './bench-probe.js';\n${readFileSync(path.join(dist, 'sw.js'), 'utf8')}`);
// Its name stays 'ReviewTime': the content script's isolated world is named after it.
const probe = { dir: probeDir, id: extensionIdOf(probeDir) };
const empty = writeExtension(path.join(work, 'empty'), { name: 'floor: empty module worker', background: { service_worker: 'sw.js', type: 'module' } }, {
  'sw.js': "chrome.runtime.onMessage.addListener((message, sender, sendResponse) => { sendResponse({ ok: true }); });\n",
  'page.html': PAGE,
});
const jsState = writeExtension(path.join(work, 'js-state'), { name: 'floor: JS worker reading its state', background: { service_worker: 'sw.js', type: 'module' }, permissions: ['storage', 'unlimitedStorage'] }, {
  'sw.js': `// Reads everything ReviewTime keeps (a copy of its storage), parses it, answers a status.
chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  chrome.storage.local.get(null).then((items) => {
    const state = {};
    for (const [k, v] of Object.entries(items)) {
      try { state[k] = typeof v === 'string' ? JSON.parse(v) : v; } catch { state[k] = v; }
    }
    sendResponse({ ok: true, status: { keys: Object.keys(state).length } });
  });
  return true;
});
`,
  'page.html': PAGE,
});
const closeFloor = writeExtension(path.join(work, 'close-floor'), { name: 'floor: tabs.onRemoved posts', background: { service_worker: 'sw.js', type: 'module' }, permissions: ['tabs'], host_permissions: ['http://127.0.0.1/*'] }, {
  'sw.js': `chrome.tabs.onRemoved.addListener((tabId) => {
  fetch(${JSON.stringify(`${floorProxy.url}/ended`)}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tab: tabId, at: performance.timeOrigin + performance.now() }) });
});
`,
});

try {
  // ---- Phase 1: tab close and page shown. ReviewTime (browser A) vs the close floor (browser B),
  // and the probe copy of ReviewTime (browser D) for where the time goes, alternated round by round.
  const a = await launch(profileA, [rt.dir]);
  browsers.push(a);
  const b = await launch(profileB, [closeFloor.dir]);
  browsers.push(b);
  const d = await launch(profileD, [probe.dir]);
  browsers.push(d);
  await untilWorker(a, rt.id);
  await untilWorker(b, closeFloor.id);
  await untilWorker(d, probe.id);
  const pairIn = async (context, x) => {
    const ctl = await context.newPage();
    await ctl.goto(`chrome-extension://${x.id}/options.html`);
    const set = await ctl.evaluate((s) => chrome.runtime.sendMessage({ type: 'set_settings', settings: s }),
      { server_url: rtProxy.url, token: pairing.token, beacon_key: pairing.beacon_key, tracked_hosts: [site.origin], idle_limit_minutes: 15 });
    if (!set.ok) throw new Error(`pairing failed: ${set.error}`);
    return ctl;
  };
  await pairIn(a, rt);
  await pairIn(d, probe);

  const sessionPut = (pr, ended) => (r) => {
    if (r.method !== 'PUT' || !r.path.startsWith('/api/v1/sessions/') || r.status >= 300) return false;
    try { const s = JSON.parse(r.body); return s.pr.number === pr && (s.ended_at !== null && s.ended_at !== undefined) === ended; } catch { return false; }
  };
  /**
   * Chrome's clock against this process's: Chrome's epoch time (timeOrigin + now) minus
   * ours, from the evaluation with the shortest round trip of 5 (error: half of it).
   */
  const clockOffset = async (page) => {
    let best = null;
    for (let i = 0; i < 5; i++) {
      const t0 = now();
      const chrome = await page.evaluate(() => performance.timeOrigin + performance.now());
      const t1 = now();
      if (!best || t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: chrome - (performance.timeOrigin + (t0 + t1) / 2) };
    }
    return best;
  };
  /** One review in a tracked tab: page shown -> in progress on the server; comment; tab close -> completed. */
  const reviewRound = (context, base) => async (i) => {
    const pr = base + i;
    const from = rtProxy.seen.length;
    const page = await context.newPage();
    const nav = now();
    await page.goto(`${site.origin}/octo/widgets/pull/${pr}`);
    await until(async () => (await tracking(page)) === 'tracking', 15000, 5);
    const started = await until(() => rtProxy.seen.slice(from).find(sessionPut(pr, false)), 10000, 1);
    const clock = await clockOffset(page);
    // "Shown": the page's DOMContentLoaded (parsed, ready to show; the content script runs at
    // document_idle, never before it), in Chrome's clock brought to ours. Its first contentful
    // paint is recorded beside: headless Chromium sometimes paints only after the server has the session.
    const marks = await page.evaluate(() => new Promise((resolve) => {
      const nav = performance.getEntriesByType('navigation')[0];
      const dcl = performance.timeOrigin + nav.domContentLoadedEventStart;
      const seen = performance.getEntriesByName('first-contentful-paint')[0];
      if (seen) return resolve({ dcl, paint: performance.timeOrigin + seen.startTime });
      new PerformanceObserver((l) => resolve({ dcl, paint: performance.timeOrigin + l.getEntries()[0].startTime })).observe({ type: 'paint', buffered: true });
    }));
    const toOurs = (epoch) => epoch - clock.offset - performance.timeOrigin;
    const shownAt = toOurs(marks.dcl);
    const paintAt = toOurs(marks.paint);
    await page.click('#comment');
    await sleep(200);
    const closed = now();
    await page.close();
    const done = await until(() => rtProxy.seen.slice(from).find(sessionPut(pr, true)), 10000, 1);
    return { shown: started.answered - shownAt, from_paint: started.answered - paintAt, navigation: started.answered - nav, dcl: shownAt - nav, paint: paintAt - nav, close: done.answered - closed, closed, done: done.answered, clock };
  };
  const rtRound = reviewRound(a, 1000);
  const probeReview = reviewRound(d, 5000);
  const probeWorker = () => d.serviceWorkers().find((w) => w.url().startsWith(`chrome-extension://${probe.id}/`));
  const probeRound = async (i) => {
    const r = await probeReview(i);
    // The probe's record, in the worker's clock: from the tab_removed event to the completing PUT.
    const rec = await probeWorker().evaluate(() => { const t = globalThis.__benchProbe; const calls = t.calls.slice(); t.calls.length = 0; return { origin: t.origin, calls }; });
    const toOurs = (x) => rec.origin + x - r.clock.offset - performance.timeOrigin;
    const removedIdx = rec.calls.findLastIndex((c) => c[0] === 'tab_removed');
    const after = rec.calls.slice(removedIdx + 1);
    const put = after.find((c) => c[0].startsWith('fetch PUT /api/v1/sessions/'));
    if (removedIdx < 0 || !put) return { ...r, phases: null };
    const removed = toOurs(rec.calls[removedIdx][1]);
    const beforePut = after.filter((c) => c[1] < put[1] && !c[0].startsWith('fetch'));
    const rel = (c) => `${c[0]} at +${(c[1] - rec.calls[removedIdx][1]).toFixed(1)} for ${((c[2] ?? c[1]) - c[1]).toFixed(1)} ms`;
    return { ...r, calls: rec.calls.filter((c) => c[2] === null || (c[2] >= rec.calls[removedIdx][1] - 50 && c[1] <= put[1])).map(rel), phases: {
      chrome_event: removed - r.closed, // page.close() -> tabs.onRemoved runs in the worker
      storage_before_send: beforePut.reduce((n, c) => n + (c[2] - c[1]), 0),
      storage_calls_before_send: beforePut.length,
      event_to_send: toOurs(put[1]) - removed, // load, decide, commit, then fetch
      request: r.done - toOurs(put[1]), // fetch -> the server has answered (through the proxy)
    } };
  };
  const floorRound = async (i) => {
    const from = floorProxy.seen.length;
    const page = await b.newPage();
    await page.goto(`${site.origin}/octo/widgets/pull/${1000 + i}`);
    await page.click('#comment');
    const clock = await clockOffset(page);
    await sleep(200);
    const closed = now();
    await page.close();
    const done = await until(() => floorProxy.seen.slice(from).find((r) => r.path === '/ended'), 10000, 1);
    // When its tabs.onRemoved ran, in Chrome's clock brought to ours.
    const event = JSON.parse(done.body).at - clock.offset - performance.timeOrigin;
    return { close: done.answered - closed, chrome_event: event - closed, request: done.answered - event };
  };
  // A warm-up round each, not counted (first page of a profile, first connection).
  await rtRound(-1); await floorRound(-1); await probeRound(-1);
  const res = { rt: [], floor: [], probe: [] };
  const rounds1 = [['rt', rtRound], ['floor', floorRound], ['probe', probeRound]];
  for (let i = 0; i < ROUNDS; i++) {
    for (let j = 0; j < rounds1.length; j++) {
      const [name, round] = rounds1[(i + j) % rounds1.length];
      res[name].push(await round(i));
    }
  }
  const col = (xs, k) => xs.map((x) => x[k]).filter((v) => typeof v === 'number');
  const probePhases = res.probe.map((x) => x.phases).filter(Boolean);
  const phaseMedians = Object.fromEntries(Object.keys(probePhases[0] ?? {}).map((k) => [k, stats(col(probePhases, k)).median]));
  // The probe round nearest its median: its chrome.* calls around the close, relative to tabs.onRemoved.
  const probeMedian = stats(col(res.probe, 'close')).median;
  const typical = res.probe.filter((x) => x.calls).sort((x, y) => Math.abs(x.close - probeMedian) - Math.abs(y.close - probeMedian))[0];
  emit('tab_close_ms', { reviewtime: stats(col(res.rt, 'close')), floor: stats(col(res.floor, 'close')), floor_chrome_event: stats(col(res.floor, 'chrome_event')), floor_request: stats(col(res.floor, 'request')), probe: stats(col(res.probe, 'close')), probe_phases_median: phaseMedians, probe_rounds_with_phases: probePhases.length, probe_typical: typical && { close_ms: +typical.close.toFixed(1), calls: typical.calls }, rounds: ROUNDS });
  emit('page_shown_ms', { reviewtime: stats(col(res.rt, 'shown')), from_paint: stats(col(res.rt, 'from_paint')), from_navigation: stats(col(res.rt, 'navigation')), navigation_to_dcl: stats(col(res.rt, 'dcl')), navigation_to_paint: stats(col(res.rt, 'paint')), clock_error_ms: +Math.max(...res.rt.map((x) => x.clock.rtt / 2)).toFixed(2), rounds: ROUNDS });
  log(`tab close p95: ReviewTime ${stats(col(res.rt, 'close')).p95} ms, floor ${stats(col(res.floor, 'close')).p95} ms; page shown p95 ${stats(col(res.rt, 'shown')).p95} ms`);
  // Let ReviewTime's queue empty before its state is copied.
  await sleep(1000);
  for (const br of [b, d, a]) { await br.close(); browsers.splice(browsers.indexOf(br), 1); }

  // ---- Phase 2: the same profile, now with the floors and the probe beside ReviewTime.
  const c = await launch(profileA, [rt.dir, probe.dir, empty.dir, jsState.dir]);
  browsers.push(c);
  for (const x of [rt, probe, empty, jsState]) await untilWorker(c, x.id);
  const pageOf = async (x, file) => { const p = await c.newPage(); await p.goto(`chrome-extension://${x.id}/${file}`); return p; };
  const rtPage = await pageOf(rt, 'options.html');
  // ReviewTime's state after phase 1 (paired, the sessions of every round behind it), copied to the probe and the JS floor.
  const dump = await rtPage.evaluate(() => chrome.storage.local.get(null));
  const stateBytes = Object.entries(dump).reduce((n, [k, v]) => n + k.length + JSON.stringify(v).length, 0);
  const probePage = await pageOf(probe, 'options.html');
  const emptyPage = await pageOf(empty, 'page.html');
  const jsPage = await pageOf(jsState, 'page.html');
  await probePage.evaluate((d) => chrome.storage.local.set(d), dump);
  await jsPage.evaluate((d) => chrome.storage.local.set(d), dump);
  const contenders = [
    { name: 'reviewtime', x: rt, page: rtPage, message: { type: 'status' }, times: [] },
    { name: 'probe', x: probe, page: probePage, message: { type: 'status' }, times: [], probes: [] },
    { name: 'empty', x: empty, page: emptyPage, message: { type: 'status' }, times: [] },
    { name: 'js_state', x: jsState, page: jsPage, message: { type: 'status' }, times: [] },
  ];
  const cdp = await c.browser().newBrowserCDPSession();
  await cdp.send('Target.setDiscoverTargets', { discover: true });
  const wakeRound = async (k) => {
    await stopWorker(cdp, k.x.id);
    await sleep(50);
    const r = await wakeFrom(k.page, k.message);
    if (!r.ok) throw new Error(`${k.name}: ${r.error}`);
    return r;
  };
  for (const k of contenders) await wakeRound(k); // warm-up, not counted
  for (let i = 0; i < ROUNDS; i++) {
    // Rotate the order so that no contender always runs first or last.
    for (let j = 0; j < contenders.length; j++) {
      const k = contenders[(i + j) % contenders.length];
      const r = await wakeRound(k);
      k.times.push(r.ms);
      if (k.probes) k.probes.push({ ...r.probe, sentEpoch: r.sentEpoch, receivedEpoch: r.receivedEpoch });
    }
  }
  const w = Object.fromEntries(contenders.map((k) => [k.name, stats(k.times)]));
  // Where the probe's time went, per wake: the median of each phase.
  const phases = { start_worker: [], load_scripts: [], script_to_wasm_request: [], wasm_request: [], to_wasm: [], wasm_fetch: [], wasm_compile: [], wasm_instantiate: [], init_to_first_read: [], snapshot_reads: [], after_reads_to_answer: [], deliver_answer: [], storage_calls: [] };
  for (const p of contenders[1].probes) {
    const reads = p.calls.filter((s) => s[0] === 'get');
    const firstRead = reads.length ? reads[0][1] : p.answer;
    const lastRead = reads.length ? Math.max(...reads.map((s) => s[2] ?? p.answer)) : p.answer;
    phases.start_worker.push(p.origin - p.sentEpoch);
    phases.load_scripts.push(p.script);
    const wasmGet = p.calls.find((c) => c[0].startsWith('fetch GET /wasm/'));
    phases.script_to_wasm_request.push(wasmGet ? wasmGet[1] - p.script : null);
    phases.wasm_request.push(wasmGet ? wasmGet[2] - wasmGet[1] : null);
    phases.to_wasm.push(p.wasm_call - p.script);
    phases.wasm_fetch.push(p.wasm_fetched - p.wasm_call);
    phases.wasm_compile.push(p.wasm_compiled - p.wasm_fetched);
    phases.wasm_instantiate.push(p.wasm_instantiated - p.wasm_compiled);
    phases.init_to_first_read.push(firstRead - p.wasm_instantiated);
    phases.snapshot_reads.push(lastRead - firstRead);
    phases.after_reads_to_answer.push(p.answer - lastRead);
    phases.deliver_answer.push(p.receivedEpoch - (p.origin + p.answer));
    phases.storage_calls.push(p.calls.length);
  }
  const med = (xs) => stats(xs).median;
  const lastProbe = contenders[1].probes.at(-1);
  emit('worker_wake_ms', { ...w, rounds: ROUNDS, state_bytes: stateBytes, state_keys: Object.keys(dump).length,
    probe_phases_median: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, med(v.filter((x) => typeof x === 'number'))])),
    probe_compile_ms: stats(phases.wasm_compile), probe_first_call_ms: stats(phases.init_to_first_read),
    probe_calls_last: lastProbe.calls.map((s) => `${s[0]} ${(s[2] - s[1]).toFixed(1)} ms`) });
  log(`wake median: ReviewTime ${w.reviewtime.median} ms, probe ${w.probe.median}, empty ${w.empty.median}, JS+state ${w.js_state.median}`);

  // ---- An open popup with nothing happening: status pushes and commits (storage writes) per second.
  const popup = await c.newPage();
  await popup.goto(`chrome-extension://${rt.id}/popup.html`);
  await popup.waitForSelector('#words');
  await sleep(1500);
  const WINDOW_S = 10;
  const idle = await rtPage.evaluate(async (secs) => {
    let pushes = 0; let writes = 0;
    chrome.runtime.onMessage.addListener((m) => { if (m && m.type === 'status_changed') pushes++; });
    chrome.storage.onChanged.addListener(() => { writes++; });
    await new Promise((r) => setTimeout(r, secs * 1000));
    return { pushes, writes };
  }, WINDOW_S);
  emit('popup_idle', { window_s: WINDOW_S, pushes: idle.pushes, commits: idle.writes, pushes_per_s: idle.pushes / WINDOW_S, commits_per_s: idle.writes / WINDOW_S });
  await cdp.detach();
} finally {
  for (const br of browsers) await br.close().catch(() => {});
  await rtProxy.stop();
  await floorProxy.stop();
  await bare.stop();
  await server.stop();
  cleanup(server.data);
  await site.stop();
  cleanup(work);
}
