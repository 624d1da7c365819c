// Shared helpers for the end-to-end tests: the real server, the real unpacked
// extension in Debian's headless Chromium, a local page, and the DevTools
// protocol to stop the service worker. Everything listens on 127.0.0.1 and is
// stopped by the test that started it.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const dist = path.join(root, 'dist');
export const outputDir = path.join(root, 'test-output');
const scratchRoot = path.join(root, '.scratch');

/** A fresh folder under the project's scratch dir, removed by `cleanup`. */
export function scratch(prefix) {
  mkdirSync(scratchRoot, { recursive: true });
  return mkdtempSync(path.join(scratchRoot, `${prefix}-`));
}

/** Starts the real server on 127.0.0.1 with a fresh database; resolves once it listens. */
export async function startServer({ data = scratch('server'), addr = '127.0.0.1:0' } = {}) {
  const bin = path.join(root, 'target/debug/reviewtime-server');
  const child = spawn(bin, ['--data', data, 'serve', '--addr', addr, '--exit-after', '900'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const info = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 15000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const url = /^LISTENING (\S+)$/m.exec(out);
      if (url) {
        clearTimeout(timer);
        const pairing = /^PAIRING (\S+)$/m.exec(out);
        resolve({ url: url[1], pairing: pairing && pairing[1] });
      }
    });
    child.stderr.on('data', (chunk) => { out += chunk; });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
  return { ...info, data, child, stop };
}

/** Serves `pages` (path -> html) on 127.0.0.1 with GitHub's strict CSP. */
export async function startPageServer(pages) {
  const server = http.createServer((req, res) => {
    const body = pages[new URL(req.url, 'http://x').pathname];
    if (body === undefined) { res.writeHead(404); res.end('not found'); return; }
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
    });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

/** Launches headless Chromium with the unpacked extension from dist/. */
export async function launchExtension(profile = scratch('profile')) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [`--disable-extensions-except=${dist}`, `--load-extension=${dist}`, '--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
  });
  let [sw] = context.serviceWorkers();
  if (!sw) sw = await context.waitForEvent('serviceworker', { timeout: 15000 });
  const extensionId = new URL(sw.url()).host;
  return { context, extensionId, profile };
}

/** An extension page to talk to the worker from (like the popup does). */
export async function extensionPage(context, extensionId, file = 'popup.html') {
  const page = await context.newPage();
  await page.goto(`chrome-extension://${extensionId}/${file}`);
  return page;
}

/** Sends a runtime message from an extension page and returns the answer. */
export function send(page, message) {
  return page.evaluate((m) => chrome.runtime.sendMessage(m), message);
}

async function workerTargets(cdp) {
  const { targetInfos } = await cdp.send('Target.getTargets');
  return targetInfos.filter((t) => t.type === 'service_worker' && t.url.startsWith('chrome-extension://'));
}

/** Stops the extension's service worker through the DevTools protocol and waits until it is gone. */
export async function stopServiceWorker(context) {
  const cdp = await context.browser().newBrowserCDPSession();
  try {
    for (const t of await workerTargets(cdp)) await cdp.send('Target.closeTarget', { targetId: t.targetId });
    const deadline = Date.now() + 5000;
    while ((await workerTargets(cdp)).length) {
      if (Date.now() > deadline) throw new Error('service worker did not stop');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await cdp.detach();
  }
}

/** Whether a service worker of the extension is running. */
export async function serviceWorkerRunning(context) {
  const cdp = await context.browser().newBrowserCDPSession();
  try { return (await workerTargets(cdp)).length > 0; } finally { await cdp.detach(); }
}

export function cleanup(dir) {
  rmSync(dir, { recursive: true, force: true });
}
