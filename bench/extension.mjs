// Extension benchmarks: the real release build in headless Chromium against
// the real release server on 127.0.0.1. Prints one JSON line per measurement.
//   node bench/extension.mjs
import { api, cleanup, engineState, extensionPage, launchExtension, pair, parsePairing, send, startFaultProxy, startGitHubLike, startServer, tracking, until } from '../tests/e2e/lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, median: +q(0.5).toFixed(1), p95: +q(0.95).toFixed(1), min: +s[0].toFixed(1), max: +s[s.length - 1].toFixed(1) };
};
const emit = (measure, data) => console.log(JSON.stringify({ measure, ...data }));

const site = await startGitHubLike();
const server = await startServer({ bin: process.env.REVIEWTIME_SERVER_BIN });
const proxy = await startFaultProxy(server.url);
const pairing = parsePairing(server.pairing);
const browser = await launchExtension();
const ctl = await pair(browser.context, browser.extensionId, { serverUrl: proxy.url, pairing, origin: site.origin });
const count = async (p) => (await api(server, pairing.token, p)).total;

async function isolatedWorld(page) {
  const cdp = await browser.context.newCDPSession(page);
  const contexts = [];
  cdp.on('Runtime.executionContextCreated', (e) => contexts.push(e.context));
  await cdp.send('Runtime.enable');
  const iso = await until(() => contexts.find((c) => c.auxData && c.auxData.type === 'isolated' && c.name === 'ReviewTime'));
  return (expression) => cdp.send('Runtime.evaluate', { contextId: iso.id, expression, awaitPromise: true, returnByValue: true });
}

async function openPr(n = 1) {
  const page = await browser.context.newPage();
  await page.goto(`${site.origin}/octo/widgets/pull/${n}`);
  await until(async () => (await tracking(page)) === 'tracking');
  return page;
}

try {
  // End-sync latency, wake-up and size: bench/floor.mjs and bench/size.mjs (beside their floors).
  // Popup open time: first contentful paint of popup.html.
  const paints = [];
  for (let i = 0; i < 20; i++) {
    const popup = await extensionPage(browser.context, browser.extensionId, 'popup.html');
    paints.push(await popup.evaluate(() => new Promise((resolve) => {
      const seen = performance.getEntriesByName('first-contentful-paint')[0];
      if (seen) return resolve(seen.startTime);
      new PerformanceObserver((l) => resolve(l.getEntries()[0].startTime)).observe({ type: 'paint', buffered: true });
    })));
    await popup.close();
  }
  emit('popup_first_paint_ms', stats(paints));

  // 5a. Handler cost with nothing waiting: the work of one alarm tick (load, decide, persist).
  const ticks = [];
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    await send(ctl, { type: 'status' });
    ticks.push(performance.now() - t);
  }
  emit('idle_tick_ms', stats(ticks));

  // 3. Burst: 10,000 activities from 5 tabs over 10 s.
  const baseActs = await count('/api/v1/activities?limit=1');
  const before = proxy.seen.length;
  let writes = 0;
  await ctl.evaluate(() => { globalThis.__writes = 0; chrome.storage.onChanged.addListener(() => { globalThis.__writes++; }); });
  const tabs = await Promise.all([1, 2, 3, 4, 5].map((n) => openPr(n)));
  const worlds = await Promise.all(tabs.map((p) => isolatedWorld(p)));
  const burstStart = performance.now();
  await Promise.all(worlds.map((run) => run(`(async () => {
    const start = Date.now();
    const sends = [];
    for (let i = 0; i < 2000; i++) {
      const due = start + i * 5;
      if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
      sends.push(chrome.runtime.sendMessage({ type: 'activity', activity: { type: 'comment_posted' } }));
    }
    const answers = await Promise.all(sends);
    return answers.filter((a) => a && a.ok).length;
  })()`)));
  const produced = performance.now() - burstStart;
  await until(async () => (await count('/api/v1/activities?limit=1')) - baseActs >= 10000, 300000, 100);
  const drained = performance.now() - burstStart;
  writes = await ctl.evaluate(() => globalThis.__writes);
  const burstReqs = proxy.seen.slice(before).filter((r) => r.path === '/api/v1/activities/batch').length;
  emit('burst', { activities: 10000, stored: (await count('/api/v1/activities?limit=1')) - baseActs, produce_ms: Math.round(produced), drain_after_burst_ms: Math.round(drained - produced), batch_requests: burstReqs, requests_total: proxy.seen.length - before, requests_per_activity: +((proxy.seen.length - before) / 10000).toFixed(4), storage_writes_per_activity: +(writes / 10000).toFixed(2) });
  for (const t of tabs) await t.close();
  await until(async () => (await engineState(ctl)).outbox.sessions.length === 0, 30000);

  // 4. Outage recovery: 1,000 items queued while the server is down for 2 minutes.
  const base4 = await count('/api/v1/activities?limit=1');
  const page = await openPr(1);
  const run = await isolatedWorld(page);
  proxy.refuse();
  await run(`(async () => { for (let i = 0; i < 1000; i++) await chrome.runtime.sendMessage({ type: 'activity', activity: { type: 'file_viewed', path: 'f' + i } }); })()`);
  await sleep(120000);
  const attemptsDuringOutage = proxy.refused();
  const st = await engineState(ctl);
  const up = performance.now();
  proxy.accept();
  await until(async () => (await count('/api/v1/activities?limit=1')) - base4 >= 1000, 120000, 50);
  const after = await engineState(ctl);
  emit('outage_recovery', { queued: 1000, outage_s: 120, drain_ms: Math.round(performance.now() - up), requests_during_outage: attemptsDuringOutage, attempts_used: Math.max(0, ...st.outbox.activities.map((a) => a.retry.attempts)), dead_lettered: after.dead.entries.length });
  await page.close();

  // 5b. Idle: nothing waiting, no tabs: requests over two alarm periods.
  await sleep(3000); // the closed tab's session end goes out first
  await until(async () => { const s = await engineState(ctl); return s.outbox.sessions.length + s.outbox.activities.length === 0 && Object.keys((s.reviews ?? s).tabs ?? {}).length === 0; }, 30000);
  const idleFrom = proxy.seen.length;
  await sleep(125000);
  const idleReqs = proxy.seen.slice(idleFrom);
  emit('idle_requests', { window_s: 125, requests: idleReqs.length, per_hour: Math.round((idleReqs.length * 3600) / 125), paths: idleReqs.map((r) => `${r.method} ${r.path}`) });
} finally {
  await browser.context.close();
  cleanup(browser.profile);
  await proxy.stop();
  await server.stop();
  cleanup(server.data);
  await site.stop();
}
