// Every answer handled as a person would expect (issue 12), end to end: the
// real extension against the real server through a proxy that misbehaves on
// purpose. For each fault: what the server holds, and what the popup says
// (a screenshot of each in test-output/popup-<fault>.png).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { openPopup, popupShot, reviewPr, send, setupEnv, startGitHubLike, until, untilTracking } from './lib.mjs';

let site;
before(async () => { site = await startGitHubLike(); });
after(async () => { await site?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const words = (popup) => popup.textContent('#words');
const hint = (popup) => popup.textContent('#hint');
const LOGIN_PAGE = '<!doctype html><html><head><title>Sign in · Example Wi-Fi</title></head><body><form action="/login"><input name="user"><button>Sign in</button></form></body></html>';

/** Everything waiting has reached the server: `sessions` ended sessions and `activities` actions. */
const delivered = (env, sessions, activities, ms = 30000) => until(async () => {
  const [s, a, st] = [await env.sessions(), await env.activities(), await env.state()];
  return s.length === sessions && s.every((x) => x.ended_at) && a.length === activities
    && st.outbox.sessions.length + st.outbox.activities.length === 0 && { s, a, st };
}, ms, 100);

async function open(env, n) {
  const page = await env.context.newPage();
  await page.goto(`${site.origin}/octo/widgets/pull/${n}`);
  await untilTracking(page);
  return page;
}

test('a web page answering 200 on every API path for 20 s while three reviews open and close: afterwards all three arrive, 0 failed syncs, 0 evicted, no attempt used', async (t) => {
  const env = await setupEnv(t, site);
  const popup = await openPopup(env);
  env.proxy.answer(() => ({ status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: LOGIN_PAGE }));
  const started = Date.now();
  for (const n of [1, 2, 3]) {
    const page = await open(env, n);
    await page.click('#comment');
    await sleep(300);
    await page.close();
  }
  await until(async () => /^The server address does not answer as ReviewTime — \d+ items? waiting$/.test(await words(popup)), 15000);
  assert.match(await hint(popup), /answers HTTP 200 with a web page, not ReviewTime's API.*Nothing is lost or counted as failed; checking again at \d\d:\d\d:\d\d\./);
  await popupShot(popup, 'not-api-html');
  await sleep(Math.max(0, 20000 - (Date.now() - started)));
  const during = await env.state();
  const answered = env.proxy.seen.filter((r) => r.status === 200 && r.at >= started && /^\/api\/v1\/(sessions|activities)/.test(r.path)).length;
  assert.equal(during.dead.entries.length, 0, 'nothing dead-lettered');
  assert.deepEqual([...new Set([...during.outbox.sessions, ...during.outbox.activities].map((i) => i.retry.attempts))], [0], 'no attempt used');
  assert.equal((await env.sessions()).length, 0, 'the real server saw nothing');
  assert.ok(answered <= 15, `probes with backoff, not a storm: ${answered} in 20 s`);

  env.proxy.clearFaults();
  const { s, st } = await delivered(env, 3, 3);
  assert.deepEqual(s.map((x) => x.pr.number).sort(), [1, 2, 3]);
  assert.equal(st.dead.entries.length, 0);
  assert.equal(st.dead.evicted, 0);
  await until(async () => (await words(popup)) === 'All synced', 15000);
  console.log(`HTML 200 for 20 s: ${answered} probes answered by the page, then 3/3 sessions and 3/3 actions on the server, 0 failed syncs, 0 evicted`);
});

test('a redirect where the API should be (a single-sign-on login) pauses the same way and says so; nothing is dead-lettered', async (t) => {
  const env = await setupEnv(t, site);
  env.proxy.answer(() => ({ status: 302, headers: { location: 'https://sso.example.com/login?next=%2F' } }));
  await reviewPr(env.context, site, { leave: 'navigate' });
  const popup = await openPopup(env);
  await until(async () => /does not answer as ReviewTime/.test(await words(popup)), 15000);
  assert.match(await hint(popup), /redirects elsewhere/);
  await popupShot(popup, 'not-api-redirect');
  // The options page's "Test connection" says the same of the address.
  const { settings } = await send(env.ctl, { type: 'get_settings' });
  const tested = await send(env.ctl, { type: 'test_connection', settings });
  assert.equal(tested.connected, false);
  assert.match(tested.message, /redirects elsewhere .*not answering as a ReviewTime server/);
  await sleep(3000);
  const st = await env.state();
  assert.equal(st.dead.entries.length, 0);
  assert.equal((await env.sessions()).length, 0);
  env.proxy.clearFaults();
  await delivered(env, 1, 1);
  assert.equal((await env.state()).dead.entries.length, 0);
});

test('a batch with one over-long path and two valid actions: all arrive, the long path shortened with a marker; an old server that refuses a whole batch for one item: only that item is a failed sync, in a reviewer\'s words', async (t) => {
  const env = await setupEnv(t, site);
  // A server that answers a batch holding src/refused.rs with a 400 for the whole batch.
  env.proxy.answer(({ path, body }) => (path === '/api/v1/activities/batch' && body.includes('src/refused.rs')
    ? { status: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'invalid_path', message: 'this server refuses src/refused.rs' }) }
    : null));
  const page = await reviewPr(env.context, site, { close: false, comments: 0 });
  for (const id of ['#viewed', '#viewed-long', '#viewed-main', '#viewed-refused']) await page.check(id);
  await page.click('#comment');
  await sleep(300);
  await page.click('#to-repo');
  const st = await until(async () => {
    const s = await env.state();
    return s.dead.entries.length === 1 && (await env.activities()).length === 4 && s.outbox.activities.length === 0 && s;
  }, 30000, 100);
  const acts = await env.activities();
  const paths = acts.filter((a) => a.type === 'file_viewed').map((a) => a.path).sort();
  assert.equal(paths.length, 3);
  assert.ok(paths.includes('src/lib.rs') && paths.includes('src/main.rs'), paths.join(', '));
  const long = paths.find((p) => p.startsWith('docs/'));
  assert.ok(long.endsWith('…[shortened]') && Buffer.byteLength(long) <= 512, long);
  assert.equal(acts.filter((a) => a.type === 'comment_posted').length, 1);
  const [dead] = st.dead.entries;
  assert.equal(dead.payload.activities.items.length, 1);
  assert.equal(dead.payload.activities.items[0].path, 'src/refused.rs');
  assert.equal(dead.status, 400);
  const batches = env.proxy.seen.filter((r) => r.path === '/api/v1/activities/batch').length;
  assert.ok(batches <= 8, `bisected in ${batches} batch requests`);

  const popup = await openPopup(env);
  await popup.waitForSelector('#deadList li');
  const item = await popup.textContent('#deadList li');
  assert.match(item, /^Viewed src\/refused\.rs on octo\/widgets#1, \d{1,2}:\d\d/);
  assert.match(item, /HTTP 400.*this server refuses src\/refused\.rs/s);
  assert.equal(await words(popup), '1 failed sync needs your attention');
  await popupShot(popup, 'one-bad-item');
  console.log(`over-long path: arrived as ${Buffer.byteLength(long)} bytes ending "…[shortened]"; one refused item: ${batches} batch requests, 4 actions stored, 1 failed sync ("${item.split('Failed')[0].trim()}")`);
});

test('429 with Retry-After: 5 on a session request: no request of any kind for 5 s, however much waits; the popup says until when', async (t) => {
  const env = await setupEnv(t, site);
  env.proxy.fail(429, 1, { 'retry-after': '5' }, '/api/v1/sessions/');
  const popup = await openPopup(env);
  const first = await open(env, 1);
  const refused = await until(() => env.proxy.seen.find((r) => r.status === 429), 10000);
  // While it holds: a review action, another review opened and ended, and "Sync now".
  await first.click('#comment');
  const second = await open(env, 2);
  await second.close();
  await send(env.ctl, { type: 'sync_now' });
  await until(async () => /^The server asked to wait until \d\d:\d\d:\d\d$/.test(await words(popup)), 5000);
  assert.match(await hint(popup), /^\d+ items? waiting; nothing is sent before then\.$/);
  await popupShot(popup, 'throttled');
  const next = await until(() => env.proxy.seen.find((r) => r.at > refused.at), 15000);
  const quiet = next.at - refused.at;
  assert.ok(quiet >= 5000, `the next request came ${quiet} ms after the 429`);
  await first.close();
  await delivered(env, 2, 1);
  assert.equal((await env.state()).dead.entries.length, 0);
  console.log(`429 Retry-After 5: next request of any kind ${quiet} ms later; then 2 sessions and 1 action delivered`);
});

test('a 401 that goes away (a proxy, a restored server): Sync now delivers within 10 s without re-pairing; the same pairing link saved again resumes too', async (t) => {
  const env = await setupEnv(t, site);
  env.proxy.fail(401, 1);
  await reviewPr(env.context, site, { leave: 'navigate' });
  const popup = await openPopup(env);
  await until(async () => (await words(popup)) === 'The server refused the token (HTTP 401) — sending is paused', 15000);
  assert.match(await hint(popup), /^\d+ items? waiting\. The token is checked again at \d\d:\d\d:\d\d, or now with Sync now\. If it stays refused, paste the pairing link in Options again \(the same one resumes\)\.$/);
  await popupShot(popup, 'signed-out-401');
  await sleep(1000);
  assert.equal((await env.sessions()).length, 0, 'paused: nothing sent');
  const clicked = Date.now();
  await popup.click('#syncNow');
  await delivered(env, 1, 1, 10000);
  const took = Date.now() - clicked;
  await until(async () => (await words(popup)) === 'All synced', 10000);

  // Again, and this time the user pastes the same pairing link.
  env.proxy.fail(401, 1);
  await reviewPr(env.context, site, { leave: 'navigate' });
  await until(async () => (await send(env.ctl, { type: 'status' })).status.state === 'signed_out', 15000);
  const settings = (await send(env.ctl, { type: 'get_settings' })).settings;
  const saved = await send(env.ctl, { type: 'set_settings', settings });
  assert.equal(saved.ok, true, JSON.stringify(saved));
  await delivered(env, 2, 2, 10000);
  assert.equal((await env.state()).dead.entries.length, 0);
  console.log(`401 gone, Sync now: delivered ${took} ms after the click; same pairing link saved again: resumed`);
});

test('a session the server holds with other content at the same revision is listed as a conflict, with both versions exported', async (t) => {
  const env = await setupEnv(t, site);
  // The first session write is answered with what "the server holds": the same
  // id and revision, started a minute earlier (another browser, a restored backup).
  let diverged = null;
  env.proxy.answer(({ method, body }) => {
    if (method !== 'PUT' || diverged) return null;
    const sent = JSON.parse(body);
    diverged = { ...sent, started_at: sent.started_at - 60000, wall_secs: sent.wall_secs + 60 };
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session: diverged, applied: false }) };
  });
  const page = await open(env, 1);
  const st = await until(async () => { const s = await env.state(); return s.dead.entries.length === 1 && s; }, 15000);
  const { conflict } = st.dead.entries[0].payload;
  assert.equal(conflict.stored.started_at, diverged.started_at);
  assert.equal(conflict.sent.id, diverged.id);
  assert.notEqual(conflict.sent.started_at, conflict.stored.started_at);
  const popup = await openPopup(env);
  await popup.waitForSelector('#deadList li');
  assert.match(await popup.textContent('#deadList li'), /^Conflict: review of octo\/widgets#1 — the server holds other times/);
  assert.match(await hint(popup), /One is a conflict: the server holds other content/);
  assert.equal(await popup.locator('#deadList li button:text("Retry")').count(), 0, 'sending it again would conflict again');
  const [download] = await Promise.all([popup.waitForEvent('download'), popup.click('#deadList li button:text("Export")')]);
  const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
  assert.deepEqual(Object.keys(exported.payload.conflict).sort(), ['sent', 'stored']);
  await popupShot(popup, 'conflict');
  await page.close();
});
