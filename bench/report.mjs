// Turns the benchmark JSON lines into BENCHMARKS.md: machine, command, figures, targets.
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

// `node bench/report.mjs FILE` prints the whole file; `node bench/report.mjs --server FILE BENCHMARKS.md`
// rewrites only the server-ingest section of BENCHMARKS.md (from `scripts/bench.sh server`).

const serverOnly = process.argv[2] === '--server';
const input = serverOnly ? process.argv[3] : process.argv[2];
const lines = readFileSync(input, 'utf8').split('\n').filter((l) => l.startsWith('{'));
const m = {};
for (const l of lines) { const o = JSON.parse(l); (m[o.measure] ??= []).push(o); }
const one = (k) => (m[k] || [])[0] || {};
const sh = (c) => { try { return execSync(c, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim(); } catch { return 'unknown'; } };
const verdict = (ok) => (ok ? 'met' : '**not met**');
const storeOf = (x) => x.store ?? 'sqlite';
const instancesOf = (x) => x.instances ?? 1;

/** Ingest and session updates per store and instance count, between markers so a server-only run can replace it. */
function serverSection() {
  const rows = [['sqlite', 1, 'SQLite (WAL, synchronous=NORMAL)'], ['postgres', 1, 'PostgreSQL'], ['postgres', 2, 'PostgreSQL, two instances on one database']];
  const find = (k, store, inst, extra = () => true) => (m[k] || []).find((x) => storeOf(x) === store && instancesOf(x) === inst && extra(x)) || {};
  const out = ['<!-- server-ingest:start -->', '## Server ingest: SQLite and PostgreSQL', ''];
  const pg = one('postgres_version').version ?? 'unknown';
  out.push(`\`scripts/bench.sh server\` (also part of the full run), run on ${new Date().toISOString().slice(0, 10)} on ${os.cpus()[0]?.model ?? 'unknown'} × ${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${sh('. /etc/os-release && echo $PRETTY_NAME')}. `
    + `The release server and the load generator (\`crates/server/examples/loadgen.rs\`) on the same machine, over 127.0.0.1: each ingest figure the median (min–max) of ${one('ingest').runs ?? 1} runs of ${one('ingest').secs ?? 5} s, batches of 100 new activities through \`POST /api/v1/activities/batch\`, `
    + `then 2,000 session updates (\`PUT /api/v1/sessions/{id}\`) one at a time. PostgreSQL ${pg} from Debian in a scratch cluster (scripts/pg.sh) with its default, durable settings (fsync and synchronous_commit on), `
    + `a fresh database per row, 16 pooled connections per instance; with two instances each client's requests alternate between them, as a round-robin balancer sends them. `
    + `Load average (1, 5, 15 min) when it started: ${one('server_bench_load').loadavg ?? 'not recorded'}.`, '');
  out.push('| Store | Ingest, 1 client | Ingest, 16 clients | Session update p50 / p99 |', '|---|---|---|---|');
  for (const [store, inst, label] of rows) {
    const i1 = find('ingest', store, inst, (x) => x.clients === 1);
    const i16 = find('ingest', store, inst, (x) => x.clients === 16);
    const u = find('session_update_ms', store, inst);
    if (!i16.activities_per_sec) continue;
    const rate = (x) => (x.min !== undefined ? `${x.activities_per_sec}/s (${x.min}–${x.max})` : `${x.activities_per_sec}/s`);
    out.push(`| ${label} | ${rate(i1)} | ${rate(i16)} | ${u.p50} / ${u.p99} ms |`);
  }
  out.push('');
  const i16 = (store, inst) => find('ingest', store, inst, (x) => x.clients === 16).activities_per_sec;
  if (i16('sqlite', 1)) {
    out.push(`In short: with 16 clients, ${i16('sqlite', 1)} activities/s on SQLite, ${i16('postgres', 1)}/s on PostgreSQL with one instance and ${i16('postgres', 2)}/s with two `
      + `(target: at least 20,000/s with 16 clients: ${verdict([i16('sqlite', 1), i16('postgres', 1), i16('postgres', 2)].every((x) => x >= 20000))} on every row).`, '');
  }
  if (existsSync('bench/server-notes.md')) out.push(readFileSync('bench/server-notes.md', 'utf8').trim(), '');
  out.push('<!-- server-ingest:end -->');
  return out.join('\n');
}

if (serverOnly) {
  const file = process.argv[4];
  const section = serverSection();
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const re = /<!-- server-ingest:start -->[\s\S]*?<!-- server-ingest:end -->/;
  let next;
  if (re.test(doc)) next = doc.replace(re, section);
  else if (doc.includes('\n## Soak')) next = doc.replace('\n## Soak', `\n${section}\n\n## Soak`);
  else next = `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
  process.exit(0);
}

const lat = one('end_sync_latency_ms');
const wake = one('worker_wake_ms');
const size = one('wasm_size_bytes');
const burst = one('burst');
const outage = one('outage_recovery');
const idle = one('idle_requests');
const tick = one('idle_tick_ms');
const sqliteOnly = (x) => storeOf(x) === 'sqlite' && instancesOf(x) === 1;
const ingest1 = (m.ingest || []).find((x) => sqliteOnly(x) && x.clients === 1) || {};
const ingest16 = (m.ingest || []).find((x) => sqliteOnly(x) && x.clients === 16) || {};
const upd = (m.session_update_ms || []).find(sqliteOnly) || {};
const native = one('core_native');
const wasm = one('core_wasm');

const out = [];
out.push('# Benchmarks', '');
out.push(`Run on ${new Date().toISOString().slice(0, 10)} with \`scripts/bench.sh\` (one command; it builds release binaries and the release extension, then runs everything below in one go and rewrites this file).`, '');
out.push('## Machine', '');
out.push(`- CPU: ${os.cpus()[0]?.model ?? 'unknown'} × ${os.cpus().length}`);
out.push(`- Memory: ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${sh('. /etc/os-release && echo $PRETTY_NAME')}; kernel ${os.release()}`);
out.push(`- ${sh('rustc --version')}; node ${process.version}; ${sh('chromium --version')}`);
out.push('- Everything on 127.0.0.1: headless Chromium with the unpacked release extension, the release server with SQLite in a fresh data directory.', '');
out.push('## Results', '');
out.push('| # | What | Figure (median, min–max) | Target | |', '|---|---|---|---|---|');
out.push(`| 1 | End-sync latency: tab close → server has the session Completed (${lat.n} sessions) | median ${lat.median} ms, p95 ${lat.p95} ms (${lat.min}–${lat.max}) | p95 < 100 ms | ${verdict(lat.p95 < 100)} |`);
out.push(`| 2 | Worker wake-up: stopped → message answered by Rust (${wake.n} wakes) | median ${wake.median} ms, p95 ${wake.p95} ms (${wake.min}–${wake.max}) | median < 50 ms | ${verdict(wake.median < 50)} |`);
out.push(`| 2 | Release .wasm size | ${(size.raw / 1024).toFixed(1)} KiB raw, ${(size.gzip / 1024).toFixed(1)} KiB gzip | < 150 KB raw, < 60 KB gzip | ${verdict(size.raw < 150000 && size.gzip < 60000)} |`);
out.push(`| 3 | Burst: 10,000 activities from 5 tabs over 10 s | ${burst.stored} stored exactly once; ${burst.batch_requests} batch requests (${burst.requests_total} in all); produced in ${burst.produce_ms} ms, drained ${burst.drain_after_burst_ms} ms after; ${burst.storage_writes_per_activity} storage writes per activity | ≤ 110 requests, drain < 5 s | ${verdict(burst.requests_total <= 110 && burst.drain_after_burst_ms < 5000 && burst.stored === 10000)} |`);
out.push(`| 4 | Outage recovery: 1,000 items queued, server down ${outage.outage_s} s | drained ${outage.drain_ms} ms after it came back; ${outage.requests_during_outage} connection attempts during the outage; ${outage.attempts_used} retry attempts used; ${outage.dead_lettered} dead-lettered | < 10 s, nothing dead-lettered | ${verdict(outage.drain_ms < 10000 && outage.dead_lettered === 0)} |`);
out.push(`| 5 | Idle: nothing waiting | ${idle.requests} requests in ${idle.window_s} s (${idle.per_hour}/hour); one tick's work (load, decide, persist) median ${tick.median} ms, p95 ${tick.p95} ms | 0 requests | ${verdict(idle.requests === 0)} |`);
const paint = one('popup_first_paint_ms');
if (paint.n) out.push(`| + | Popup open: first contentful paint of popup.html (${paint.n} opens) | median ${paint.median} ms, p95 ${paint.p95} ms (${paint.min}–${paint.max}) | < 100 ms | ${verdict(paint.median < 100)} |`);
out.push(`| 6 | Server ingest through the batch endpoint (SQLite) | ${ingest1.activities_per_sec}/s with 1 client, ${ingest16.activities_per_sec}/s with 16 | ≥ 20,000/s with 16 | ${verdict(ingest16.activities_per_sec >= 20000)} |`);
out.push(`| 6 | Session update latency (${upd.n} PUTs, 1 client) | p50 ${upd.p50} ms, p99 ${upd.p99} ms (${upd.min}–${upd.max}) | — | |`);
out.push(`| 7 | Core throughput, native (${native.events} events × 5 runs) | ${native.median_events_per_sec} events/s (${native.min}–${native.max}) | — | |`);
out.push(`| 7 | Core throughput, wasm in Chromium (${wasm.events} events × 5 runs) | ${wasm.median_events_per_sec} events/s (${wasm.min}–${wasm.max}); native/wasm ratio ${(native.median_events_per_sec / wasm.median_events_per_sec).toFixed(2)} | — | |`);
out.push('');
out.push(serverSection(), '');
if (existsSync('bench/NOTES.md')) out.push(readFileSync('bench/NOTES.md', 'utf8'));
if (existsSync('bench/driver-before-after.md')) out.push(readFileSync('bench/driver-before-after.md', 'utf8'), '');
if (existsSync('bench/soak-summary.md')) out.push(readFileSync('bench/soak-summary.md', 'utf8'));
else out.push('## Soak', '', 'No soak run recorded yet: `scripts/soak.sh` (30 minutes) writes bench/soak-summary.md.');
console.log(out.join('\n'));
