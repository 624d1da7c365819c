// ReviewTime content script, the classic recogniser: review actions in the
// classic Files view (/pull/N/files, GitHub Enterprise Server,
// ?new_files_changed=false) and the Conversation tab's comment form
// (docs/GITHUB.md). Runs after delivery.js and reports only through
// `__reviewtime.record(action)`.
//
// Rules:
// - Viewed: the `change` of a Viewed checkbox that becomes checked; the path
//   from the enclosing file header's `data-path`.
// - Review: the `submit` of a form whose FormData (with its submitter) holds a
//   verdict radio; the radios may sit outside the form (form= attribute).
//   Verdicts: approve → approve, reject → request_changes, anything else → comment.
// - Comment: the `submit` of a form with a comment body. In an inline form
//   only "Add single comment" (the `single_comment` submitter) posts at once;
//   "Start a review" / "Add review comment" leaves it pending, published with
//   the review. Any other comment form posts at once.
// - Selectors match stable attributes; one that stops matching loses only its
//   own action.
(() => {
  const rt = globalThis.__reviewtime;
  if (!rt || !rt.first('classic')) return; // injected twice: run once

  // The verdict radios' values, in the protocol's words.
  const VERDICTS = { approve: 'approve', reject: 'request_changes', comment: 'comment' };

  // refined-github source/github-helpers/selectors.ts and source/features/*
  // (e.g. mark-as-viewed helpers): the Viewed checkbox is
  // `input.js-reviewed-checkbox` named "viewed" inside the file header, which
  // carries the path in `data-path`.
  const SELECTORS = {
    viewed: 'input.js-reviewed-checkbox[name="viewed"], input[type="checkbox"][name="viewed"]',
    fileHeader: '[data-path]',
    // The review form's verdict radios (values comment / approve / reject).
    verdictName: 'pull_request_review[event]',
    // Inline comment forms: "Add single comment" is button[name=single_comment].
    commentBody: 'textarea[name="comment[body]"]',
    singleComment: 'button[name="single_comment"]',
    inlineForm: 'form.js-inline-comment-form',
  };

  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    let data;
    try { data = new FormData(form, e.submitter || undefined); } catch { data = new FormData(form); }
    const verdict = data.get(SELECTORS.verdictName);
    if (verdict !== null) {
      rt.record({ type: 'review_submitted', verdict: VERDICTS[verdict] || 'comment' });
      return;
    }
    if (!form.querySelector(SELECTORS.commentBody)) return;
    const inline = form.matches(SELECTORS.inlineForm) || form.querySelector(SELECTORS.singleComment);
    rt.record({ type: 'comment_posted' }, { pending: Boolean(inline) && !data.has('single_comment') });
  }, true);

  document.addEventListener('change', (e) => {
    const box = e.target;
    if (box instanceof HTMLInputElement && box.matches(SELECTORS.viewed) && box.checked) {
      const header = box.closest(SELECTORS.fileHeader);
      rt.record({ type: 'file_viewed', path: header ? header.getAttribute('data-path') : null });
    }
  }, true);
})();
