// ReviewTime content script, page: which page this is and whether the
// reviewer is here. Runs after delivery.js (manifest.json lists the order).
//
// Rules:
// - It reports the page (URL, visibility, focus) on load, on every navigation
//   and on every visibility or focus change, and user input at most every
//   15 s. The worker decides what the URL is (src/pages.rs); this file knows
//   no URL shape.
// - A page is its URL without the #hash: line anchors and #diff-… links are
//   not new pages.
// - Navigation: GitHub's Turbo pages (turbo:*), its React pages (soft-nav:*),
//   the Navigation API where the browser has it, history, back/forward cache;
//   a 500 ms poll as the back-stop.
// - A report the worker did not answer is said again with backoff (250 ms
//   doubling to 8 s, 8 times) while the page stays the same. A pull-request
//   page the worker says it does not track (its answer: `pr: true`,
//   `tracked: false`) may have raced an older event of its tab, and is asked
//   again twice.
// - A page hidden or blurred because it is leaving says nothing: the worker
//   hears that from Chrome (tabs.onRemoved, tabs.onUpdated), and a report
//   would put a save in front of the close's commit, on its critical path.
(() => {
  const rt = globalThis.__reviewtime;
  if (!rt || !rt.first('page')) return; // injected twice: run once
  const INPUT_EVERY_MS = 15000;
  let lastInput = 0;

  const pageKey = () => location.href.split('#')[0];
  let lastKey = pageKey();
  let reportTry = 0;
  let reportTimer = null;
  function report() {
    lastKey = pageKey();
    const key = lastKey;
    clearTimeout(reportTimer);
    return rt.send({ type: 'page', url: location.href, visible: document.visibilityState === 'visible', focused: document.hasFocus() }).then((answer) => {
      const racedAway = answer && answer.ok && !answer.tracked && answer.pr && reportTry < 2;
      if (answer && answer.ok && !racedAway) reportTry = 0;
      else if (reportTry < 8 && pageKey() === key) reportTimer = setTimeout(report, Math.min(250 * 2 ** reportTry++, 8000));
      return answer;
    });
  }

  function onInput() {
    const now = Date.now();
    if (now - lastInput < INPUT_EVERY_MS) return;
    lastInput = now;
    rt.send({ type: 'input', url: location.href });
  }

  const onNavigate = () => { if (pageKey() !== lastKey) report(); };
  if (globalThis.navigation && typeof navigation.addEventListener === 'function') {
    navigation.addEventListener('navigatesuccess', onNavigate);
    navigation.addEventListener('currententrychange', onNavigate);
  }
  for (const ev of ['turbo:load', 'turbo:render', 'soft-nav:react-done', 'soft-nav:end', 'pjax:end']) document.addEventListener(ev, onNavigate);
  window.addEventListener('popstate', onNavigate);
  setInterval(onNavigate, 500);
  // "Hidden" and "blurred" go one task later (a message-channel task: not
  // throttled like a background timer), and pagehide, which follows in the
  // same task when the page is leaving, cancels them.
  let leavePending = false;
  const nextTask = new MessageChannel();
  nextTask.port1.onmessage = () => { if (leavePending) { leavePending = false; report(); } };
  const reportUnlessLeaving = () => { leavePending = true; nextTask.port2.postMessage(0); };
  const reportNow = () => { leavePending = false; report(); };
  document.addEventListener('visibilitychange', () => (document.visibilityState === 'hidden' ? reportUnlessLeaving() : reportNow()));
  window.addEventListener('focus', reportNow);
  window.addEventListener('blur', reportUnlessLeaving);
  window.addEventListener('pageshow', (e) => { if (e.persisted) report(); }); // back/forward cache restore: this page lives again
  window.addEventListener('pagehide', () => { leavePending = false; }); // leaving: Chrome tells the worker
  for (const ev of ['keydown', 'mousedown', 'scroll', 'mousemove']) window.addEventListener(ev, onInput, { passive: true, capture: true });

  report();
})();
