// Credentials cannot leak far: a content script (the part of ReviewTime that runs
// inside github.com's renderer) cannot read the API token from storage.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { inIsolatedWorld, setupEnv, startGitHubLike, untilTracking } from './lib.mjs';

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
