// Credentials cannot leak far: a content script (the part of ReviewTime that runs
// inside github.com's renderer) cannot read the API token from storage.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { inIsolatedWorld, setupEnv, startGitHubLike, until, untilTracking } from './lib.mjs';

let site;
before(async () => { site = await startGitHubLike(); });
after(async () => { await site?.stop(); });

test('a content script cannot read the API token or the queue from chrome.storage.local', async (t) => {
  const env = await setupEnv(t, site);
  const page = await env.context.newPage();
  await page.goto(`${site.origin}/octo/widgets/pull/1`);
  await untilTracking(page);
  const seen = await inIsolatedWorld(page, `chrome.storage.local.get(null).then(
    (items) => ({ ok: true, keys: Object.keys(items), token: JSON.stringify(items).includes(${JSON.stringify(env.pairing.token)}) }),
    (e) => ({ ok: false, error: String(e && e.message || e) }))`);
  assert.notEqual(seen, undefined, 'the content script ran');
  assert.ok(!seen.ok || (!seen.token && seen.keys.length === 0), `a content script read storage: ${JSON.stringify(seen)}`);
  // The extension's own pages still read it.
  const mine = await env.ctl.evaluate(() => chrome.storage.local.get('reviewtime.settings'));
  assert.equal(mine['reviewtime.settings'].token, env.pairing.token);
  console.log(`content script reading chrome.storage.local: ${seen.ok ? 'empty' : seen.error}`);
});

test("the server's rate limit answers 429 with Retry-After and the extension backs off, losing nothing", async (t) => {
  // A server far stricter than the defaults: a burst of 3 writes, then 1 a second per token.
  process.env.REVIEWTIME_RATE_BURST = '3';
  process.env.REVIEWTIME_RATE_PER_SEC = '1';
  let env;
  try { env = await setupEnv(t, site); } finally {
    delete process.env.REVIEWTIME_RATE_BURST;
    delete process.env.REVIEWTIME_RATE_PER_SEC;
  }
  // Eight reviews opened and closed at once: sixteen session writes within a second.
  const pages = [];
  for (let n = 1; n <= 8; n++) {
    const page = await env.context.newPage();
    await page.goto(`${site.origin}/octo/widgets/pull/${n}`);
    pages.push(page);
  }
  await Promise.all(pages.map((p) => untilTracking(p)));
  for (const p of pages) await p.close();
  const sessions = await until(async () => { const s = await env.sessions(); return s.length === 8 && s.every((x) => x.ended_at) && s; }, 60000, 250);
  const limited = env.proxy.seen.filter((s) => s.status === 429);
  assert.ok(limited.length >= 1, 'the server limited the burst');
  // Each limited request was retried after its Retry-After, not dead-lettered (holding every
  // request while the server throttles is issue 12's server-wide throttle).
  const st = await env.state();
  assert.equal(st.dead.entries.length, 0, 'nothing dead-lettered');
  assert.equal(sessions.length, 8);
  console.log(`rate limit: ${limited.length} answers 429 for ${env.proxy.seen.length} requests; all 8 sessions ended on the server, none dead-lettered`);
});
