// The foundation end to end: the built extension loads, its Rust background
// answers, a content script on a local page reaches Rust through the worker,
// and state in chrome.storage.local survives the worker being stopped.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { cleanup, engineState, extensionPage, launchExtension, outputDir, send, serviceWorkerRunning, startPageServer, startServer, stopServiceWorker, tracking, until } from './lib.mjs';

let server, pages, browser;

before(async () => {
  server = await startServer();
  pages = await startPageServer({
    '/octo/widgets/pull/7': '<!doctype html><title>Fix widgets #7</title><h1>Fix widgets</h1>',
  });
  browser = await launchExtension();
});

after(async () => {
  await browser?.context.close();
  if (browser) cleanup(browser.profile);
  await pages?.stop();
  await server?.stop();
  if (server) cleanup(server.data);
});

test('the server started on 127.0.0.1 and printed a pairing link', () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(server.pairing, /^http:\/\/127\.0\.0\.1:\d+\/pair#token=rt_[0-9a-f]+&beacon=rb_[0-9a-f]+$/);
});

test('the service worker loads the wasm and Rust answers a status message', async () => {
  const page = await extensionPage(browser.context, browser.extensionId);
  const answer = await send(page, { type: 'status' });
  assert.equal(answer.ok, true, JSON.stringify(answer));
  assert.match(answer.status.engine, /^reviewtime-core \d+\.\d+\.\d+$/);
  await page.close();
});

test('a malformed message gets an error answer, not a crash', async () => {
  const page = await extensionPage(browser.context, browser.extensionId);
  const answer = await send(page, { type: 'no_such_thing', x: 1 });
  assert.equal(answer.ok, false);
  assert.match(answer.error, /malformed message/);
  const again = await send(page, { type: 'status' });
  assert.equal(again.ok, true);
  await page.close();
});

test('a content script on a tracked local page gets an answer from Rust through the worker', async () => {
  const page = await extensionPage(browser.context, browser.extensionId, 'options.html');
  const saved = await send(page, { type: 'set_settings', settings: { server_url: server.url, tracked_hosts: [pages.origin], idle_limit_minutes: 15 } });
  assert.equal(saved.ok, true, JSON.stringify(saved));
  assert.deepEqual(saved.settings.tracked_hosts, [pages.origin]);
  const bad = await send(page, { type: 'set_settings', settings: { server_url: 'ftp://nope', tracked_hosts: [], idle_limit_minutes: 15 } });
  assert.equal(bad.ok, false);
  assert.match(bad.error, /Server URL must start with http/);
  await page.close();

  const pr = await browser.context.newPage();
  await pr.goto(`${pages.origin}/octo/widgets/pull/7`);
  const said = await until(() => tracking(pr));
  assert.equal(said, 'tracking', 'Rust recognised the tracked PR page');
  assert.equal(await pr.evaluate(() => [...document.documentElement.attributes].map((a) => a.name).join()), '', 'nothing written into the page');
  await pr.close();
});

test('the worker comes back after being stopped, with its state kept in chrome.storage.local', async () => {
  const page = await extensionPage(browser.context, browser.extensionId);
  const before = await engineState(page);
  const stored = await page.evaluate(() => chrome.storage.local.get('reviewtime.meta'));
  assert.equal(JSON.parse(stored['reviewtime.meta']).install_id, before.install_id, 'state is persisted');
  await stopServiceWorker(browser.context);
  assert.equal(await serviceWorkerRunning(browser.context), false);
  const afterStop = await send(page, { type: 'status' });
  assert.equal(afterStop.ok, true);
  assert.equal((await engineState(page)).install_id, before.install_id, 'the same install, read back from storage');
  assert.equal(await serviceWorkerRunning(browser.context), true);
  await page.close();
});

test('the popup shows the status it gets from the worker (screenshot saved)', async () => {
  const popup = await extensionPage(browser.context, browser.extensionId, 'popup.html');
  await popup.setViewportSize({ width: 360, height: 300 });
  await popup.waitForFunction(() => document.getElementById('words').textContent !== 'Loading…');
  assert.match(await popup.textContent('#words'), /Not paired with a server/);
  mkdirSync(outputDir, { recursive: true });
  await popup.screenshot({ path: path.join(outputDir, 'popup-foundation.png') });
  await popup.close();
});
