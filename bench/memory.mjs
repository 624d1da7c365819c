// The server's resident memory over a long run of ONE process under steady load
// (`scripts/bench.sh memory`; 30 minutes unless MEMORY_MINUTES says otherwise).
//
// One release server on 127.0.0.1 with SQLite in a fresh data directory, started
// once and never restarted; a steady load of what a team's extensions send:
// every second 5 activity batches of 40 new activities, 10 session updates
// (a rolling set of 50 open sessions, each ended after 20 updates and replaced
// by a new one) and one dashboard read (the session list and the totals).
// VmRSS of the server's pid is read from /proc every 5 s.
// Prints one JSON line: { measure: 'server_memory', ... }.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cleanup, parsePairing, scratch } from '../tests/e2e/lib.mjs';

const minutes = Number(process.env.MEMORY_MINUTES || 30);
const bin = process.env.REVIEWTIME_SERVER_BIN;
if (!bin) throw new Error('REVIEWTIME_SERVER_BIN: the release server binary');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const log = (...a) => console.error(new Date().toISOString().slice(11, 19), '[memory]', ...a);

const data = scratch('bench-memory');
// Rate limits off: the load is one token and one address, far past one user's pace.
const child = spawn(bin, ['--data', data, 'serve', '--addr', '127.0.0.1:0', '--exit-after', String(minutes * 60 + 300)], {
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, REVIEWTIME_RATE_BURST: '0', REVIEWTIME_ADDRESS_RATE_BURST: '0' },
});
let boot = '';
const info = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`server did not start: ${boot}`)), 15000);
  child.stdout.on('data', (c) => {
    boot += c;
    const url = /^LISTENING (\S+)$/m.exec(boot);
    const pairing = /^PAIRING (\S+)$/m.exec(boot);
    if (url && pairing) { clearTimeout(timer); resolve({ url: url[1], pairing: pairing[1] }); }
  });
  child.stderr.on('data', (c) => { boot += c; });
  child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${boot}`)));
});
let exited = null;
child.on('exit', (code, signal) => { exited = { code, signal }; });
const { token } = parsePairing(info.pairing);
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const call = async (method, path, body) => {
  const r = await fetch(`${info.url}${path}`, { method, headers, body: body && JSON.stringify(body) });
  await r.arrayBuffer();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status}`);
};

const counts = { activities: 0, session_updates: 0, sessions_ended: 0, reads: 0, errors: 0 };
const open = [];
let nextSession = 0;
let nextActivity = 0;
const newSession = () => ({ id: `mem-s-${nextSession}`, pr: { host: 'github.com', owner: 'octo', repo: 'widgets', number: 1 + (nextSession++ % 500) }, started_at: Date.now(), ended_at: null, wall_secs: 0, active_secs: 0, revision: 0, updates: 0 });
for (let i = 0; i < 50; i++) open.push(newSession());

/** One second of load, spread evenly over the second. */
async function tick() {
  const work = [];
  for (let b = 0; b < 5; b++) {
    const s = open[(nextActivity / 40) % open.length | 0];
    const activities = Array.from({ length: 40 }, (_, i) => ({ id: `mem-a-${nextActivity + i}`, session_id: s.id, at: Date.now(), type: 'file_viewed', path: `src/module_${i}/file_${(nextActivity + i) % 997}.rs` }));
    nextActivity += 40;
    work.push(call('POST', '/api/v1/activities/batch', { activities }).then(() => { counts.activities += 40; }));
  }
  for (let u = 0; u < 10; u++) {
    const k = (counts.session_updates + u) % open.length;
    const s = open[k];
    // The server checks wall_secs against the session's span: keep them true.
    const at = Date.now();
    s.revision++; s.updates++; s.wall_secs = Math.floor((at - s.started_at) / 1000); s.active_secs = Math.floor(s.wall_secs * 0.8);
    const ending = s.updates >= 20;
    if (ending) { s.ended_at = at; open[k] = newSession(); }
    const { updates, ...record } = s;
    work.push(call('PUT', `/api/v1/sessions/${s.id}`, record).then(() => { counts.session_updates++; if (ending) counts.sessions_ended++; }));
  }
  work.push(call('GET', '/api/v1/sessions?limit=50').then(() => call('GET', '/api/v1/totals')).then(() => { counts.reads++; }));
  const settled = await Promise.allSettled(work);
  counts.errors += settled.filter((x) => x.status === 'rejected').length;
}

const samples = [];
const started = Date.now();
const deadline = started + minutes * 60_000;
let nextSample = started;
let nextTick = started;
while (Date.now() < deadline && !exited) {
  if (Date.now() >= nextSample) {
    samples.push({ s: Math.round((Date.now() - started) / 1000), rss_kib: rssKiB(child.pid) });
    nextSample += 5000;
    if (samples.length % 60 === 1) log(`${samples.at(-1).s} s: RSS ${samples.at(-1).rss_kib} KiB`, counts);
  }
  await tick();
  nextTick += 1000;
  await sleep(Math.max(0, nextTick - Date.now()));
}
if (exited) throw new Error(`the server exited during the run: ${JSON.stringify(exited)}`);
samples.push({ s: Math.round((Date.now() - started) / 1000), rss_kib: rssKiB(child.pid) });
const pid = child.pid;
await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); });
cleanup(data);

// Flatness: after a warm-up of 2 minutes (the SQLite page cache and the
// connection pool fill), the highest sample against the one at the warm-up's end.
const warm = samples.find((x) => x.s >= 120) ?? samples[0];
const after = samples.filter((x) => x.s >= warm.s);
const max = Math.max(...after.map((x) => x.rss_kib));
const last = samples.at(-1);
console.log(JSON.stringify({
  measure: 'server_memory', minutes, pid, restarts: 0, ...counts,
  first_kib: samples[0].rss_kib, warm_s: warm.s, warm_kib: warm.rss_kib, max_after_warm_kib: max, last_kib: last.rss_kib,
  growth_after_warm: +(max / warm.rss_kib - 1).toFixed(4),
  last_vs_warm: +(last.rss_kib / warm.rss_kib - 1).toFixed(4),
  // One sample a minute for the table.
  per_minute: samples.filter((x) => x.s % 60 < 5).map((x) => [Math.round(x.s / 60), x.rss_kib]),
  ended_at: new Date().toISOString(),
}));
