// Cost as the queue grows, and batching of quick actions, measured on the real
// extension in headless Chromium:
// - commit time (a review action's round trip: content script -> worker ->
//   commit saved -> answer) and bytes written to chrome.storage per commit,
//   with 0, 1,000 and 10,000 items queued (the extension unpaired, so the
//   queue only grows), 40 actions each, median and p95;
// - requests to the server for a burst of three actions made within 200 ms
//   (clicks on the page), and of 100 actions over 1 s (the content script's messages).
// Prints JSON lines: { measure: 'commit_cost', ... } and { measure: 'burst_requests', ... }.
import { api, cleanup, extensionPage, inIsolatedWorld, launchExtension, pair, parsePairing, send, startFaultProxy, startGitHubLike, startServer, tracking, until } from '../tests/e2e/lib.mjs';

const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

const site = await startGitHubLike();
const server = await startServer({ bin: process.env.REVIEWTIME_SERVER_BIN });
const proxy = await startFaultProxy(server.url);
const pairing = parsePairing(server.pairing);
const browser = await launchExtension();
const { context, extensionId } = browser;
const out = { commit: [], bursts: [] };
try {
  // 1. Cost as the queue grows: unpaired, so nothing is sent and the queue only grows.
  const ctl = await extensionPage(context, extensionId, 'options.html');
  const set = await send(ctl, { type: 'set_settings', settings: { server_url: proxy.url, token: '', beacon_key: '', tracked_hosts: [site.origin], idle_limit_minutes: 240 } });
  if (!set.ok) throw new Error(set.error);
  const page = await context.newPage();
  await page.goto(`${site.origin}/octo/widgets/pull/1`);
  await until(async () => (await tracking(page)) === 'tracking', 15000);
  const run = (expression) => inIsolatedWorld(page, expression);
  await ctl.evaluate(() => {
    globalThis.__bytes = 0; globalThis.__writes = 0;
    chrome.storage.onChanged.addListener((changes) => {
      globalThis.__writes++;
      for (const [k, v] of Object.entries(changes)) globalThis.__bytes += k.length + (typeof v.newValue === 'string' ? v.newValue.length : 0);
    });
  });
  let queued = 0;
  let next = 0;
  for (const target of [0, 1000, 10000]) {
    // Fill, 500 messages at a time (group commit makes this quick).
    while (queued < target) {
      const n = Math.min(500, target - queued);
      const from = next; next += n;
      await run(`Promise.all(Array.from({ length: ${n} }, (_, i) => chrome.runtime.sendMessage({ type: 'activity', id: 'fill-' + String(${from} + i).padStart(8, '0'), activity: { type: 'file_viewed', path: 'src/fill/' + (${from} + i) + '.rs' } })))`);
      queued += n;
    }
    await new Promise((r) => setTimeout(r, 300));
    const before = await ctl.evaluate(() => ({ bytes: globalThis.__bytes, writes: globalThis.__writes }));
    const times = await run(`(async () => {
      const times = [];
      for (let i = 0; i < 40; i++) {
        const t0 = performance.now();
        const a = await chrome.runtime.sendMessage({ type: 'activity', id: 'probe-' + ${target} + '-' + String(i).padStart(4, '0'), activity: { type: 'comment_posted' } });
        if (!a || !a.ok) throw new Error('not ok: ' + (a && a.error));
        times.push(performance.now() - t0);
      }
      return times;
    })()`);
    queued += 40; next += 40;
    await new Promise((r) => setTimeout(r, 300));
    const after = await ctl.evaluate(() => ({ bytes: globalThis.__bytes, writes: globalThis.__writes }));
    const writes = after.writes - before.writes;
    // The floor beside it: the same worker writing two small keys straight to chrome.storage.local.
    const [sw] = context.serviceWorkers();
    const floor = await sw.evaluate(async () => {
      const ts = [];
      for (let i = 0; i < 40; i++) {
        const t = performance.now();
        await chrome.storage.local.set({ 'bench.floor.a': 'y'.repeat(1000) + i, 'bench.floor.b': 'z'.repeat(150) + i });
        ts.push(performance.now() - t);
      }
      await chrome.storage.local.remove(['bench.floor.a', 'bench.floor.b']);
      ts.sort((a, b) => a - b);
      return ts[20];
    });
    out.commit.push({
      storage_set_floor_ms: +floor.toFixed(2),
      queued: target,
      median_ms: +quantile(times, 0.5).toFixed(2),
      p95_ms: +quantile(times, 0.95).toFixed(2),
      bytes_per_commit: Math.round((after.bytes - before.bytes) / Math.max(1, writes)),
      writes_per_action: +(writes / 40).toFixed(2),
    });
  }
  const snap = await send(ctl, { type: 'status' });
  out.queue_at_end = snap.status.waiting;
  await page.close();

  // 2. Three actions within 200 ms, paired with the real server behind a counting proxy.
  await pair(context, extensionId, { serverUrl: proxy.url, pairing, origin: site.origin });
  await send(ctl, { type: 'discard_dead' });
  const pr = await context.newPage();
  await pr.goto(`${site.origin}/octo/widgets/pull/2`);
  await until(async () => (await tracking(pr)) === 'tracking', 15000);
  // Let the backlog of part 1 drain first, so only these three are counted.
  await until(async () => (await send(ctl, { type: 'status' })).status.waiting === 0, 120000, 200);
  const onPr2 = async () => {
    const x = (await api(server, pairing.token, '/api/v1/sessions')).sessions.find((y) => y.pr.number === 2);
    if (!x) return 0;
    return (await api(server, pairing.token, `/api/v1/activities?limit=1000&session_id=${x.id}`)).total;
  };
  const burst = async (n, act) => {
    const base = await onPr2();
    const seenBefore = proxy.seen.length;
    const t0 = Date.now();
    await act();
    const spread = Date.now() - t0;
    await until(async () => (await onPr2()) >= base + n, 30000, 100);
    await new Promise((r) => setTimeout(r, 1000)); // anything that would follow
    const reqs = proxy.seen.slice(seenBefore).filter((x) => x.path.startsWith('/api/'));
    const batches = reqs.filter((x) => x.path.startsWith('/api/v1/activities/batch')).length;
    out.bursts.push({ actions: n, made_within_ms: spread, batch_requests: batches, requests: reqs.length, requests_per_activity: +(reqs.length / n).toFixed(3) });
  };
  await burst(3, async () => { for (let i = 0; i < 3; i++) await pr.click('#comment'); }); // as fast as clicks go: within 200 ms
  await new Promise((r) => setTimeout(r, 1500));
  const runPr = (expression) => inIsolatedWorld(pr, expression);
  await burst(100, () => runPr(`(async () => {
    const start = Date.now(); const sends = [];
    for (let i = 0; i < 100; i++) {
      const due = start + i * 10;
      if (Date.now() < due) await new Promise((r) => setTimeout(r, due - Date.now()));
      sends.push(chrome.runtime.sendMessage({ type: 'activity', id: 'b100-' + String(i).padStart(4, '0'), activity: { type: 'file_viewed', path: 'src/b100/' + i + '.rs' } }));
    }
    await Promise.all(sends);
  })()`));
} finally {
  await context.close().catch(() => {});
  cleanup(browser.profile);
  await proxy.stop();
  await server.stop();
  cleanup(server.data);
  await site.stop();
}
console.log(JSON.stringify({ measure: 'commit_cost', rows: out.commit, queue_at_end: out.queue_at_end }));
for (const b of out.bursts) console.log(JSON.stringify({ measure: 'burst_requests', ...b }));
