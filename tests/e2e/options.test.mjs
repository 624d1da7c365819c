// The options page and the dashboard read pairing links by one rule (the
// worker's and the server's builds of crates/protocol/src/pairing.rs), on the
// table of vectors the Rust tests read; Save asks for host access in the
// click's own user gesture, with the patterns the worker names.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { cleanup, extensionPage, launchExtension, root, scratch, send, startServer, until } from './lib.mjs';

const { vectors } = JSON.parse(readFileSync(path.join(root, 'crates/protocol/tests/pairing-links.json'), 'utf8'));

let server, browser;
before(async () => { server = await startServer(); browser = await launchExtension(); });
after(async () => {
  await browser?.context.close();
  if (browser) cleanup(browser.profile);
  await server?.stop();
  if (server) cleanup(server.data);
});

/** The dashboard's answer: the token its server reads from `text`, or null when it refuses it. */
async function dashboardToken(text) {
  const r = await fetch(`${server.url}/pair`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: text });
  const body = await r.json();
  if (r.status === 400) return null;
  assert.equal(r.status, 200, JSON.stringify(body));
  return body.token;
}

test('every pairing-link vector reads as the table says, in the options page (through the worker) and the dashboard (through its server), and the two agree', async () => {
  const page = await extensionPage(browser.context, browser.extensionId, 'options.html');
  for (const v of vectors) {
    const answer = await send(page, { type: 'parse_pairing', link: v.link });
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.deepEqual(answer.pairing, v.pairing, `options page: ${v.why}`);
    const token = await dashboardToken(v.link);
    assert.equal(token, v.sign_in, `dashboard: ${v.why}`);
    if (answer.pairing) assert.equal(token, answer.pairing.token, `the dashboard signs in with the token the options page reads: ${v.why}`);
  }
  await page.close();
  console.log(`${vectors.length} pairing-link vectors: the options page and the dashboard read each as crates/protocol/tests/pairing-links.json says`);
});

test('a pasted pairing link fills the form as the worker reads it; anything else is said to be no pairing link', async () => {
  const page = await extensionPage(browser.context, browser.extensionId, 'options.html');
  const encoded = vectors.find((v) => /percent-encoded/.test(v.why));
  await page.fill('#pairing', encoded.link);
  await until(async () => (await page.inputValue('#token')) === encoded.pairing.token, 5000);
  assert.deepEqual([await page.inputValue('#server'), await page.inputValue('#token'), await page.inputValue('#beacon')],
    [encoded.pairing.server, encoded.pairing.token, encoded.pairing.beacon_key]);
  assert.equal(await page.textContent('#result'), 'Pairing link read: press Save.');
  await page.fill('#pairing', 'http://127.0.0.1:8787/pair#token=rt_a');
  await until(async () => /^That is not a pairing link/.test(await page.textContent('#result')), 5000);
  await page.close();
});

test('the dashboard signs in by the same rule: from its sign-in form, and opened from a pairing link with a percent-encoded token', async () => {
  const profile = scratch('dash-pair');
  const plain = await chromium.launchPersistentContext(profile, { executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync', '--disable-quic'] });
  try {
    const page = await plain.newPage();
    await page.goto(`${server.url}/`);
    await page.waitForSelector('#signin:not([hidden])');
    await page.fill('#tokenInput', 'not a link');
    await page.click('#form button');
    await until(async () => /not a pairing link or a token/.test(await page.textContent('#signinError')), 5000);
    await page.fill('#tokenInput', ` ${server.pairing} `);
    await page.click('#form button');
    await page.waitForFunction(() => document.getElementById('who').textContent === 'signed in as local');

    const opened = await plain.newPage();
    await opened.evaluate(() => localStorage.clear()).catch(() => {});
    await opened.goto(`${server.url}/`);
    await opened.evaluate(() => localStorage.clear());
    await opened.goto(server.pairing.replace('token=rt_', 'token=rt%5F'));
    await opened.waitForFunction(() => document.getElementById('who').textContent === 'signed in as local');
    assert.equal(new URL(opened.url()).hash, '', 'the token leaves the address bar');
    assert.equal(await opened.evaluate(() => localStorage.getItem('reviewtime.token')), /token=([^&]+)/.exec(server.pairing)[1], 'decoded by the rule');
  } finally {
    await plain.close();
    cleanup(profile);
  }
});

test("Save asks for host access in the click's user gesture, after the worker named the patterns; bad settings are refused in words", async () => {
  // A host the extension does not hold yet: Chrome refuses the request
  // outright without a user gesture (the control), and with one it shows its
  // prompt and waits. So a Save that is still waiting, not refused, made its
  // request inside the click's activation, after the awaited answer.
  // (The control runs first: Playwright's own calls on a page give it user activation.)
  const asking = await extensionPage(browser.context, browser.extensionId, 'options.html');
  const cdp = await asking.context().newCDPSession(asking);
  const { result } = await Promise.race([cdp.send('Runtime.evaluate', {
    expression: "chrome.permissions.request({ origins: ['https://ghe.example.com/*'] }).then((g) => `resolved ${g}`, (e) => e.message)",
    awaitPromise: true, returnByValue: true, userGesture: false,
  }), new Promise((resolve) => setTimeout(() => resolve({ result: { value: 'no answer within 5 s (a prompt?)' } }), 5000))]);
  assert.match(result.value, /must be called during a user gesture/, 'the control: no gesture, no request');
  await until(async () => (await asking.inputValue('#server')) !== '', 5000); // loaded
  await asking.evaluate(() => { // watch the page's request, and what Chrome says to it
    const request = chrome.permissions.request.bind(chrome.permissions);
    chrome.permissions.request = (asked) => {
      globalThis.asked = asked.origins;
      return request(asked).catch((e) => { globalThis.refused = e.message; throw e; });
    };
  });
  await asking.fill('#hosts', 'https://ghe.example.com');
  await asking.click('button[type=submit]');
  await until(() => asking.evaluate(() => globalThis.asked), 2000);
  assert.deepEqual(await asking.evaluate(() => globalThis.asked), ['https://ghe.example.com/*', 'http://127.0.0.1/*'], 'the tracked host and the (default) server');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await asking.evaluate(() => globalThis.refused), undefined, "not refused: Chrome's prompt is up, the request kept the click's gesture");
  assert.equal(await asking.textContent('#result'), '');
  await asking.close();

  const page = await extensionPage(browser.context, browser.extensionId, 'options.html');
  await until(async () => (await page.inputValue('#server')) !== '', 5000);
  const named = await send(page, { type: 'host_patterns', settings: { server_url: server.url, tracked_hosts: ['http://127.0.0.1:4321', 'http://LOCALHOST:9'], idle_limit_minutes: 15 } });
  assert.deepEqual(named.origins, ['http://127.0.0.1/*', 'http://localhost/*'], 'one pattern a host, ports dropped, by src/settings.rs');
  // Hosts the manifest already grants: Save goes through.
  await page.fill('#server', server.url);
  await page.fill('#hosts', 'http://127.0.0.1:4321\nhttp://localhost:9');
  await page.click('button[type=submit]');
  await until(async () => (await page.textContent('#result')) !== '', 5000);
  assert.equal(await page.textContent('#result'), 'Saved.');
  const saved = await send(page, { type: 'get_settings' });
  assert.deepEqual(saved.settings.tracked_hosts, ['http://127.0.0.1:4321', 'http://localhost:9']);

  await page.fill('#server', 'ftp://nope');
  await page.click('button[type=submit]');
  await until(async () => /^Not saved: /.test(await page.textContent('#result')), 5000);
  assert.match(await page.textContent('#result'), /Server URL must start with http:\/\/ or https:\/\//);
  assert.equal((await send(page, { type: 'get_settings' })).settings.server_url, server.url, 'nothing saved');
  await page.close();
});
