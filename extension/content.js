// ReviewTime content script: runs on github.com and on the hosts the user adds.
// It reports which page this is (the worker decides whether it is a pull
// request), visibility, focus and user input, and records review actions in
// both of GitHub's "Files changed" views: the classic one (/pull/N/files) and
// the React one (/pull/N/changes).
//
// It lives in its own isolated world and leaves nothing the page can see: no
// attribute, no global in the page's world. Its state is `globalThis.__reviewtime`
// of the isolated world (tests read it over the DevTools protocol).
//
// On pagehide nothing can be counted on but a chrome.storage write: the worker
// may be asleep (a message is lost) and a page-context beacon to a server on a
// more private address (the default 127.0.0.1) is refused by Chrome's Local
// Network Access. So every action the worker has not acknowledged waits in a
// drop box in chrome.storage.session, which the worker reads when the tab goes
// away (tabs.onRemoved) and delivers itself. The beacon is kept only where it
// can arrive, as a back-up.
(() => {
  if (globalThis.__reviewtime) return; // registered twice (static + dynamic): run once

  // ---- Selectors: the one table. Matched on stable attributes and class-name
  // prefixes (GitHub's CSS-module suffixes change with every build). A selector
  // that stops matching only loses the action it recognises: session tracking
  // (page, visibility, focus, input) depends on none of them.
  const SELECTORS = {
    // Classic Files view. refined-github source/github-helpers/selectors.ts and
    // source/features/* (e.g. mark-as-viewed helpers): the Viewed checkbox is
    // `input.js-reviewed-checkbox` named "viewed" inside the file header, which
    // carries the path in `data-path`.
    classicViewed: 'input.js-reviewed-checkbox[name="viewed"], input[type="checkbox"][name="viewed"]',
    classicFileHeader: '[data-path]',
    // The review form's verdict radios (values comment / approve / reject); they may
    // sit outside the <form>, linked by a form= attribute, hence FormData(form, submitter).
    classicVerdictName: 'pull_request_review[event]',
    // Inline comment forms: "Add single comment" posts at once (the submitter is
    // button[name=single_comment]); "Start a review" / "Add review comment" leaves a
    // pending comment that is published with the review.
    classicCommentBody: 'textarea[name="comment[body]"]',
    classicSingleComment: 'button[name="single_comment"]',
    classicInlineForm: 'form.js-inline-comment-form',
    // React Files view (/pull/N/changes; refined-github PR #8777 and
    // source/github-helpers/selectors.ts): each file is a div whose id starts with
    // "diff-"; its DiffFileHeader holds the path as `[class*="file-name"] code`
    // wrapped in U+200E/U+200F marks; Viewed is a toggle button with aria-pressed.
    reactFile: 'div[id^="diff-"]',
    reactFileName: '[class*="DiffFileHeader"] [class*="file-name"] code, [class*="file-name"] code',
    reactViewed: 'button[class*="MarkAsViewedButton"]',
    // The review dialog: role=dialog, opened from the ReviewMenuButton (whose
    // click is not itself an action); verdicts comment / approve / request changes;
    // the SubmitReviewButton (or Ctrl/Cmd+Enter) submits, and the dialog closes only
    // when the review was accepted.
    reactDialog: 'div[role="dialog"]',
    reactSubmitReview: '[class*="SubmitReviewButton"]',
    // Inline comments: the AddCommentEditor, unmounted once its comment was saved.
    reactCommentEditor: '[class*="AddCommentEditor"]',
  };
  const BIDI_MARKS = /[\u200e\u200f]/g;

  const view = { tracking: 'starting', tab: null }; // what tests read, in this world only
  globalThis.__reviewtime = view;
  const pageId = crypto.randomUUID().replaceAll('-', '').slice(0, 16);
  let beacon = { url: null, bodies: [] }; // kept current by every answer from the worker
  let lastInput = 0;
  const INPUT_EVERY_MS = 15000;

  function send(message) {
    return chrome.runtime.sendMessage(message).then((answer) => {
      if (answer && answer.ok) {
        view.tracking = answer.tracked ? 'tracking' : 'idle';
        if (Number.isSafeInteger(answer.tab) && view.tab !== answer.tab) {
          view.tab = answer.tab;
          writeDropBox(); // actions made before the first answer wait in the box too
        }
        if ('beacons' in answer) { beacon = { url: answer.beacon_url, bodies: answer.beacons }; view.beaconTo = answer.beacon_url; }
      } else {
        view.tracking = `error:${answer && answer.error}`;
      }
      return answer;
    }).catch(() => { /* the extension was reloaded or the worker is starting: the next report retries */ });
  }

  // A page is its URL without the #hash: line anchors and #diff-… links are not new pages.
  const pageKey = () => location.href.split('#')[0];
  let lastKey = pageKey();
  // A report lost to a worker that was stopping or starting is said again (with
  // backoff, a few times), as actions are: else the page would wait for its next
  // focus or visibility change to be tracked.
  let reportTry = 0;
  let reportTimer = null;
  function report() {
    lastKey = pageKey();
    const key = lastKey;
    clearTimeout(reportTimer);
    return send({ type: 'page', url: location.href, visible: document.visibilityState === 'visible', focused: document.hasFocus() }).then((answer) => {
      // A PR page the worker says it does not track may have raced an older
      // event of its tab (a navigation the worker handled late): asked again,
      // twice, it settles; a page the worker never tracks costs two messages.
      const racedAway = answer && answer.ok && !answer.tracked && /\/pull\/\d+/.test(location.pathname) && reportTry < 2;
      if (answer && answer.ok && !racedAway) reportTry = 0;
      else if (reportTry < 8 && pageKey() === key) reportTimer = setTimeout(report, Math.min(250 * 2 ** reportTry++, 8000));
      return answer;
    });
  }

  function onInput() {
    const now = Date.now();
    if (now - lastInput < INPUT_EVERY_MS) return;
    lastInput = now;
    send({ type: 'input', url: location.href });
  }

  // ---- Review actions. Each is kept until the worker acknowledges it (a message
  // is lost when the worker is stopped at the wrong moment) and carries its own id,
  // so a repeat is recorded once.
  const unacked = new Map();
  let retryTimer = null;
  function activity(activity) {
    const id = `cs-${crypto.randomUUID().replaceAll('-', '')}`;
    unacked.set(id, { type: 'activity', id, at: Date.now(), activity, url: location.href });
    writeDropBox();
    deliver();
  }
  async function deliver(delay = 250) {
    clearTimeout(retryTimer);
    let acked = false;
    for (const [id, message] of [...unacked]) {
      const answer = await send(message);
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
    if (!area || view.tab === null) return;
    const key = `reviewtime.drop.${view.tab}.${pageId}`;
    try {
      if (dropKey && dropKey !== key) area.remove(dropKey).catch(() => {});
      dropKey = key;
      if (!unacked.size && closedAt === null) { area.remove(key).catch(() => {}); return; }
      if (!unacked.size) return; // closing with nothing waiting: the worker's own close ends the session
      area.set({ [key]: { tab: view.tab, page: pageId, url: location.href, closed_at: closedAt, actions: [...unacked.values()] } }).catch(() => {});
    } catch { /* the area is closed to content scripts (worker not updated yet): the messages' retries remain */ }
  }

  // ---- Navigation: GitHub's Turbo pages, its React pages (soft-nav:*), the
  // Navigation API where the browser has it, history; a cheap poll as the back-stop.
  const onNavigate = () => { if (pageKey() !== lastKey) report(); };
  if (globalThis.navigation && typeof navigation.addEventListener === 'function') {
    navigation.addEventListener('navigatesuccess', onNavigate);
    navigation.addEventListener('currententrychange', onNavigate);
  }
  for (const ev of ['turbo:load', 'turbo:render', 'soft-nav:react-done', 'soft-nav:end', 'pjax:end']) document.addEventListener(ev, onNavigate);
  window.addEventListener('popstate', onNavigate);
  setInterval(onNavigate, 500);
  // A page hidden or blurred because it is going away (its tab closes, it is
  // left) says nothing: the worker hears that from Chrome (tabs.onRemoved,
  // tabs.onUpdated), and a report here would put a save in front of the
  // close's commit, on its critical path. So "hidden" and "blurred" go one task
  // later (a message-channel task: not throttled like a background timer), and
  // pagehide, which follows in the same task when the page is leaving, cancels them.
  let leavePending = false;
  const nextTask = new MessageChannel();
  nextTask.port1.onmessage = () => { if (leavePending) { leavePending = false; report(); } };
  const reportUnlessLeaving = () => { leavePending = true; nextTask.port2.postMessage(0); };
  const reportNow = () => { leavePending = false; report(); };
  document.addEventListener('visibilitychange', () => (document.visibilityState === 'hidden' ? reportUnlessLeaving() : reportNow()));
  window.addEventListener('focus', reportNow);
  window.addEventListener('blur', reportUnlessLeaving);
  window.addEventListener('pageshow', (e) => {
    if (!e.persisted) return;
    report(); // back/forward cache restore: this page lives again
    writeDropBox();
  });
  for (const ev of ['keydown', 'mousedown', 'scroll', 'mousemove']) window.addEventListener(ev, onInput, { passive: true, capture: true });

  const matches = (el, selector) => el instanceof Element && el.matches(selector);
  const closest = (el, selector) => (el instanceof Element ? el.closest(selector) : null);

  // ---- Classic Files view (and the Conversation tab's comment form).
  const CLASSIC_VERDICTS = { approve: 'approve', reject: 'request_changes', comment: 'comment' };
  let pendingComments = 0; // "Start a review" comments, published with the review
  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    let data;
    try { data = new FormData(form, e.submitter || undefined); } catch { data = new FormData(form); }
    const verdict = data.get(SELECTORS.classicVerdictName);
    if (verdict !== null) {
      activity({ type: 'review_submitted', verdict: CLASSIC_VERDICTS[verdict] || 'comment' });
      for (; pendingComments > 0; pendingComments--) activity({ type: 'comment_posted' });
      return;
    }
    if (!form.querySelector(SELECTORS.classicCommentBody)) return;
    const inline = matches(form, SELECTORS.classicInlineForm) || form.querySelector(SELECTORS.classicSingleComment);
    if (!inline || data.has('single_comment')) activity({ type: 'comment_posted' });
    else pendingComments++;
  }, true);
  document.addEventListener('change', (e) => {
    const box = e.target;
    if (box instanceof HTMLInputElement && matches(box, SELECTORS.classicViewed) && box.checked) {
      const header = closest(box, SELECTORS.classicFileHeader);
      activity({ type: 'file_viewed', path: header ? header.getAttribute('data-path') : null });
    }
  }, true);

  // ---- React Files view.
  function reactPath(file) {
    const code = file && file.querySelector(SELECTORS.reactFileName);
    const path = code ? code.textContent.replace(BIDI_MARKS, '').trim() : '';
    return path || null;
  }
  // Viewed: recorded once per not-viewed → viewed transition of a file, whether
  // React updates the button in place (attribute change) or renders a new one.
  const viewedState = new Map(); // file id -> aria-pressed last seen ('true' / 'false')
  function checkViewed(button, before) {
    const file = closest(button, SELECTORS.reactFile);
    if (!file || !button.isConnected) return;
    const now = button.getAttribute('aria-pressed');
    const was = before ?? viewedState.get(file.id);
    viewedState.set(file.id, now);
    if (now === 'true' && was === 'false') activity({ type: 'file_viewed', path: reactPath(file) });
  }
  function afterViewedClick(fileId) {
    for (const ms of [0, 50, 250, 1000, 3000]) {
      setTimeout(() => {
        const file = document.getElementById(fileId);
        const button = file && file.querySelector(SELECTORS.reactViewed);
        if (button) checkViewed(button);
      }, ms);
    }
  }

  // The review dialog and inline comment editors: what the user asked for is
  // recorded only once it was accepted — the element goes away (the dialog closes,
  // the editor unmounts) or its text box is emptied. A validation error keeps it
  // open and records nothing; closing it with Escape or Cancel withdraws the attempt.
  const attempts = new Map(); // element -> { record, until, shown, box }
  const hiddenNow = (el) => el.hidden || el.closest('[hidden]') !== null || el.getClientRects().length === 0;
  function attempt(element, record, { emptied = false } = {}) {
    const box = emptied ? element.querySelector('textarea') : null;
    attempts.set(element, {
      record,
      until: Date.now() + 15000,
      shown: !hiddenNow(element), // laid out as a box (not display: contents): its hiding means closed
      box: box && box.value.trim() ? box : null, // an editor's text box with text: emptied means saved
    });
    settleSoon();
  }
  function accepted(el, a) {
    if (!el.isConnected) return true;
    if (a.shown && hiddenNow(el)) return true;
    return a.box !== null && a.box.isConnected && a.box.value.trim() === '';
  }
  function settle() {
    for (const [el, a] of attempts) {
      if (accepted(el, a)) { attempts.delete(el); a.record(); } else if (Date.now() > a.until) attempts.delete(el);
    }
  }
  let settleTimer = null;
  function settleSoon() {
    if (settleTimer !== null) return;
    const tick = () => {
      settle();
      settleTimer = attempts.size ? setTimeout(tick, 100) : null;
    };
    settleTimer = setTimeout(tick, 0);
  }
  function withdraw(element) {
    for (const el of [...attempts.keys()]) if (el === element || el.contains(element) || element.contains(el)) attempts.delete(el);
  }

  function reviewVerdict(dialog) {
    const checked = dialog.querySelector('input[type="radio"]:checked');
    const words = checked ? `${checked.value} ${checked.labels && checked.labels[0] ? checked.labels[0].textContent : ''}`.toLowerCase() : '';
    if (/approve/.test(words)) return 'approve';
    if (/request|reject|changes/.test(words)) return 'request_changes';
    return 'comment';
  }
  function submitReview(dialog) {
    const verdict = reviewVerdict(dialog);
    attempt(dialog, () => {
      activity({ type: 'review_submitted', verdict });
      for (; pendingComments > 0; pendingComments--) activity({ type: 'comment_posted' });
    });
  }
  // An inline comment: "Comment" / "Add single comment" posts it; "Start a review" /
  // "Add review comment" leaves it pending until the review is submitted. Other
  // buttons of the editor (formatting, preview) are not a submission.
  const POST_WORDS = /^(comment|add single comment|add comment|reply)$/i;
  const PENDING_WORDS = /^(start a review|add review comment|add to review)$/i;
  function submitComment(editor, button) {
    const words = button ? (button.textContent || button.getAttribute('aria-label') || '').trim() : '';
    const pending = PENDING_WORDS.test(words);
    if (!pending && !POST_WORDS.test(words) && !(button && (button.type === 'submit' || button.dataset.variant === 'primary'))) return;
    attempt(editor, () => { if (pending) pendingComments++; else activity({ type: 'comment_posted' }); }, { emptied: true });
  }
  const primaryButton = (editor) => editor.querySelector('button[type="submit"], button[data-variant="primary"]');

  document.addEventListener('click', (e) => {
    const target = e.target instanceof Element ? e.target : null;
    if (!target) return;
    const viewed = closest(target, SELECTORS.reactViewed);
    if (viewed) {
      const file = closest(viewed, SELECTORS.reactFile);
      if (file && file.id) { viewedState.set(file.id, viewed.getAttribute('aria-pressed')); afterViewedClick(file.id); }
      return;
    }
    const submit = closest(target, SELECTORS.reactSubmitReview);
    const dialog = closest(target, SELECTORS.reactDialog);
    if (submit && dialog) { submitReview(dialog); return; }
    const editor = closest(target, SELECTORS.reactCommentEditor);
    const button = closest(target, 'button');
    if (editor && button) {
      if (/^\s*cancel\s*$/i.test(button.textContent)) withdraw(editor);
      else submitComment(editor, button);
      return;
    }
    if (dialog && button && !submit) withdraw(dialog); // Cancel / Close
  }, true);
  document.addEventListener('keydown', (e) => {
    const target = e.target instanceof Element ? e.target : null;
    if (!target) return;
    if (e.key === 'Escape') {
      const open = closest(target, `${SELECTORS.reactDialog}, ${SELECTORS.reactCommentEditor}`);
      if (open) withdraw(open);
      return;
    }
    if (e.key !== 'Enter' || !(e.ctrlKey || e.metaKey)) return;
    const dialog = closest(target, SELECTORS.reactDialog);
    if (dialog && dialog.querySelector(SELECTORS.reactSubmitReview)) { submitReview(dialog); return; }
    const editor = closest(target, SELECTORS.reactCommentEditor);
    if (editor) submitComment(editor, primaryButton(editor));
  }, true);

  // Attribute changes catch Viewed toggled without a click (keyboard shortcuts).
  try {
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === 'attributes' && matches(r.target, SELECTORS.reactViewed)) checkViewed(r.target, r.oldValue);
      }
      if (attempts.size) settle();
    }).observe(document.documentElement, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-pressed', 'hidden', 'open'], attributeOldValue: true });
  } catch { /* no observer: clicks still record Viewed, the settle timer still runs */ }

  // ---- Leaving the page.
  // The worker hands out a beacon only where a page-context request can arrive
  // (an https server with a public name, src/capability.rs), with this session's
  // capability alone; it is never counted on: the drop box is.
  window.addEventListener('pagehide', () => {
    leavePending = false; // leaving: Chrome tells the worker
    const now = Date.now();
    writeDropBox(now);
    if (!beacon.url) return;
    // text/plain needs no CORS preflight and no header. The worker computed the
    // end as of its last answer; bring its times up to now.
    beacon.bodies.forEach((body, i) => {
      if (i === 0) {
        try {
          const payload = JSON.parse(body);
          for (const s of payload.sessions) {
            // A progress record (another tab may still show the PR; the worker ends it).
            if (s.ended_at) {
              s.ended_at = Math.max(s.ended_at, now);
              s.wall_secs = Math.floor((s.ended_at - s.started_at) / 1000);
            }
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
