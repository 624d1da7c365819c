// ReviewTime content script, the React recogniser: review actions in the
// React Files view (/pull/N/changes, github.com's default; docs/GITHUB.md).
// Runs after delivery.js and reports only through `__reviewtime.record(action)`.
//
// Rules:
// - Viewed: once per not-viewed → viewed transition of a file's Viewed button
//   (aria-pressed "false" → "true"), whether React updates the button in place,
//   renders a new one, or a keyboard shortcut toggles it; the path is the
//   file header's text without U+200E/U+200F marks.
// - What the user asks for in the review dialog or an inline comment editor
//   is an attempt, recorded only once accepted: the element goes away (the
//   dialog closes, the editor unmounts) or its text box is emptied, within
//   15 s. A validation error keeps it open and records nothing; Escape or
//   Cancel withdraws the attempt.
// - Review: the SubmitReviewButton clicked, or Ctrl/Cmd+Enter, inside the
//   dialog; its verdict from the checked radio's value and label
//   (approve / request changes or reject / anything else: comment).
// - Inline comment: "Comment" / "Add single comment" / "Add comment" / "Reply"
//   posts; "Start a review" / "Add review comment" / "Add to review" is pending
//   until the review is submitted; other editor buttons (formatting, preview)
//   are not a submission, unless it is the editor's submit or primary button.
// - Selectors match stable attributes and class-name prefixes (GitHub's
//   CSS-module suffixes change with every build); one that stops matching
//   loses only its own action.
(() => {
  const rt = globalThis.__reviewtime;
  if (!rt || !rt.first('react')) return; // injected twice: run once

  // refined-github PR #8777 and source/github-helpers/selectors.ts: each file
  // is a div whose id starts with "diff-"; its DiffFileHeader holds the path
  // as `[class*="file-name"] code`; Viewed is a toggle button with aria-pressed.
  // The review dialog is role=dialog, opened from the ReviewMenuButton (whose
  // click is not itself an action) and submitted by the SubmitReviewButton;
  // inline comments live in the AddCommentEditor, unmounted once saved.
  const SELECTORS = {
    file: 'div[id^="diff-"]',
    fileName: '[class*="DiffFileHeader"] [class*="file-name"] code, [class*="file-name"] code',
    viewed: 'button[class*="MarkAsViewedButton"]',
    dialog: 'div[role="dialog"]',
    submitReview: '[class*="SubmitReviewButton"]',
    commentEditor: '[class*="AddCommentEditor"]',
  };
  const BIDI_MARKS = /[\u200e\u200f]/g;
  const POST_WORDS = /^(comment|add single comment|add comment|reply)$/i;
  const PENDING_WORDS = /^(start a review|add review comment|add to review)$/i;
  const CANCEL_WORDS = /^\s*cancel\s*$/i;

  const matches = (el, selector) => el instanceof Element && el.matches(selector);
  const closest = (el, selector) => (el instanceof Element ? el.closest(selector) : null);

  // ---- Viewed.
  function filePath(file) {
    const code = file && file.querySelector(SELECTORS.fileName);
    const path = code ? code.textContent.replace(BIDI_MARKS, '').trim() : '';
    return path || null;
  }
  const viewedState = new Map(); // file id -> aria-pressed last seen ('true' / 'false')
  function checkViewed(button, before) {
    const file = closest(button, SELECTORS.file);
    if (!file || !button.isConnected) return;
    const now = button.getAttribute('aria-pressed');
    const was = before ?? viewedState.get(file.id);
    viewedState.set(file.id, now);
    if (now === 'true' && was === 'false') rt.record({ type: 'file_viewed', path: filePath(file) });
  }
  function afterViewedClick(fileId) {
    for (const ms of [0, 50, 250, 1000, 3000]) {
      setTimeout(() => {
        const file = document.getElementById(fileId);
        const button = file && file.querySelector(SELECTORS.viewed);
        if (button) checkViewed(button);
      }, ms);
    }
  }

  // ---- Attempts: attempt → accepted (checkAccepted) → recorded, or withdrawn.
  const attempts = new Map(); // element -> { onAccepted, until, shown, box }
  const hiddenNow = (el) => el.hidden || el.closest('[hidden]') !== null || el.getClientRects().length === 0;
  function attempt(element, onAccepted, { emptied = false } = {}) {
    const box = emptied ? element.querySelector('textarea') : null;
    attempts.set(element, {
      onAccepted,
      until: Date.now() + 15000,
      shown: !hiddenNow(element), // laid out as a box (not display: contents): its hiding means closed
      box: box && box.value.trim() ? box : null, // an editor's text box with text: emptied means saved
    });
    checkAcceptedSoon();
  }
  function accepted(el, a) {
    if (!el.isConnected) return true;
    if (a.shown && hiddenNow(el)) return true;
    return a.box !== null && a.box.isConnected && a.box.value.trim() === '';
  }
  function checkAccepted() {
    for (const [el, a] of attempts) {
      if (accepted(el, a)) { attempts.delete(el); a.onAccepted(); } else if (Date.now() > a.until) attempts.delete(el);
    }
  }
  let checkTimer = null;
  function checkAcceptedSoon() {
    if (checkTimer !== null) return;
    const tick = () => {
      checkAccepted();
      checkTimer = attempts.size ? setTimeout(tick, 100) : null;
    };
    checkTimer = setTimeout(tick, 0);
  }
  function withdraw(element) {
    for (const el of [...attempts.keys()]) if (el === element || el.contains(element) || element.contains(el)) attempts.delete(el);
  }

  // ---- Review and inline comments.
  function reviewVerdict(dialog) {
    const checked = dialog.querySelector('input[type="radio"]:checked');
    const words = checked ? `${checked.value} ${checked.labels && checked.labels[0] ? checked.labels[0].textContent : ''}`.toLowerCase() : '';
    if (/approve/.test(words)) return 'approve';
    if (/request|reject|changes/.test(words)) return 'request_changes';
    return 'comment';
  }
  function submitReview(dialog) {
    const verdict = reviewVerdict(dialog);
    attempt(dialog, () => rt.record({ type: 'review_submitted', verdict }));
  }
  function submitComment(editor, button) {
    const words = button ? (button.textContent || button.getAttribute('aria-label') || '').trim() : '';
    const pending = PENDING_WORDS.test(words);
    if (!pending && !POST_WORDS.test(words) && !(button && (button.type === 'submit' || button.dataset.variant === 'primary'))) return;
    attempt(editor, () => rt.record({ type: 'comment_posted' }, { pending }), { emptied: true });
  }
  const primaryButton = (editor) => editor.querySelector('button[type="submit"], button[data-variant="primary"]');

  document.addEventListener('click', (e) => {
    const target = e.target instanceof Element ? e.target : null;
    if (!target) return;
    const viewed = closest(target, SELECTORS.viewed);
    if (viewed) {
      const file = closest(viewed, SELECTORS.file);
      if (file && file.id) { viewedState.set(file.id, viewed.getAttribute('aria-pressed')); afterViewedClick(file.id); }
      return;
    }
    const submit = closest(target, SELECTORS.submitReview);
    const dialog = closest(target, SELECTORS.dialog);
    if (submit && dialog) { submitReview(dialog); return; }
    const editor = closest(target, SELECTORS.commentEditor);
    const button = closest(target, 'button');
    if (editor && button) {
      if (CANCEL_WORDS.test(button.textContent)) withdraw(editor);
      else submitComment(editor, button);
      return;
    }
    if (dialog && button && !submit) withdraw(dialog); // Cancel / Close
  }, true);
  document.addEventListener('keydown', (e) => {
    const target = e.target instanceof Element ? e.target : null;
    if (!target) return;
    if (e.key === 'Escape') {
      const open = closest(target, `${SELECTORS.dialog}, ${SELECTORS.commentEditor}`);
      if (open) withdraw(open);
      return;
    }
    if (e.key !== 'Enter' || !(e.ctrlKey || e.metaKey)) return;
    const dialog = closest(target, SELECTORS.dialog);
    if (dialog && dialog.querySelector(SELECTORS.submitReview)) { submitReview(dialog); return; }
    const editor = closest(target, SELECTORS.commentEditor);
    if (editor) submitComment(editor, primaryButton(editor));
  }, true);

  // Attribute changes catch Viewed toggled without a click (keyboard shortcuts);
  // any change may be an attempt's acceptance.
  try {
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === 'attributes' && matches(r.target, SELECTORS.viewed)) checkViewed(r.target, r.oldValue);
      }
      if (attempts.size) checkAccepted();
    }).observe(document.documentElement, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-pressed', 'hidden', 'open'], attributeOldValue: true });
  } catch { /* no observer: clicks still record Viewed, the check timer still runs */ }
})();
