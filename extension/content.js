// ReviewTime content script: runs on github.com and on the hosts the user adds.
// It reports which page this is (the background decides whether it is a pull
// request), visibility, focus and user input, records review actions, and on
// pagehide sends the session-end beacon it already holds — without waiting on
// the background, which may be asleep.
(() => {
  if (globalThis.__reviewtimeLoaded) return; // registered twice (static + dynamic): run once
  globalThis.__reviewtimeLoaded = true;

  let beacon = { url: null, bodies: [] }; // kept current by every answer from the worker
  let lastUrl = location.href;
  let lastInput = 0;
  const INPUT_EVERY_MS = 15000;

  function send(message) {
    return chrome.runtime.sendMessage(message).then((answer) => {
      if (answer && answer.ok) {
        document.documentElement.dataset.reviewtime = answer.tracked ? 'tracking' : 'idle';
        if ('beacons' in answer) beacon = { url: answer.beacon_url, bodies: answer.beacons };
      } else {
        document.documentElement.dataset.reviewtime = `error:${answer && answer.error}`;
      }
      return answer;
    }).catch(() => { /* the extension was reloaded or the worker is starting: the next report retries */ });
  }

  function report() {
    lastUrl = location.href;
    return send({ type: 'page', url: location.href, visible: document.visibilityState === 'visible', focused: document.hasFocus() });
  }

  function onInput() {
    const now = Date.now();
    if (now - lastInput < INPUT_EVERY_MS) return;
    lastInput = now;
    send({ type: 'input', url: location.href });
  }

  // Review actions are kept until the worker acknowledges them: a message can be
  // lost when the worker is stopped at the wrong moment. Each carries its own id,
  // so a repeat is recorded once.
  const unacked = new Map();
  let retryTimer = null;
  function activity(activity) {
    const id = `cs-${crypto.randomUUID().replaceAll('-', '')}`;
    unacked.set(id, { type: 'activity', id, at: Date.now(), activity, url: location.href });
    deliver();
  }
  async function deliver(delay = 250) {
    clearTimeout(retryTimer);
    for (const [id, message] of [...unacked]) {
      const answer = await send(message);
      if (answer && answer.ok) unacked.delete(id);
    }
    if (unacked.size) retryTimer = setTimeout(() => deliver(Math.min(delay * 2, 5000)), delay);
  }

  // In-page navigation (GitHub's Turbo, history API): events where they exist, a cheap poll as the catch-all.
  const onNavigate = () => { if (location.href !== lastUrl) report(); };
  for (const ev of ['turbo:load', 'turbo:render', 'pjax:end']) document.addEventListener(ev, onNavigate);
  window.addEventListener('popstate', onNavigate);
  setInterval(() => { if (location.href !== lastUrl) report(); }, 500);
  document.addEventListener('visibilitychange', report);
  window.addEventListener('focus', report);
  window.addEventListener('blur', report);
  window.addEventListener('pageshow', (e) => { if (e.persisted) report(); }); // back/forward cache restore
  for (const ev of ['keydown', 'mousedown', 'scroll', 'mousemove']) window.addEventListener(ev, onInput, { passive: true, capture: true });

  // Review actions, recognised from GitHub's forms.
  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    const verdict = form.querySelector('input[name="pull_request_review[event]"]:checked');
    if (verdict) {
      const map = { approve: 'approve', reject: 'request_changes', comment: 'comment' };
      activity({ type: 'review_submitted', verdict: map[verdict.value] || 'comment' });
    } else if (form.querySelector('textarea[name="comment[body]"]')) {
      activity({ type: 'comment_posted' });
    }
  }, true);
  document.addEventListener('change', (e) => {
    const box = e.target;
    if (box instanceof HTMLInputElement && box.type === 'checkbox' && box.name === 'viewed' && box.checked) {
      const file = box.closest('[data-path]');
      activity({ type: 'file_viewed', path: file ? file.getAttribute('data-path') : null });
    }
  }, true);

  // The closing tab still reports: text/plain needs no CORS preflight and no header.
  // The worker computed the end as of its last answer; bring its times up to now.
  window.addEventListener('pagehide', () => {
    if (!beacon.url) return;
    const now = Date.now();
    beacon.bodies.forEach((body, i) => {
      if (i === 0) {
        try {
          const payload = JSON.parse(body);
          for (const s of payload.sessions) {
            s.ended_at = Math.max(s.ended_at, now);
            s.wall_secs = Math.floor((s.ended_at - s.started_at) / 1000);
            // Actions the worker has not acknowledged yet go with the beacon too.
            for (const m of unacked.values()) payload.activities.push({ id: m.id, session_id: s.id, at: Math.max(m.at, s.started_at), ...m.activity });
          }
          body = JSON.stringify(payload);
        } catch { /* send it as the worker made it */ }
      }
      navigator.sendBeacon(beacon.url, new Blob([body], { type: 'text/plain' }));
    });
  });

  report();
})();
