// The popup: every sync state in words, failed syncs with retry, discard and
// export, the badge. A screenshot of each state lands in test-output/.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { openPopup, outputDir, popupShot, reviewPr, send, setupEnv, startGitHubLike, until } from './lib.mjs';

let site;
before(async () => { site = await startGitHubLike(); mkdirSync(outputDir, { recursive: true }); });
after(async () => { await site?.stop(); });

const words = (popup) => popup.textContent('#words');
const badge = (env) => env.ctl.evaluate(() => chrome.action.getBadgeText({}));
const shot = popupShot;

test('all synced, then offline, then back: the popup says so and updates live', async (t) => {
  const env = await setupEnv(t, site);
  const popup = await openPopup(env);
  await reviewPr(env.context, site);
  await until(async () => /^All synced$/.test(await words(popup)), 15000);
  assert.match(await popup.textContent('#hint'), /Last synced \d+ seconds? ago/);
  assert.equal(await popup.textContent('#mark'), '✓✓');
  assert.equal(await badge(env), '');
  await shot(popup, 'all-synced');

  await env.proxy.down();
  await reviewPr(env.context, site, { comments: 2, leave: 'navigate' });
  await until(async () => /^Cannot reach the server — \d+ items? waiting$/.test(await words(popup)), 15000);
  assert.match(await popup.textContent('#hint'), /Cannot reach the server: http:\/\/127\.0\.0\.1:\d+ \(.*\)\. Trying again at \d\d:\d\d:\d\d; nothing is lost\./);
  await shot(popup, 'unreachable');
  await env.proxy.up();
  await popup.click('#syncNow');
  await until(async () => /^All synced$/.test(await words(popup)), 15000);
});

test("the popup's today total includes the review in progress", async (t) => {
  const env = await setupEnv(t, site);
  const page = await reviewPr(env.context, site, { close: false, comments: 0 });
  // Active for a couple of seconds in its tab (the popup opened as a tab stops that clock).
  await until(async () => ((await send(env.ctl, { type: 'status' })).status.open_sessions[0]?.active_secs ?? 0) >= 2, 15000, 200);
  const popup = await openPopup(env);
  const secs = (text) => { const m = /(?:(\d+)m )?(\d+)s/.exec(text); return m ? Number(m[1] ?? 0) * 60 + Number(m[2]) : NaN; };
  const [current, today] = await until(async () => {
    const c = await popup.textContent('#current');
    const d = await popup.textContent('#today');
    const active = secs(/, (.*) active$/.exec(c)?.[1] ?? '');
    return active >= 2 && /^Today: /.test(d) && secs(d) === active && [c, d];
  }, 15000, 200).catch(async () => assert.fail(`current "${await popup.textContent('#current')}", "${await popup.textContent('#today')}"`));
  assert.match(current, /^octo\/widgets#1 — /);
  await shot(popup, 'today-in-progress');
  console.log(`popup with a review in progress: "${current}", "${today}"`);
  await page.close();
});

test('signed out: says so, offers sign-in, badge shows a distinct mark', async (t) => {
  const env = await setupEnv(t, site);
  env.proxy.fail(401, 1);
  await reviewPr(env.context, site, { leave: 'navigate' });
  const popup = await openPopup(env);
  await until(async () => (await words(popup)) === 'The server refused the token (HTTP 401) — sending is paused');
  assert.match(await popup.textContent('#hint'), /checked again at \d\d:\d\d:\d\d, or now with Sync now/);
  assert.equal(await popup.isVisible('#signIn'), true);
  assert.equal(await popup.getAttribute('#signIn', 'type'), 'button');
  await until(async () => (await badge(env)) === '!');
  await shot(popup, 'signed-out');
});

test('failing with retries: says when it retries', async (t) => {
  const env = await setupEnv(t, site);
  env.proxy.fail(500, 1000);
  await reviewPr(env.context, site, { leave: 'navigate' });
  const popup = await openPopup(env);
  await until(async () => /^Server error, retrying at \d\d:\d\d:\d\d$/.test(await words(popup)), 15000);
  assert.match(await popup.textContent('#details'), /Items waiting\s*[1-9]/);
  await shot(popup, 'failing');
  env.proxy.clearFaults();
});

test('dead letters from a 400: listed in a reviewer\'s words with when, status and reason; retry, discard, export; badge counts them', async (t) => {
  const env = await setupEnv(t, site);
  env.proxy.fail(400, 2, {}, '/api/v1/activities/batch');
  await reviewPr(env.context, site, { comments: 1, leave: 'navigate' });
  await until(async () => (await env.state()).dead.entries.length === 1, 15000);
  await reviewPr(env.context, site, { comments: 1, leave: 'navigate' });
  await until(async () => (await env.state()).dead.entries.length === 2, 15000);
  const popup = await openPopup(env);
  await popup.waitForSelector('#deadList li:nth-child(2)');
  const items = await popup.locator('#deadList li').allTextContents();
  assert.match(items[0], /^Comment on octo\/widgets#1, \d{1,2}:\d\d.*HTTP 400.*injected 400/s);
  assert.match(items[1], /^Comment on octo\/widgets#1, \d{1,2}:\d\d.*HTTP 400/s);
  assert.equal(await badge(env), '2');
  assert.equal(await words(popup), '2 failed syncs need your attention');
  await shot(popup, 'dead-letters');

  // Export all: a JSON download with both entries.
  const [download] = await Promise.all([popup.waitForEvent('download'), popup.click('#exportAll')]);
  const exported = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(exported.dead_letters.length, 2);
  assert.equal(exported.dead_letters[0].status, 400);

  // Retry the first now that the server accepts it: it lands and leaves the list.
  await popup.click('#deadList li:nth-child(1) button:text("Retry")');
  await until(async () => (await env.activities()).length === 1, 15000);
  await until(async () => (await popup.locator('#deadList li').count()) === 1);
  assert.equal(await badge(env), '1');

  // Discard the other, after confirming.
  popup.once('dialog', (d) => d.accept());
  await popup.click('#deadList li:nth-child(1) button:text("Discard")');
  await until(async () => (await env.state()).dead.entries.length === 0);
  await until(async () => (await badge(env)) === '');
  assert.equal(await popup.isVisible('#failed'), false);
});

test('the popup is labelled and keyboard reachable', async (t) => {
  // Its open time is measured by scripts/bench.sh, not asserted here.
  const env = await setupEnv(t, site);
  const popup = await openPopup(env);
  for (const b of await popup.locator('button:visible').all()) {
    assert.ok(((await b.getAttribute('aria-label')) || (await b.textContent())).trim().length > 0);
  }
  await popup.keyboard.press('Tab');
  const focused = await popup.evaluate(() => document.activeElement && document.activeElement.tagName);
  assert.ok(['BUTTON', 'A'].includes(focused), `focus went to ${focused}`);
  assert.ok(await popup.locator('a[href="options.html"]').count());
});
