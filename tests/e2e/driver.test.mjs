// One writer, no lost updates: the real extension woken cold by bursts of
// messages, and an open popup that costs nothing while nothing happens.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, extensionPage, inIsolatedWorld, setupEnv, startGitHubLike, stopServiceWorker, until, untilTracking } from './lib.mjs';

let site;
before(async () => { site = await startGitHubLike(); });
after(async () => { await site?.stop(); });

/** Every activity on the server, page by page. */
async function allActivities(env) {
  const out = [];
  for (let offset = 0; ; offset += 1000) {
    const page = (await api(env.server, env.pairing.token, `/api/v1/activities?limit=1000&offset=${offset}`)).activities;
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

test('a worker woken cold by bursts of messages and review actions records every one, and each reaches the server once (100 trials)', async (t) => {
  const env = await setupEnv(t, site);
  const page = await env.context.newPage();
  await page.goto(`${site.origin}/octo/widgets/pull/1`);
  await untilTracking(page);
  const run = (expression) => inIsolatedWorld(page, expression);
  const TRIALS = 100;
  const acknowledged = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    await stopServiceWorker(env.context);
    // Three messages at once and ten more right after, as Chrome hands a waking worker
    // a burst; plus two comments through the page's own form (the content script's own path).
    const clicks = [page.click('#comment'), page.click('#comment')];
    const answered = await run(`(async () => {
      const send = (i) => {
        const id = 'burst-${trial}-' + String(i).padStart(2, '0') + '-' + 'x'.repeat(4);
        return chrome.runtime.sendMessage({ type: 'activity', id, url: location.href, at: Date.now(),
          activity: { type: 'file_viewed', path: 'src/t${trial}/f' + i + '.rs' } }).then((a) => (a && a.ok ? id : null));
      };
      const first = [0, 1, 2].map(send);
      const rest = [];
      for (let i = 3; i < 13; i++) rest.push(send(i));
      return (await Promise.all([...first, ...rest])).filter(Boolean);
    })()`);
    await Promise.all(clicks);
    acknowledged.push(...answered);
  }
  // Everything the worker acknowledged is on the server, exactly once.
  const all = await until(async () => {
    const acts = await allActivities(env);
    const ids = new Set(acts.map((a) => a.id));
    const comments = acts.filter((a) => a.type === 'comment_posted').length;
    return acknowledged.every((id) => ids.has(id)) && comments >= 2 * TRIALS && acts;
  }, 60000, 250).catch(async () => {
    const acts = await allActivities(env);
    const ids = new Set(acts.map((a) => a.id));
    const lost = acknowledged.filter((id) => !ids.has(id));
    assert.fail(`${lost.length} of ${acknowledged.length} acknowledged actions never reached the server (e.g. ${lost.slice(0, 3)}); comments ${acts.filter((a) => a.type === 'comment_posted').length} of ${2 * TRIALS}`);
  });
  assert.equal(acknowledged.length, 13 * TRIALS, 'every message was answered');
  const ids = all.map((a) => a.id);
  assert.equal(new Set(ids).size, ids.length, 'no activity stored twice');
  assert.equal(all.filter((a) => a.type === 'comment_posted').length, 2 * TRIALS, 'every comment recorded once');
  assert.equal(all.filter((a) => a.id.startsWith('burst-')).length, 13 * TRIALS);
  const st = await env.state();
  assert.equal(st.dead.entries.length, 0, 'nothing failed');
  console.log(`cold-wake bursts: ${TRIALS} trials, ${acknowledged.length} messages acknowledged, ${ids.length} activities on the server, 0 lost`);
});

test('an open popup with nothing happening pushes less than one status a second and writes nothing', async (t) => {
  const env = await setupEnv(t, site);
  const popup = await extensionPage(env.context, env.browser.extensionId, 'popup.html');
  await popup.waitForSelector('#words');
  // Let the opening settle, then count for 5 s from another extension page.
  await new Promise((r) => setTimeout(r, 1500));
  const watcher = await extensionPage(env.context, env.browser.extensionId, 'options.html');
  const counts = await watcher.evaluate(async () => {
    let pushes = 0; let writes = 0;
    chrome.runtime.onMessage.addListener((m) => { if (m && m.type === 'status_changed') pushes++; });
    chrome.storage.onChanged.addListener(() => { writes++; });
    await new Promise((r) => setTimeout(r, 5000));
    return { pushes, writes };
  });
  assert.ok(counts.pushes / 5 < 1, `${counts.pushes} status pushes in 5 s`);
  assert.equal(counts.writes, 0, 'an idle popup causes no storage writes');
  // And it is still live: a change is pushed to it.
  await env.proxy.down();
  await popup.evaluate(() => chrome.runtime.sendMessage({ type: 'sync_now' }));
  console.log(`idle popup: ${counts.pushes} status pushes and ${counts.writes} storage writes in 5 s`);
});
