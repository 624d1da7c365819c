// The extension against an organisation's deployment: two server instances
// on one PostgreSQL database behind a round-robin balancer. Needs the
// PostgreSQL server REVIEWTIME_TEST_PG names (scripts/test.sh starts one with
// scripts/pg.sh); without it the test is skipped, unless REVIEWTIME_REQUIRE_PG
// is set (the test command), when it fails.
//
// The servers get their database from REVIEWTIME_DATABASE, which this file
// sets for the server processes it starts (node runs each test file in its own
// process, so no other file sees it).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { api, cleanup, launchExtension, pair, parsePairing, root, startGitHubLike, startServer, until, untilTracking } from './lib.mjs';

const base = process.env.REVIEWTIME_TEST_PG;
const required = Boolean(process.env.REVIEWTIME_REQUIRE_PG);
const bin = process.env.REVIEWTIME_SERVER_BIN ?? path.join(root, 'target/debug/reviewtime-server');
const psql = process.env.REVIEWTIME_PG_BIN ? path.join(process.env.REVIEWTIME_PG_BIN, 'psql') : 'psql';
const schema = `e2e_${process.pid}`;

/** Runs SQL on the test server and returns psql's unaligned, tuples-only output. */
function sql(query) {
  return execFileSync(psql, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', base, '-c', query], { encoding: 'utf8' }).trim();
}

/** Forwards each request to the next instance in turn, counting what each one served. */
async function startBalancer(targets) {
  const served = targets.map(() => 0);
  let next = 0;
  const server = http.createServer((req, res) => {
    const i = next++ % targets.length;
    served[i]++;
    const t = new URL(targets[i]);
    const fwd = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    fwd.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(fwd);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    served,
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

let site;
before(async () => {
  if (!base) return;
  site = await startGitHubLike();
  sql(`CREATE SCHEMA ${schema}`);
  process.env.REVIEWTIME_DATABASE = `${base}?options=-c%20search_path%3D${schema}`;
});
after(async () => {
  await site?.stop();
  if (base) sql(`SET client_min_messages TO warning; DROP SCHEMA IF EXISTS ${schema} CASCADE`);
});

test('a PR reviewed through two instances on PostgreSQL is stored once, Completed, with its activities', { skip: !base && !required && 'REVIEWTIME_TEST_PG is not set' }, async (t) => {
  assert.ok(base, 'REVIEWTIME_REQUIRE_PG is set but REVIEWTIME_TEST_PG is not: the PostgreSQL test cannot run');
  const first = await startServer({ bin });
  const second = await startServer({ bin });
  const balancer = await startBalancer([first.url, second.url]);
  const pairing = parsePairing(first.pairing);
  assert.equal(second.pairing, null, 'the second instance finds the user the first created');
  const browser = await launchExtension();
  t.after(async () => {
    await browser.context.close().catch(() => {});
    cleanup(browser.profile);
    await balancer.stop();
    await first.stop();
    await second.stop();
    cleanup(first.data);
    cleanup(second.data);
  });
  await pair(browser.context, browser.extensionId, { serverUrl: balancer.url, pairing, origin: site.origin });

  const pr = await browser.context.newPage();
  await pr.goto(`${site.origin}/octo/widgets/pull/1`);
  await untilTracking(pr);
  await pr.click('#comment');
  await pr.check('#viewed');
  await pr.click('#review');
  await pr.mouse.move(20, 20);
  await new Promise((r) => setTimeout(r, 1200));
  await pr.close();

  // Either instance answers the same, from the one database.
  for (const server of [first, second]) {
    const session = await until(async () => (await api(server, pairing.token, '/api/v1/sessions')).sessions.find((s) => s.ended_at), 10000);
    assert.deepEqual([session.pr.owner, session.pr.repo, session.pr.number], ['octo', 'widgets', 1]);
    assert.ok(session.wall_secs >= 1 && session.active_secs <= session.wall_secs, `wall ${session.wall_secs}, active ${session.active_secs}`);
    const acts = await until(async () => { const a = (await api(server, pairing.token, '/api/v1/activities?limit=1000')).activities; return a.length >= 3 && a; });
    assert.deepEqual(acts.map((a) => a.type).sort(), ['comment_posted', 'file_viewed', 'review_submitted']);
  }
  // The rows are in PostgreSQL, each once, though the beacon and the worker both delivered.
  assert.equal(sql(`SELECT COUNT(*) FROM ${schema}.sessions WHERE ended_at IS NOT NULL`), '1');
  assert.equal(sql(`SELECT COUNT(*), COUNT(DISTINCT id) FROM ${schema}.activities`), '3|3');
  assert.ok(balancer.served.every((n) => n > 0), `both instances served requests: ${balancer.served}`);
});
