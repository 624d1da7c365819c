// The dashboard page, rendered in headless Chromium against the real server.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { cleanup, outputDir, parsePairing, scratch, startServer, until } from './lib.mjs';

const started_at = Date.now() - 30 * 60_000;
function record(id, number, { ended = false, revision = 1 } = {}) {
  return { id, pr: { host: 'github.com', owner: 'octo', repo: 'widgets', number }, started_at, ended_at: ended ? started_at + 25 * 60_000 : null, wall_secs: ended ? 1500 : 600, active_secs: ended ? 1200 : 420, revision };
}

async function put(server, token, s) {
  const r = await fetch(`${server.url}/api/v1/sessions/${s.id}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(s) });
  assert.equal(r.status, 200);
}

test('the dashboard shows sessions with status, totals and a chart, and a session ended elsewhere turns Completed within 2 s', async (t) => {
  const server = await startServer();
  const profile = scratch('dash');
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  });
  t.after(async () => { await browser.close(); cleanup(profile); await server.stop(); cleanup(server.data); });
  const { token } = parsePairing(server.pairing);
  await put(server, token, record('d1', 7, { ended: true }));
  await put(server, token, record('d2', 8));
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1100, height: 700 });
  await page.goto(server.pairing); // the pairing link signs the dashboard in
  await page.waitForSelector('tr[data-session-id="d2"]');
  assert.equal(new URL(page.url()).hash, '', 'the token leaves the address bar');
  const row = async (id) => page.textContent(`tr[data-session-id="${id}"]`);
  assert.match(await row('d1'), /octo\/widgets#7.*25m 0s.*20m 0s.*Completed/);
  assert.match(await row('d2'), /octo\/widgets#8.*In progress/);
  assert.match(await page.textContent('#repos'), /octo\/widgets\s*2\s*27m/);
  assert.equal(await page.locator('#chart div').count(), 14);
  mkdirSync(outputDir, { recursive: true });
  await page.screenshot({ path: path.join(outputDir, 'dashboard.png') });
  const endedAt = Date.now();
  await put(server, token, record('d2', 8, { ended: true, revision: 2 }));
  await until(async () => /Completed/.test(await row('d2')), 2000, 50);
  assert.ok(Date.now() - endedAt <= 2000);
  // A wrong token gets the sign-in form, not a crash.
  const other = await browser.newPage();
  await other.goto(`${server.url}/pair#token=rt_wrong`);
  await other.waitForSelector('#signin:not([hidden])');
  assert.match(await other.textContent('#signinError'), /unknown or revoked token/);
});
