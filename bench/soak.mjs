// Soak: continuous review sessions for SOAK_MINUTES (default 30) with random
// worker kills, server restarts and error bursts. Reports items sent,
// delivered, duplicated, lost, dead-lettered, and memory at start and end.
//   node bench/soak.mjs   (scripts/soak.sh runs it and records the summary)
import { readFileSync, writeFileSync } from 'node:fs';
import { api, cleanup, engineState, launchExtension, pair, parsePairing, scratch, send, startFaultProxy, startGitHubLike, startServer, stopServiceWorker, tracking, until } from '../tests/e2e/lib.mjs';

const minutes = Number(process.env.SOAK_MINUTES || 30);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rnd = (n) => Math.floor(Math.random() * n);
const rss = (pid) => { try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]); } catch { return null; } };

const site = await startGitHubLike();
const data = scratch('soak-server');
const bin = process.env.REVIEWTIME_SERVER_BIN;
let server = await startServer({ data, bin });
const port = new URL(server.url).port;
const proxy = await startFaultProxy(server.url);
const pairing = parsePairing(server.pairing);
const browser = await launchExtension();
const ctl = await pair(browser.context, browser.extensionId, { serverUrl: proxy.url, pairing, origin: site.origin });
const workerHeap = async () => { try { return await browser.context.serviceWorkers()[0].evaluate(() => (performance.memory ? performance.memory.usedJSHeapSize : null)); } catch { return null; } };
const mem = async () => ({ server_rss_kib: rss(server.child.pid), worker_js_heap_bytes: await workerHeap() });

const start = { at: new Date().toISOString(), ...(await mem()) };
const counts = { actions: 0, sessions_opened: 0, worker_kills: 0, server_restarts: 0, error_bursts: 0, bad_requests: 0 };
const deadline = Date.now() + minutes * 60_000;
const log = (...a) => console.error(new Date().toISOString().slice(11, 19), ...a);

while (Date.now() < deadline) {
  const page = await browser.context.newPage();
  const n = 1 + rnd(20);
  await page.goto(`${site.origin}/octo/widgets/pull/${n}`);
  await until(async () => (await tracking(page)) === 'tracking', 15000).catch(() => {});
  counts.sessions_opened++;
  for (let i = 0, k = 1 + rnd(6); i < k; i++) {
    await page.click(['#comment', '#review'][rnd(2)]);
    counts.actions++;
    await sleep(rnd(400));
  }
  const fault = rnd(12);
  if (fault === 0) { await stopServiceWorker(browser.context).catch(() => {}); counts.worker_kills++; }
  if (fault === 1) { proxy.fail(500, 1 + rnd(6)); counts.error_bursts++; }
  if (fault === 2) { proxy.fail(429, 1 + rnd(3), { 'retry-after': String(1 + rnd(3)) }); counts.error_bursts++; }
  if (fault === 3) {
    await server.stop();
    await sleep(rnd(3000));
    server = await startServer({ data, bin, addr: `127.0.0.1:${port}` });
    counts.server_restarts++;
  }
  if (fault === 4 && rnd(4) === 0) { proxy.fail(400, 1, {}, '/api/v1/activities/batch'); counts.bad_requests++; }
  if (rnd(2)) await page.close(); else { await page.click('#to-repo'); await sleep(100); await page.close(); }
  if (counts.sessions_opened % 20 === 0) log(counts);
}

// Heal and drain.
proxy.clearFaults();
await until(async () => {
  await send(ctl, { type: 'sync_now' });
  const st = await engineState(ctl);
  return st.outbox.sessions.length + st.outbox.activities.length === 0 && !st.in_flight;
}, 180000, 1000);
const st = await engineState(ctl);
const deadItems = st.dead.entries.reduce((n, e) => n + (e.payload.activities ? e.payload.activities.items.length : 0), 0) + st.dead.evicted_items;
const stored = (await api(server, pairing.token, '/api/v1/activities?limit=1')).total;
const sessions = (await api(server, pairing.token, '/api/v1/sessions?limit=1')).total;
const open = (await api(server, pairing.token, '/api/v1/sessions?status=in_progress&limit=1')).total;
// Every action either reached the server or sits in the dead-letter queue; the
// beacon may deliver a dead-lettered batch's items too, so "both" is counted apart.
const ids = new Set();
let page = 0;
for (;;) {
  const p = await api(server, pairing.token, `/api/v1/activities?limit=1000&offset=${page * 1000}`);
  for (const a of p.activities) ids.add(a.id);
  if (p.activities.length < 1000) break;
  page++;
}
const deadIds = st.dead.entries.flatMap((e) => (e.payload.activities ? e.payload.activities.items.map((a) => a.id) : []));
const both = deadIds.filter((id) => ids.has(id)).length;
const end = { at: new Date().toISOString(), ...(await mem()) };
const summary = {
  minutes, ...counts,
  activities_sent: counts.actions, activities_delivered: stored, duplicated: stored - ids.size,
  lost: counts.actions - stored - (deadItems - both), dead_lettered_items: deadItems, dead_lettered_also_on_server: both,
  dead_letter_reasons: [...new Set(st.dead.entries.map((e) => e.reason))],
  sessions_on_server: sessions, sessions_in_progress_after_drain: open, start, end,
};
console.log(JSON.stringify(summary));
await browser.context.close();
cleanup(browser.profile);
await proxy.stop();
await server.stop();
cleanup(data);
await site.stop();
if (process.env.SOAK_SUMMARY) {
  const md = ['## Soak', '', `\`scripts/soak.sh\`, ${minutes} minutes, ended ${end.at}.`, '',
    '| | |', '|---|---|',
    `| Sessions opened | ${counts.sessions_opened} (on the server: ${sessions}; still in progress after the drain: ${open}) |`,
    `| Review actions sent | ${counts.actions} |`,
    `| Delivered | ${stored} |`,
    `| Duplicated | ${summary.duplicated} |`,
    `| Lost | ${summary.lost} |`,
    `| Dead-lettered | ${deadItems} items (${both} of them also reached the server via the beacon); reasons: ${summary.dead_letter_reasons.join('; ') || 'none'} |`,
    `| Faults injected | ${counts.worker_kills} worker kills, ${counts.server_restarts} server restarts, ${counts.error_bursts} 5xx/429 bursts, ${counts.bad_requests} injected 400s |`,
    `| Server RSS | ${start.server_rss_kib} KiB at start (first server process), ${end.server_rss_kib} KiB at end (after ${counts.server_restarts} restarts) |`,
    `| Worker JS heap | ${start.worker_js_heap_bytes ?? 'n/a'} bytes at start, ${end.worker_js_heap_bytes ?? 'n/a'} at end |`, ''];
  writeFileSync(process.env.SOAK_SUMMARY, md.join('\n'));
}
