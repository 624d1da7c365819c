// Outages and errors, end to end: each handled as docs/ARCHITECTURE.md says, and
// the dead-letter queue holds exactly what it should.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { root, scratch, send, setupEnv, reviewPr, startGitHubLike, stopServiceWorker, until } from './lib.mjs';

let site;
before(async () => { site = await startGitHubLike(); });
after(async () => { await site?.stop(); });

const setup = (t, opts) => setupEnv(t, site, opts);
const review = (context, opts) => reviewPr(context, site, opts);

const delivered = (env, activities = 1) => until(async () => {
  const s = await env.sessions();
  const a = await env.activities();
  const st = await env.state();
  return s.length === 1 && s[0].ended_at && a.length === activities && st.outbox.sessions.length + st.outbox.activities.length === 0;
}, 30000, 100);

test('500 several times, then 200: retried with backoff, delivered, nothing dead-lettered', async (t) => {
  const env = await setup(t);
  env.proxy.fail(500, 3, {}, '/api/v1/sessions/');
  await review(env.context);
  await until(async () => (await env.attempts()).some((n) => n > 0), 10000);
  assert.equal((await send(env.ctl, { type: 'status' })).status.state, 'failing');
  await delivered(env);
  const puts = env.proxy.seen.filter((r) => r.method === 'PUT');
  assert.ok(puts.length >= 4, `${puts.length} attempts`);
  assert.equal((await env.state()).dead.entries.length, 0);
});

test('429 with Retry-After is honoured', async (t) => {
  const env = await setup(t);
  env.proxy.fail(429, 1, { 'retry-after': '2' }, '/api/v1/sessions/');
  await review(env.context);
  await delivered(env);
  const puts = env.proxy.seen.filter((r) => r.method === 'PUT');
  assert.ok(puts[1].at - puts[0].at >= 1900, `retried after ${puts[1].at - puts[0].at} ms`);
  assert.equal((await env.state()).dead.entries.length, 0);
});

test('400 on a single action dead-letters exactly it, with its status and reason; the rest goes on', async (t) => {
  const env = await setup(t);
  env.proxy.fail(400, 1, {}, '/api/v1/activities/batch');
  await review(env.context, { comments: 1, leave: 'navigate' });
  await until(async () => (await env.sessions()).some((s) => s.ended_at));
  const st = await until(async () => { const s = await env.state(); return s.dead.entries.length === 1 && s; });
  const dead = st.dead.entries[0];
  assert.equal(dead.status, 400);
  assert.match(dead.reason, /injected 400/);
  assert.equal(dead.payload.activities.items.length, 1);
  assert.equal((await env.activities()).length, 0);
  // Retried once the server is fixed, it lands.
  await send(env.ctl, { type: 'retry_dead', id: dead.id });
  await until(async () => (await env.activities()).length === 1);
  assert.equal((await env.state()).dead.entries.length, 0);
});

test('401 pauses until a new token is saved; nothing is dead-lettered', async (t) => {
  const env = await setup(t);
  env.proxy.fail(401, 1);
  await review(env.context, { leave: 'navigate' });
  await until(async () => (await send(env.ctl, { type: 'status' })).status.state === 'signed_out');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await env.sessions()).length, 0, 'paused: nothing sent');
  const out = execFileSync(path.join(root, 'target/debug/reviewtime-server'), ['--data', env.server.data, 'token', 'issue', '--user', 'local']).toString();
  const token = /secret (\S+)/.exec(out)[1];
  const saved = await send(env.ctl, { type: 'set_settings', settings: { server_url: env.proxy.url, token, beacon_key: env.pairing.beacon_key, tracked_hosts: [site.origin], idle_limit_minutes: 15 } });
  assert.equal(saved.ok, true);
  await delivered(env);
  assert.equal((await env.state()).dead.entries.length, 0);
});

test('413 splits the batch and everything arrives', async (t) => {
  const env = await setup(t);
  env.proxy.fail(413, 1, {}, '/api/v1/activities/batch');
  await review(env.context, { comments: 4 });
  await delivered(env, 4);
  const batches = env.proxy.seen.filter((r) => r.path === '/api/v1/activities/batch');
  assert.ok(batches.length >= 3, `${batches.length} batch requests (one refused, then halves)`);
  assert.equal((await env.state()).dead.entries.length, 0);
});

test('server down for a while, then up: everything arrives, no attempts burned', async (t) => {
  const env = await setup(t);
  await env.proxy.down();
  await review(env.context, { comments: 2 });
  await until(async () => (await send(env.ctl, { type: 'status' })).status.state === 'unreachable', 10000);
  await new Promise((r) => setTimeout(r, 2500));
  assert.deepEqual([...new Set(await env.attempts())], [0], 'unreachable costs no attempts');
  await env.proxy.up();
  await delivered(env, 2);
  assert.equal((await env.state()).dead.entries.length, 0);
});

test('browser offline then online: everything queued arrives, no attempts burned', async (t) => {
  const env = await setup(t);
  const page = await review(env.context, { close: false, comments: 0 });
  await env.context.setOffline(true);
  await page.click('#comment');
  await page.click('#comment');
  await page.click('#to-repo');
  await new Promise((r) => setTimeout(r, 2000));
  assert.deepEqual([...new Set(await env.attempts())], [0]);
  await env.context.setOffline(false);
  await send(env.ctl, { type: 'sync_now' }); // what the worker's online event does; headless emulation may not fire it
  await delivered(env, 2);
  assert.equal((await env.state()).dead.entries.length, 0);
});

test('the browser restarted with items queued delivers them', async (t) => {
  const profile = scratch('restart');
  const env = await setup(t, { profile });
  await env.proxy.down();
  await review(env.context, { comments: 2 });
  await until(async () => (await env.state()).outbox.activities.length === 2);
  await env.context.close();
  await env.proxy.up();
  await env.launch();
  await delivered(env, 2);
});

test('a thousand malformed messages from a content script get errors and lose nothing; garbage in storage costs only the part it hit', async (t) => {
  const env = await setup(t);
  await env.proxy.down();
  const page = await review(env.context, { close: false, comments: 1 });
  const cdp = await env.context.newCDPSession(page);
  const contexts = [];
  cdp.on('Runtime.executionContextCreated', (e) => contexts.push(e.context));
  await cdp.send('Runtime.enable');
  const isolated = await until(() => contexts.find((c) => c.auxData && c.auxData.type === 'isolated' && c.name === 'ReviewTime'));
  const { result } = await cdp.send('Runtime.evaluate', {
    contextId: isolated.id,
    awaitPromise: true,
    returnByValue: true,
    expression: `(async () => {
      const junk = [null, 42, 'hello', [], {}, { type: 'nope' }, { type: 'activity' }, { type: 'activity', activity: { type: 'dance' } },
        { type: 'page', url: 5 }, { type: 'page', url: 'x', visible: 'yes', focused: true }, { type: 'retry_dead', id: 7 },
        { type: 'set_settings', settings: { server_url: 'javascript:alert(1)' } }, { type: 'activity', activity: { type: 'comment_posted' }, id: 'bad id!' },
        { type: 'x'.repeat(10000) }, { type: 'STATUS' }];
      let errors = 0, oks = 0;
      for (let i = 0; i < 1000; i++) {
        const a = await chrome.runtime.sendMessage(junk[i % junk.length]);
        if (a && a.ok === false && typeof a.error === 'string') errors++; else oks++;
      }
      return { errors, oks };
    })()`,
  });
  assert.deepEqual(result.value, { errors: 1000, oks: 0 });
  const status = (await send(env.ctl, { type: 'status' })).status;
  assert.ok(status.rejected_inputs >= 900, `${status.rejected_inputs} counted`);
  // Garbage in storage costs only the part it hit: written while the worker is stopped and
  // no page is open to wake it, as a crash or a bad migration would leave it.
  const queued = (await env.state()).outbox.activities.map((a) => a.activity.id);
  assert.equal(queued.length, 1, 'the comment waits while the server is down');
  await page.close();
  await stopServiceWorker(env.context);
  await env.ctl.evaluate(() => chrome.storage.local.set({ 'reviewtime.meta': '{"version": 3, "garbage', 'reviewtime.a.00000000000000ff': 'not json' }));
  const after = await send(env.ctl, { type: 'dead_letters' });
  assert.equal(after.ok, true);
  assert.equal(after.status.recovered_corrupt, 1);
  assert.match(after.status.last_error, /could not be read/);
  const unreadable = after.dead_letters.filter((d) => d.payload.unreadable).map((d) => d.payload.unreadable);
  assert.deepEqual(unreadable.map((u) => [u.key, u.raw]).sort(), [['reviewtime.a.00000000000000ff', 'not json'], ['reviewtime.meta', '{"version": 3, "garbage']]);
  assert.deepEqual((await env.state()).outbox.activities.map((a) => a.activity.id), queued, 'the queue survived the unreadable part');
  // Still working: a new review is recorded and delivered.
  await env.proxy.up();
  const again = await reviewPr(env.context, site, { close: false });
  await again.close();
  await until(async () => (await env.activities()).length >= 1 && (await env.sessions()).some((s) => s.ended_at), 30000, 200);
  await until(async () => (await env.activities()).some((a) => a.id === queued[0]), 30000, 200);
});
