// Truthful review time, measured on the server: the wall and active seconds a
// reviewer reads are only ever time they were there (docs/ARCHITECTURE.md
// invariant 11). The real extension in headless Chromium against the real server.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pair, scratch, send, setupEnv, startGitHubLike, until, untilTracking } from './lib.mjs';

let site;
before(async () => { site = await startGitHubLike(); });
after(async () => { await site?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ofPr = (sessions, n) => sessions.filter((s) => s.pr.number === n);
/** The sessions once every one has ended and the worker's own end has landed (the page's
 * pagehide beacon may arrive first with the times of the worker's last answer). */
async function settled(env, ok, ms = 10000) {
  await until(async () => ok(await env.sessions()), ms, 100);
  await sleep(1500);
  return env.sessions();
}

test('a session is in progress on the server within 1 s of the page opening', async (t) => {
  const env = await setupEnv(t, site);
  const page = await env.context.newPage();
  const opened = Date.now();
  await page.goto(`${site.origin}/octo/widgets/pull/1`);
  const s = await until(async () => ofPr(await env.sessions(), 1).find((x) => !x.ended_at), 5000, 10);
  const latency = Date.now() - opened;
  assert.ok(latency < 1000, `in progress on the server ${latency} ms after the page was opened`);
  assert.equal(s.ended_at, null);
  console.log(`session in progress on the server ${latency} ms after opening`);
});

test('the same PR in two tabs is one session', async (t) => {
  const env = await setupEnv(t, site);
  const a = await env.context.newPage();
  await a.goto(`${site.origin}/octo/widgets/pull/1`);
  await untilTracking(a);
  const b = await env.context.newPage();
  await b.goto(`${site.origin}/Octo/Widgets/pull/1/files`); // GitHub ignores the case
  await untilTracking(b);
  await sleep(1200);
  await a.close();
  await sleep(300);
  assert.equal(ofPr(await env.sessions(), 1).filter((s) => s.ended_at).length, 0, 'one tab still shows it');
  await b.close();
  const ended = ofPr(await settled(env, (all) => { const s = ofPr(all, 1); return s.length && s.every((x) => x.ended_at); }), 1);
  assert.equal(ended.length, 1, `one session for the PR, got ${ended.length}`);
  assert.ok(ended[0].wall_secs >= 1 && ended[0].active_secs <= ended[0].wall_secs, JSON.stringify(ended[0]));
  console.log(`same PR in two tabs: ${ended.length} session, wall ${ended[0].wall_secs} s, active ${ended[0].active_secs} s`);
});

test('a background tab whose page scrolls itself records no active time', async (t) => {
  const env = await setupEnv(t, site);
  const background = await env.context.newPage();
  await background.goto(`${site.origin}/octo/widgets/pull/1`);
  await untilTracking(background);
  const front = await env.context.newPage(); // the new tab is the active one; PR 1 goes to the back
  await front.goto(`${site.origin}/octo/widgets/pull/2`);
  await untilTracking(front);
  const backAt = Date.now();
  // The background page scrolls itself and fires input-like events for 6 s.
  await background.evaluate(() => {
    document.body.style.height = '20000px';
    let y = 0;
    const timer = setInterval(() => { window.scrollTo(0, (y += 50)); window.dispatchEvent(new Event('scroll')); }, 50);
    setTimeout(() => clearInterval(timer), 6000);
  });
  await sleep(6500);
  await background.close();
  await front.close();
  const sessions = await settled(env, (s) => ofPr(s, 1).length && ofPr(s, 2).length && s.every((x) => x.ended_at));
  const [bg] = ofPr(sessions, 1);
  const [fg] = ofPr(sessions, 2);
  console.log(`background PR: wall ${bg.wall_secs} s, active ${bg.active_secs} s; front PR: wall ${fg.wall_secs} s, active ${fg.active_secs} s`);
  assert.ok(bg.wall_secs >= 6, `the background tab showed the PR for ${bg.wall_secs} s`);
  const frontFor = Math.ceil((backAt - bg.started_at) / 1000);
  assert.ok(bg.active_secs <= frontFor, `background PR active ${bg.active_secs} s: only the ${frontFor} s it was in front`);
  assert.ok(fg.active_secs >= 5, `the front PR was active ${fg.active_secs} s`);
});

test('a PR left without input past the idle limit ends at its last input and counts nothing after', async (t) => {
  const env = await setupEnv(t, site);
  await pair(env.context, env.browser.extensionId, { serverUrl: env.proxy.url, pairing: env.pairing, origin: site.origin, idle: 1 });
  const page = await env.context.newPage();
  await page.goto(`${site.origin}/octo/widgets/pull/1`);
  await untilTracking(page);
  await sleep(2000);
  await page.mouse.move(30, 40); // the last sign of the user
  const lastInput = Date.now();
  // Nothing more for over a minute (the idle limit set in the options): the session ends by itself.
  const s = await until(async () => ofPr(await env.sessions(), 1).find((x) => x.ended_at), 90000, 500);
  console.log(`idle limit: ended ${s.ended_at - lastInput} ms from the last input; wall ${s.wall_secs} s, active ${s.active_secs} s`);
  assert.ok(Math.abs(s.ended_at - lastInput) < 1500, `ended at ${s.ended_at}, last input ${lastInput}`);
  assert.ok(s.wall_secs <= 4, `wall ${s.wall_secs} s: only the time before the last input`);
  assert.ok(s.active_secs <= s.wall_secs);
  await page.close();
});

test('the system going idle stops active time (chrome.idle, fed through the worker as Chrome delivers it)', async (t) => {
  const env = await setupEnv(t, site);
  const page = await env.context.newPage();
  await page.goto(`${site.origin}/octo/widgets/pull/1`);
  await untilTracking(page);
  await sleep(2000);
  // Headless Chromium cannot make the system idle, so feed the worker the event its
  // chrome.idle.onStateChanged listener would get.
  const idle = await send(env.ctl, { type: 'browser_event', event: { source: 'idle', state: 'idle' } });
  assert.equal(idle.ok, true, JSON.stringify(idle));
  await sleep(4000);
  await send(env.ctl, { type: 'browser_event', event: { source: 'idle', state: 'active' } });
  await sleep(1000);
  await page.close();
  const [s] = ofPr(await settled(env, (all) => ofPr(all, 1).some((x) => x.ended_at)), 1);
  console.log(`system idle for 4 s: wall ${s.wall_secs} s, active ${s.active_secs} s`);
  assert.ok(s.wall_secs >= 7, `wall ${s.wall_secs}`);
  assert.ok(s.active_secs <= s.wall_secs - 3, `active ${s.active_secs} s of ${s.wall_secs}: the idle 4 s do not count`);
});

test('a PR open 5 s, then the browser quit for 15 s and started again, records only the time before the quit', async (t) => {
  const env = await setupEnv(t, site, { profile: scratch('quit') }); // the same profile after the restart
  const page = await env.context.newPage();
  await page.goto(`${site.origin}/octo/widgets/pull/1`);
  await untilTracking(page);
  await sleep(4000);
  await page.mouse.move(50, 60); // the last sign of the user, about 4.5 s in
  await sleep(1000);
  // The browser quits with the tab open (no close reaches anyone), and starts 15 s later.
  await env.context.close();
  await sleep(15000);
  await env.launch();
  const s = await until(async () => ofPr(await env.sessions(), 1).find((x) => x.ended_at), 20000, 200);
  console.log(`browser quit: wall ${s.wall_secs} s, active ${s.active_secs} s`);
  // About 4.5 s to the last input (more on a loaded machine), never the 20 s to the relaunch.
  assert.ok(s.wall_secs >= 3 && s.wall_secs <= 8, `wall ${s.wall_secs} s`);
  assert.ok(s.active_secs <= s.wall_secs, `active ${s.active_secs} s`);
});
