// ReviewTime content script, delivery: the one way out of the page. The
// content script's files run in the order manifest.json lists them
// ("content_scripts"; src/chrome.rs registers the same list for the hosts the
// user adds): this one first, then page.js, recognise-classic.js, recognise-react.js.
//
// Rules:
// - The modules share one object, `globalThis.__reviewtime` of the isolated
//   world (never the page's): `{ tracking, tab, beaconTo }` is what the
//   worker last said (tests read it over the DevTools protocol), `send` is
//   for page.js, `record` for the recognisers. Nothing is written into the page.
// - Where the manifest's match and the dynamic registration both cover a
//   page, Chromium 156 injects each file once (measured,
//   tests/e2e/github.test.mjs); should a browser inject twice, each file
//   still runs once, by name in `modules`.
// - `record(action)` is the recognisers' only seam. Each action gets its own
//   id (a repeat is recorded once) and is kept until the worker acknowledges
//   it, said again with backoff (250 ms doubling to 5 s).
// - A comment left for the review ("Start a review": `record(action, { pending: true })`)
//   is recorded with the next review submitted, in either view.
// - The drop box: every action the worker has not acknowledged waits in
//   chrome.storage.session, which the worker reads when the tab goes away
//   (src/dropbox.rs). It is the reliable path at pagehide: a message is lost
//   when the worker is asleep, and a page-context request to a server on a
//   more private address is refused by Chrome's Local Network Access.
// - The beacon: sent on pagehide exactly as the worker built it, and only
//   when the worker handed one out (src/capability.rs says where it can
//   arrive); never counted on.
(() => {
  if (globalThis.__reviewtime) return; // registered twice (static + dynamic): run once
  const rt = { tracking: 'starting', tab: null, modules: new Set(['delivery']) };
  globalThis.__reviewtime = rt;
  /** Whether the module `name` runs now: false when it already ran in this world. */
  rt.first = (name) => !rt.modules.has(name) && Boolean(rt.modules.add(name));
  const pageId = crypto.randomUUID().replaceAll('-', '').slice(0, 16);
  let beacon = { url: null, bodies: [] }; // kept current by every answer from the worker

  /** Sends `message` to the worker; resolves to its answer, or undefined when none came. */
  rt.send = (message) => chrome.runtime.sendMessage(message).then((answer) => {
    if (answer && answer.ok) {
      rt.tracking = answer.tracked ? 'tracking' : 'idle';
      if (Number.isSafeInteger(answer.tab) && rt.tab !== answer.tab) {
        rt.tab = answer.tab;
        writeDropBox(); // actions made before the first answer wait in the box too
      }
      if ('beacons' in answer) { beacon = { url: answer.beacon_url, bodies: answer.beacons }; rt.beaconTo = answer.beacon_url; }
    } else {
      rt.tracking = `error:${answer && answer.error}`;
    }
    return answer;
  }).catch(() => { /* the extension was reloaded or the worker is starting: the caller's retry says it again */ });

  // ---- Review actions, kept until acknowledged.
  const unacked = new Map();
  let pendingComments = 0;
  let retryTimer = null;
  function enqueue(activity) {
    const id = `cs-${crypto.randomUUID().replaceAll('-', '')}`;
    unacked.set(id, { type: 'activity', id, at: Date.now(), activity, url: location.href });
  }
  /** Records a review action (a protocol ActivityKind); `pending` holds a comment for the review. */
  rt.record = (activity, { pending = false } = {}) => {
    if (pending) { pendingComments++; return; }
    enqueue(activity);
    if (activity.type === 'review_submitted') for (; pendingComments > 0; pendingComments--) enqueue({ type: 'comment_posted' });
    writeDropBox();
    deliver();
  };
  async function deliver(delay = 250) {
    clearTimeout(retryTimer);
    let acked = false;
    for (const [id, message] of [...unacked]) {
      const answer = await rt.send(message);
      if (answer && answer.ok) { unacked.delete(id); acked = true; }
    }
    if (acked) writeDropBox();
    if (unacked.size) retryTimer = setTimeout(() => deliver(Math.min(delay * 2, 5000)), delay);
  }

  // ---- The drop box: chrome.storage.session, opened to content scripts by the
  // worker (setAccessLevel TRUSTED_AND_UNTRUSTED_CONTEXTS; secrets stay in areas
  // closed to them). One key per page of a tab: `reviewtime.drop.<tab>.<page>` =
  // { tab, page, url, closed_at, actions: [activity messages, as sent to the worker] }.
  // Written when an action is made or acknowledged and at pagehide; removed when
  // nothing is waiting. Nothing in it is secret: the worker checks each action
  // as it checks a message. Without a tab id (the worker never answered) there is
  // nothing to key it by, and the messages' own retries are all there is.
  let dropKey = null;
  function writeDropBox(closedAt = null) {
    const area = chrome.storage && chrome.storage.session;
    if (!area || rt.tab === null) return;
    const key = `reviewtime.drop.${rt.tab}.${pageId}`;
    try {
      if (dropKey && dropKey !== key) area.remove(dropKey).catch(() => {});
      dropKey = key;
      if (!unacked.size && closedAt === null) { area.remove(key).catch(() => {}); return; }
      if (!unacked.size) return; // closing with nothing waiting: the worker's own close ends the session
      area.set({ [key]: { tab: rt.tab, page: pageId, url: location.href, closed_at: closedAt, actions: [...unacked.values()] } }).catch(() => {});
    } catch { /* the area is closed to content scripts (worker not updated yet): the messages' retries remain */ }
  }

  window.addEventListener('pageshow', (e) => { if (e.persisted) writeDropBox(); }); // back/forward cache restore
  window.addEventListener('pagehide', () => {
    writeDropBox(Date.now());
    // text/plain needs no CORS preflight and no header.
    if (beacon.url) for (const body of beacon.bodies) navigator.sendBeacon(beacon.url, new Blob([body], { type: 'text/plain' }));
  });
})();
