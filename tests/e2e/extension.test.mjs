// The extension at work: real unpacked extension, real server, a local page
// shaped like a GitHub pull request (with GitHub's CSP), tracked through the
// options setting like an Enterprise host.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, cleanup, engineState, extensionPage, launchExtension, pair, parsePairing, send, startFaultProxy, startGitHubLike, startServer, stopServiceWorker, until, untilTracking } from './lib.mjs';

let site;
before(async () => { site = await startGitHubLike(); });
after(async () => { await site?.stop(); });

/** A fresh server, a proxy in front of it, and a paired browser. */
async function setup(t) {
  const server = await startServer();
  const proxy = await startFaultProxy(server.url);
  const pairing = parsePairing(server.pairing);
  const browser = await launchExtension();
  const ctl = await pair(browser.context, browser.extensionId, { serverUrl: proxy.url, pairing, origin: site.origin });
  t.after(async () => {
    await browser.context.close();
    cleanup(browser.profile);
    await proxy.stop();
    await server.stop();
    cleanup(server.data);
  });
  const sessions = async () => (await api(server, pairing.token, '/api/v1/sessions')).sessions;
  const activities = async () => (await api(server, pairing.token, '/api/v1/activities?limit=1000')).activities;
  return { server, proxy, pairing, browser, ctl, context: browser.context, sessions, activities };
}

async function openPr(context, path = '/octo/widgets/pull/1') {
  const page = await context.newPage();
  await page.goto(`${site.origin}${path}`);
  await untilTracking(page);
  return page;
}

test('a reviewed PR closed in its tab is Completed on the server within a second, with its activities', async (t) => {
  const env = await setup(t);
  const pr = await openPr(env.context);
  await pr.click('#comment');
  await pr.check('#viewed');
  await pr.click('#review');
  await pr.mouse.move(20, 20);
  await new Promise((r) => setTimeout(r, 1200));
  const closedAt = Date.now();
  await pr.close();
  const session = await until(async () => (await env.sessions()).find((s) => s.ended_at), 5000, 10);
  const latency = Date.now() - closedAt;
  assert.ok(latency < 1000, `completed ${latency} ms after the close`);
  assert.deepEqual([session.pr.owner, session.pr.repo, session.pr.number], ['octo', 'widgets', 1]);
  assert.ok(session.wall_secs >= 1 && session.wall_secs <= 10, `wall ${session.wall_secs}`);
  assert.ok(session.active_secs <= session.wall_secs, `active ${session.active_secs}`);
  const acts = await until(async () => { const a = await env.activities(); return a.length >= 3 && a; });
  assert.deepEqual(acts.map((a) => a.type).sort(), ['comment_posted', 'file_viewed', 'review_submitted']);
  assert.equal(acts.find((a) => a.type === 'review_submitted').verdict, 'approve');
  assert.equal(acts.find((a) => a.type === 'file_viewed').path, 'src/lib.rs');
  assert.ok(acts.every((a) => a.session_id === session.id));
});

test('in-page navigation ends and starts sessions as a reviewer expects', async (t) => {
  const env = await setup(t);
  const pr = await openPr(env.context);
  await pr.click('#to-files'); // same PR, another tab: same session
  await pr.click('#to-pr2'); // another PR: PR 1 ends, PR 2 starts
  await until(async () => (await env.sessions()).some((s) => s.pr.number === 1 && s.ended_at));
  await pr.click('#to-repo'); // off the PRs: PR 2 ends
  const all = await until(async () => { const s = await env.sessions(); return s.length === 2 && s.every((x) => x.ended_at) && s; });
  assert.deepEqual(all.map((s) => s.pr.number).sort(), [1, 2]);
  await pr.goBack(); // back to PR 2: a new session
  await until(async () => (await env.sessions()).some((s) => s.pr.number === 2 && !s.ended_at), 8000);
  const switched = await until(async () => (await env.activities()).find((a) => a.type === 'tab_switched'));
  assert.equal(switched.tab, 'files');
});

test('the worker stopped before, during and after syncs: everything arrives exactly once', async (t) => {
  const env = await setup(t);
  const pr = await openPr(env.context);
  // Before a sync: stopped with a comment queued; the content script repeats what was not acknowledged.
  await pr.click('#comment');
  await stopServiceWorker(env.context);
  await pr.check('#viewed');
  // After a sync: the batch is acknowledged, then the worker stops.
  await until(async () => (await env.activities()).length === 2, 10000);
  await stopServiceWorker(env.context);
  await pr.click('#review');
  await until(async () => (await engineState(env.ctl)).outbox.activities.length === 1);
  // During a sync: the session end reaches the server, whose answer is held while the worker stops.
  env.proxy.delay(5000, 1, '/api/v1/sessions/');
  const closedAt = Date.now();
  await pr.close();
  await until(() => env.proxy.seen.some((r) => r.method === 'PUT' && r.at >= closedAt));
  await stopServiceWorker(env.context);
  // Opening the popup is what wakes it now (or the 1-minute alarm); the in-flight marker expires.
  await until(async () => {
    await send(env.ctl, { type: 'status' });
    const st = await engineState(env.ctl);
    return st.outbox.activities.length + st.outbox.sessions.length === 0 && !st.in_flight;
  }, 60000, 500);
  const sessions = await env.sessions();
  assert.equal(sessions.length, 1);
  assert.ok(sessions[0].ended_at);
  const acts = await env.activities();
  assert.deepEqual(acts.map((a) => a.type).sort(), ['comment_posted', 'file_viewed', 'review_submitted'], 'each activity exactly once');
  assert.equal((await engineState(env.ctl)).dead.entries.length, 0);
});

test('a tab closed while the worker is stopped still reports its end, once', async (t) => {
  const env = await setup(t);
  const pr = await openPr(env.context);
  await pr.click('#comment');
  await new Promise((r) => setTimeout(r, 300)); // the worker's answer refreshes the beacon payload
  await stopServiceWorker(env.context);
  const closedAt = Date.now();
  await pr.close();
  const session = await until(async () => (await env.sessions()).find((s) => s.ended_at), 5000, 10);
  const latency = Date.now() - closedAt;
  // The worker, woken by tabs.onRemoved, delivered it: a content script holds no
  // credential, so the page sends no beacon of its own.
  assert.ok(!env.proxy.seen.some((r) => r.path === '/api/v1/beacon'), 'no page beacon');
  assert.ok(latency < 2000, `recorded ${latency} ms after the close`);
  await until(async () => (await env.activities()).length === 1);
  await new Promise((r) => setTimeout(r, 1500)); // the worker's own end lands too
  const all = await env.sessions();
  assert.equal(all.length, 1, 'held once');
  assert.equal(all[0].id, session.id);
});
