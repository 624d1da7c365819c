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

const wake = one('worker_wake_ms');
const close = one('tab_close_ms');
const shown = one('page_shown_ms');
const popupIdle = one('popup_idle');
const commit = one('commit_cost');
const bursts = m.burst_requests || [];
const size = one('wasm_size');
const info = one('run_info');
const total = one('bench_total');
const burst = one('burst');
const outage = one('outage_recovery');
const idle = one('idle_requests');
const tick = one('idle_tick_ms');
const paint = one('popup_first_paint_ms');
const sqliteOnly = (x) => storeOf(x) === 'sqlite' && instancesOf(x) === 1;
const ingest1 = (m.ingest || []).find((x) => sqliteOnly(x) && x.clients === 1) || {};
const ingest16 = (m.ingest || []).find((x) => sqliteOnly(x) && x.clients === 16) || {};
const upd = (m.session_update_ms || []).find(sqliteOnly) || {};
const native = one('core_native');
const wasm = one('core_wasm');
const memory = existsSync('bench/memory-run.json') ? JSON.parse(readFileSync('bench/memory-run.json', 'utf8').trim().split('\n')[0]) : null;

const r2 = (x) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const ratio = (x, y) => (x && y ? x / y : NaN);
const ms = (st) => (st && st.n ? `${st.median} ms (p95 ${st.p95}, ${st.min}–${st.max})` : 'n/a');
const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
const signed = (x, unit = '') => `${x >= 0 ? '+' : '−'}${Math.abs(x).toLocaleString('en')}${unit}`;

const wakeJs = ratio(wake.reviewtime?.median, wake.js_state?.median);
const wakeEmpty = ratio(wake.reviewtime?.median, wake.empty?.median);
const wakeJsP95 = ratio(wake.reviewtime?.p95, wake.js_state?.p95);
const closeP95 = ratio(close.reviewtime?.p95, close.floor?.p95);
const closeMedian = ratio(close.reviewtime?.median, close.floor?.median);
const rows = commit.rows || [];
const commitAt = (q) => rows.find((x) => x.queued === q) || {};
const commitGrowth = ratio(commitAt(10000).median_ms, commitAt(0).median_ms);
const burstOf = (n) => bursts.find((x) => x.actions === n) || {};
const memGrowth = memory ? memory.growth_after_warm : NaN;
const ph = wake.probe_phases_median || {};
const cph = close.probe_phases_median || {};

const out = [];
out.push('# Benchmarks', '');
out.push(`One full run of \`scripts/bench.sh\` on ${new Date().toISOString().slice(0, 10)}${info.commit ? ` at commit ${info.commit}${info.dirty ? ' (with uncommitted changes in the tree: other work in progress)' : ''}` : ''}: it builds the release server and the release extension, then measures everything below in one go and rewrites this file${total.seconds ? ` (this run: ${(total.seconds / 60).toFixed(1)} minutes)` : ''}. `
  + 'Every browser figure stands beside what Chrome itself costs for the same job, measured in the same run with the contenders alternated round by round, so that other work on the machine hits them alike: read the ratios first. '
  + `The server's memory over 30 minutes is its own part, \`scripts/bench.sh memory\` (it cannot fit in the 20-minute run); its last run is shown${memory ? ` (${memory.ended_at.slice(0, 10)})` : ''}.`, '');
out.push('## Machine', '');
out.push(`- CPU: ${os.cpus()[0]?.model ?? 'unknown'} × ${os.cpus().length}; memory ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${sh('. /etc/os-release && echo $PRETTY_NAME')}; kernel ${os.release()}`);
out.push(`- ${sh('rustc --version')}; node ${process.version}; ${sh('chromium --version')}`);
out.push(`- Everything on 127.0.0.1: Debian's headless Chromium with the unpacked release extension (a copy of dist/), the release server with SQLite in a fresh data directory.${info.loadavg ? ` Load average (1, 5, 15 min) when the run started: ${info.loadavg}; other builds and browser tests shared the machine.` : ''}`);
const steps = m.bench_step || [];
if (steps.length) out.push(`- Wall time by step: ${steps.map((x) => `${x.step.split(':')[0]} ${x.seconds} s`).join('; ')}.`);
out.push('');

out.push('## Against the floor', '');
out.push('| What | ReviewTime | Floor (same run) | Ratio | Target | |', '|---|---|---|---|---|---|');
out.push(`| Worker wake: stopped → a status message answered | ${ms(wake.reviewtime)} | plain JS worker that reads and parses the same state from \`chrome.storage.local\`: ${ms(wake.js_state)}; empty module worker: ${ms(wake.empty)} | **${r2(wakeJs)}×** the JS worker (p95 ${r2(wakeJsP95)}×); ${r2(wakeEmpty)}× the empty one | ≤ 1.15× the JS worker | ${verdict(wakeJs <= 1.15)} |`);
out.push(`| Tab close → the server has the session completed | ${ms(close.reviewtime)} | a worker whose \`tabs.onRemoved\` posts at once to a bare HTTP server: ${ms(close.floor)} | **p95 ${r2(closeP95)}×** (median ${r2(closeMedian)}×) | p95 ≤ 1.2× | ${verdict(closeP95 <= 1.2)} |`);
out.push(`| Page shown (DOMContentLoaded) → the server has the session in progress | ${ms(shown.reviewtime)} | the page itself: navigation → DOMContentLoaded ${ms(shown.navigation_to_dcl)}, → first paint ${ms(shown.navigation_to_paint)} | — | p95 < 100 ms | ${verdict(shown.reviewtime?.p95 < 100)} |`);
out.push(`| An open popup, nothing happening (${popupIdle.window_s ?? '?'} s) | ${popupIdle.pushes_per_s ?? 'n/a'} status pushes/s, ${popupIdle.commits_per_s ?? 'n/a'} commits/s | 0 | — | 0 | ${verdict(popupIdle.pushes === 0 && popupIdle.commits === 0)} |`);
out.push(`| Commit time of a review action, 10,000 queued vs none | ${commitAt(10000).median_ms} ms vs ${commitAt(0).median_ms} ms (median) | \`chrome.storage.local.set\` of two small keys: ${commitAt(10000).storage_set_floor_ms} ms | ${r2(commitGrowth)}× as the queue grows | flat | ${verdict(commitGrowth <= 1.5)} |`);
out.push(`| Requests per activity, bursts of 3 / 100 / 10,000 | ${burstOf(3).requests_per_activity ?? 'n/a'} / ${burstOf(100).requests_per_activity ?? 'n/a'} / ${burst.requests_per_activity ?? 'n/a'} | 1 per activity without batching | — | one request for a burst within the flush delay; ≤ 0.011 per activity for large bursts (a batch holds 100) | ${verdict(burstOf(3).requests === 1 && burstOf(100).requests_per_activity <= 0.011 && burst.requests_per_activity <= 0.011)} |`);
out.push(`| Server RSS, one process, ${memory ? memory.minutes : 30} minutes of steady load | ${memory ? `${memory.warm_kib} KiB after ${memory.warm_s} s warm-up → max ${memory.max_after_warm_kib} KiB, ${memory.last_kib} KiB at the end` : 'not run yet'} | — | ${memory ? `+${(memGrowth * 100).toFixed(1)} %` : 'n/a'} | flat within 10 % | ${memory ? verdict(memGrowth <= 0.1) : 'not run'} |`);
out.push(`| Release .wasm | ${kib(size.raw)} raw, ${kib(size.gzip)} gzip | ${size.previous ? `previous run (${size.previous.date}, ${size.previous.commit}): ${kib(size.previous.raw)} raw, ${kib(size.previous.gzip)} gzip` : 'no previous run recorded'} | ${size.previous ? `${signed(size.raw - size.previous.raw, ' B')} raw, ${signed(size.gzip - size.previous.gzip, ' B')} gzip` : '—'} | < 150 KB raw, < 60 KB gzip | ${verdict(size.raw < 150000 && size.gzip < 60000)} |`);
out.push('');

out.push('### Worker wake: where the time goes', '');
out.push(`${wake.rounds} rounds; in each, every contender's worker is stopped (\`Target.closeTarget\`) and woken by \`chrome.runtime.sendMessage\` from one of its own pages, timed in that page; the order rotates from round to round. `
  + `The state is ReviewTime's own \`chrome.storage.local\` after the tab-close rounds (paired, ${wake.rounds} sessions behind it: ${wake.state_keys} keys, ${wake.state_bytes} bytes), copied into the JS floor and the probe. `
  + `The probe is dist/ with one module imported in front of sw.js that wraps \`WebAssembly.instantiateStreaming\`, \`fetch\`, the \`chrome.*\` calls and the message listener to take timestamps inside the worker (nothing in the product changes); its own wake took ${ms(wake.probe)}, beside ReviewTime's ${ms(wake.reviewtime)}. Medians of each phase:`, '');
out.push('| Phase | Median | |', '|---|---|---|');
const phaseRows = [
  ['start_worker', 'Chrome starts the worker', 'message sent → the worker\'s time origin (two Chrome clocks)'],
  ['load_scripts', 'Load and run the scripts', 'sw.js, the wasm-bindgen glue (35 KB), the probe'],
  ['script_to_wasm_request', 'Script running → .wasm requested', 'listeners registered, message delivered, init called'],
  ['wasm_request', 'Read the .wasm from the extension', `${kib(size.raw || 0)} from the package`],
  ['wasm_compile', 'Compile (\`WebAssembly.compileStreaming\`)', `at every wake: ${wake.probe_compile_ms ? `${wake.probe_compile_ms.min}–${wake.probe_compile_ms.max} ms over the rounds` : ''}; V8 compiles each function lazily, on its first call`],
  ['wasm_instantiate', 'Instantiate', ''],
  ['init_to_first_read', 'Instantiated → first \`chrome.storage.local.get\`', 'start function, message decoded, and the lazy compilation of every function first called'],
  ['snapshot_reads', 'Load the snapshot (\`chrome.storage.local.get\` calls)', `${ph.storage_calls ?? '?'} chrome calls in all`],
  ['after_reads_to_answer', 'Snapshot loaded → answer sent', 'decode the state, build the status'],
  ['deliver_answer', 'Answer delivered to the page', ''],
];
for (const [k, label, note] of phaseRows) out.push(`| ${label} | ${ph[k] ?? 'n/a'} ms | ${note} |`);
out.push('');
const phaseSum = phaseRows.reduce((n, [k]) => n + (ph[k] ?? 0), 0);
out.push(`The medians of the phases add up to ${phaseSum.toFixed(1)} ms, against the probe's median wake of ${wake.probe?.median} ms.`, '');
out.push(`For comparison, the whole wake of the empty module worker (start, load its one-line script, answer) is ${wake.empty?.median} ms, and of the JS worker that also reads and parses the state ${wake.js_state?.median} ms.`, '');

out.push('### Tab close and page shown', '');
out.push(`${close.rounds} rounds, alternated: ReviewTime in one browser (paired with the real server through a timing proxy), the floor in another (its \`tabs.onRemoved\` posts to a bare Node server that answers 204, through the same kind of proxy), and the probe copy of ReviewTime in a third. `
  + 'Each ReviewTime round opens a new pull request page, waits until the content script tracks it, comments, waits 200 ms and closes the tab; the time runs from `page.close()` until the proxy has passed back the server\'s answer to the `PUT /api/v1/sessions/{id}` with `ended_at` set. The floor\'s round opens and closes the same page. '
  + `"Page shown" runs from the page's DOMContentLoaded (the page is parsed and can be shown; the content script runs at \`document_idle\`, never before it), read in Chrome's clock and brought to ours through an evaluation with the shortest round trip of five (error at most ${shown.clock_error_ms} ms), until the server has answered the first \`PUT\` of that session. `
  + `Counted from the page's first contentful paint instead it is ${ms(shown.from_paint)} (headless Chromium often paints after the server already has the session, hence values below zero), and from the start of navigation ${ms(shown.from_navigation)}, of which the page's own load to DOMContentLoaded is ${ms(shown.navigation_to_dcl)}.`, '');
out.push(`The probe copy's close took ${ms(close.probe)}. Its phases (medians): Chrome delivers \`tabs.onRemoved\` to the worker ${cph.chrome_event ?? 'n/a'} ms after \`page.close()\` (to the floor's worker ${close.floor_chrome_event?.median ?? 'n/a'} ms after it, whose request then takes ${close.floor_request?.median ?? 'n/a'} ms to the bare server's answer); from there to the \`fetch\` of the completing PUT ${cph.event_to_send ?? 'n/a'} ms, of which ${cph.storage_before_send ?? 'n/a'} ms in ${cph.storage_calls_before_send ?? '?'} \`chrome.*\` calls; the request to the server's answer ${cph.request ?? 'n/a'} ms.`
  + (close.probe_typical ? ` The round nearest the median (${close.probe_typical.close_ms} ms), its calls relative to \`tabs.onRemoved\`: ${close.probe_typical.calls.map((c) => `\`${c}\``).join(', ')}.` : ''), '');

out.push('### Cost as work grows', '');
out.push('Commit time is the round trip of one review action (content script → worker → commit saved → answer), 40 per row, the extension unpaired so the queue only grows; bytes are those written to `chrome.storage.local` per commit (one commit per action here), from `chrome.storage.onChanged`.', '');
out.push('| Queued | Commit median | p95 | Bytes written per event | Storage writes per action | Floor: two small keys set |', '|---|---|---|---|---|---|');
for (const x of rows) out.push(`| ${x.queued.toLocaleString('en')} | ${x.median_ms} ms | ${x.p95_ms} ms | ${x.bytes_per_commit.toLocaleString('en')} | ${x.writes_per_action} | ${x.storage_set_floor_ms} ms |`);
out.push('');
out.push('| Burst | Made within | Batch requests | All API requests | Requests per activity |', '|---|---|---|---|---|');
for (const b of [burstOf(3), burstOf(100)]) if (b.actions) out.push(`| ${b.actions} actions, one tab | ${b.made_within_ms} ms | ${b.batch_requests} | ${b.requests} | ${b.requests_per_activity} |`);
if (burst.activities) out.push(`| 10,000 actions, 5 tabs | ${burst.produce_ms} ms | ${burst.batch_requests} | ${burst.requests_total} | ${burst.requests_per_activity} |`);
out.push('');
if (memory) {
  out.push(`**Server memory.** \`scripts/bench.sh memory\`, ended ${memory.ended_at}: one release server process (pid ${memory.pid}, never restarted) for ${memory.minutes} minutes under a steady load of 200 activities/s in batches of 40, 10 session updates/s over a rolling set of 50 open sessions (${memory.sessions_ended} sessions ended) and one dashboard read a second: ${memory.activities.toLocaleString('en')} activities and ${memory.session_updates.toLocaleString('en')} session updates stored, ${memory.errors} errors. `
    + `VmRSS from /proc every 5 s: ${memory.first_kib} KiB at start, ${memory.warm_kib} KiB after the ${memory.warm_s} s warm-up, at most ${memory.max_after_warm_kib} KiB after it (+${(memory.growth_after_warm * 100).toFixed(1)} %), ${memory.last_kib} KiB at the end (${signed(+(memory.last_vs_warm * 100).toFixed(1), ' %')}). By minute (KiB): ${memory.per_minute.filter(([min]) => min % 3 === 0).map(([min, k]) => `${min}: ${k}`).join(', ')}.`, '');
}

out.push('### Size: what the .wasm is made of', '');
out.push(`Sections of the shipped module: ${(size.sections || []).map((x) => `${x.name} ${kib(x.bytes)}`).join(', ')}. `
  + 'twiggy is not in the package registry here; `bench/size.mjs` reads the `name` section of the same code as cargo built it (before wasm-bindgen and `wasm-opt -Oz`), groups function bodies by crate (a trait impl counts for the crate of its type; wasm-bindgen\'s build-time descriptors left out) and applies the shares to the shipped code section. The history of the last runs is in bench/size-history.json.', '');
out.push('| Crate | Share of code | Shipped, estimated |', '|---|---|---|');
for (const c of size.crates || []) out.push(`| ${c.crate} | ${(c.share * 100).toFixed(1)} % | ${c.shipped_kib_estimate} KiB |`);
const serdeShare = (size.crates || []).filter((c) => /^serde/.test(c.crate)).reduce((n, c) => n + c.share, 0);
out.push('');
out.push(`The serde family together (serde, serde_core, serde_json, serde_wasm_bindgen): ${(serdeShare * 100).toFixed(1)} % of the code. Largest functions: ${(size.top_functions || []).map((f) => `\`${f.name}\` ${(f.share * 100).toFixed(1)} %`).join(', ')}.`, '');

out.push('## Also measured in this run', '');
out.push('| What | Figure (median, min–max) | Target | |', '|---|---|---|---|');
out.push(`| Burst: 10,000 activities from 5 tabs over 10 s | ${burst.stored} stored exactly once; ${burst.batch_requests} batch requests (${burst.requests_total} in all); produced in ${burst.produce_ms} ms, drained ${burst.drain_after_burst_ms} ms after; ${burst.storage_writes_per_activity} storage writes (any key, drop boxes included) per activity | ≤ 110 requests, drain < 5 s | ${verdict(burst.requests_total <= 110 && burst.drain_after_burst_ms < 5000 && burst.stored === 10000)} |`);
out.push(`| Outage recovery: 1,000 items queued, server down ${outage.outage_s} s | drained ${outage.drain_ms} ms after it came back; ${outage.requests_during_outage} connection attempts during the outage; ${outage.attempts_used} retry attempts used; ${outage.dead_lettered} dead-lettered | < 10 s, nothing dead-lettered | ${verdict(outage.drain_ms < 10000 && outage.dead_lettered === 0)} |`);
out.push(`| Idle: nothing waiting | ${idle.requests} requests in ${idle.window_s} s (${idle.per_hour}/hour); one tick's work (load, decide, persist; the worker awake) median ${tick.median} ms, p95 ${tick.p95} ms | 0 requests | ${verdict(idle.requests === 0)} |`);
if (paint.n) out.push(`| Popup open: first contentful paint of popup.html (${paint.n} opens) | median ${paint.median} ms, p95 ${paint.p95} ms (${paint.min}–${paint.max}) | < 100 ms | ${verdict(paint.median < 100)} |`);
out.push(`| Server ingest through the batch endpoint (SQLite) | ${ingest1.activities_per_sec}/s with 1 client, ${ingest16.activities_per_sec}/s with 16 | ≥ 20,000/s with 16 | ${verdict(ingest16.activities_per_sec >= 20000)} |`);
out.push(`| Session update latency (${upd.n} PUTs, 1 client) | p50 ${upd.p50} ms, p99 ${upd.p99} ms (${upd.min}–${upd.max}) | — | |`);
out.push(`| Core throughput, native (${native.events} events × 5 runs) | ${native.median_events_per_sec} events/s (${native.min}–${native.max}) | — | |`);
out.push(`| Core throughput, wasm in Chromium (${wasm.events} events × 5 runs) | ${wasm.median_events_per_sec} events/s (${wasm.min}–${wasm.max}); native/wasm ratio ${(native.median_events_per_sec / wasm.median_events_per_sec).toFixed(2)} | — | |`);
out.push('');
out.push(serverSection(), '');
// The server's RSS growth in three equal spans after the warm-up: a leak grows alike in each, a filling cache less and less.
const memSpans = (() => {
  if (!memory) return 'not measured';
  const pts = memory.per_minute;
  const from = Math.round(memory.warm_s / 60);
  const to = pts.at(-1)[0];
  const at = (min) => (pts.find(([x]) => x >= min) ?? pts.at(-1))[1];
  const cut = [from, Math.round(from + (to - from) / 3), Math.round(from + (2 * (to - from)) / 3), to];
  return cut.slice(1).map((c, i) => `minutes ${cut[i]}–${c}: ${signed(at(c) - at(cut[i]), ' KiB')}`).join(', ');
})();
// The notes name this run's figures by @KEY@, so that their words and the tables never disagree.
const noteFigures = {
  WAKE_RATIO: r2(wakeJs), JS_MEDIAN: wake.js_state?.median, BUDGET: (1.15 * (wake.js_state?.median ?? NaN)).toFixed(1), PROBE_MEDIAN: wake.probe?.median,
  WASM_KIB: (size.raw / 1024).toFixed(0), P_READ: ph.wasm_request, P_COMPILE: ph.wasm_compile, P_INST: ph.wasm_instantiate, P_FIRST: ph.init_to_first_read,
  P_DECODE: ph.after_reads_to_answer, P_SCRIPTS: ph.load_scripts, EMPTY_MEDIAN: wake.empty?.median, SERDE: (serdeShare * 100).toFixed(0),
  CLOSE_P95: r2(closeP95), P_CHROME_EVENT: cph.chrome_event, P_EVENT_TO_SEND: cph.event_to_send, P_REQUEST: cph.request, P_STORAGE: cph.storage_before_send,
  FLOOR_EVENT: close.floor_chrome_event?.median ?? 'n/a', FLOOR_REQUEST: close.floor_request?.median ?? 'n/a', FLOOR_CLOSE: close.floor?.median, RT_CLOSE: close.reviewtime?.median,
  SIZE_KIB: (size.raw / 1024).toFixed(1), SIZE_GZ: (size.gzip / 1024).toFixed(1),
  MEM_GROWTH: memory ? (memory.growth_after_warm * 100).toFixed(1) : 'n/a', MEM_SPANS: memSpans, MEM_MINUTES: memory ? memory.minutes : 'n/a',
  MEM_ACTIVITIES: memory ? memory.activities.toLocaleString('en') : 'n/a',
};
if (existsSync('bench/NOTES.md')) out.push(readFileSync('bench/NOTES.md', 'utf8').trim().replace(/@([A-Z0-9_]+)@/g, (x, k) => String(noteFigures[k] ?? x)), '');
if (existsSync('bench/driver-before-after.md')) out.push(readFileSync('bench/driver-before-after.md', 'utf8').trim(), '');
if (existsSync('bench/soak-summary.md')) out.push(readFileSync('bench/soak-summary.md', 'utf8').trim(), '');
else out.push('## Soak', '', 'No soak run recorded yet: `scripts/soak.sh` (30 minutes) writes bench/soak-summary.md.', '');
out.push('## In short', '');
out.push(`Worker wake ${r2(wakeJs)}× the plain JS worker that reads the same state (target 1.15×: ${verdict(wakeJs <= 1.15)}) and ${r2(wakeEmpty)}× an empty module worker; `
  + `tab close → session completed on the server at p95 ${r2(closeP95)}× the bare \`tabs.onRemoved\` post (target 1.2×: ${verdict(closeP95 <= 1.2)}); `
  + `page shown → session in progress at p95 ${shown.reviewtime?.p95} ms (target < 100 ms: ${verdict(shown.reviewtime?.p95 < 100)}); `
  + `an idle popup ${popupIdle.pushes_per_s} pushes/s and ${popupIdle.commits_per_s} commits/s; commit time ${r2(commitGrowth)}× from 0 to 10,000 queued; `
  + `requests per activity ${burstOf(3).requests_per_activity} / ${burstOf(100).requests_per_activity} / ${burst.requests_per_activity} for bursts of 3 / 100 / 10,000; `
  + `server RSS ${memory ? `+${(memGrowth * 100).toFixed(1)} % over ${memory.minutes} minutes of one process (target 10 %: ${verdict(memGrowth <= 0.1)})` : 'not measured yet'}; `
  + `.wasm ${kib(size.raw)} raw / ${kib(size.gzip)} gzip${size.previous ? ` (${signed(size.raw - size.previous.raw, ' B')} since the previous run)` : ''}.`);
console.log(out.join('\n'));
