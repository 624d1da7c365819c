// https://github.com itself, served locally: GitHub-like pull-request pages over
// https with a throw-away certificate, and the Chromium flags that send
// github.com to them and make that address count as public — so the shipped
// content script runs through the manifest's own `https://github.com/*` match,
// and a request from the page to the server on 127.0.0.1 meets the same
// mixed-content and Local Network Access rules as on a user's machine.
//
// The pages are written from public facts about GitHub's markup, with the source
// of each selector beside it:
// - classic Files view (/pull/N/files): refined-github source/github-helpers/selectors.ts
//   and source/features/* — `.file-header[data-path]`, `input.js-reviewed-checkbox[name=viewed]`,
//   the review form `#pull_requests_submit_review` with radios
//   `pull_request_review[event]` (comment / approve / reject) that may sit outside it
//   (form= attribute), inline `form.js-inline-comment-form` with `textarea[name="comment[body]"]`,
//   "Add single comment" `button[name=single_comment]` and "Start a review";
// - React Files view (/pull/N/changes; refined-github PR #8777, github-url-detection
//   isPRFiles): `div[id^="diff-"]` per file, `DiffFileHeader-module__*` header with the
//   path in `[class*="file-name"] code` between U+200E marks,
//   `button[class*="MarkAsViewedButton"]` with aria-pressed, the review dialog
//   (`div[role=dialog]`) opened by `ReviewMenuButton-module__*`, submitted by
//   `SubmitReviewButton-module__*` or Ctrl/Cmd+Enter, inline comments in
//   `AddCommentEditor-module__*`; React navigation dispatches soft-nav:start,
//   soft-nav:payload, soft-nav:react-done and soft-nav:end (refined-github
//   source/feature-manager.tsx), never turbo:*.
// Class-name suffixes are made up on purpose: the content script must match prefixes.
import https from 'node:https';
import { makeCertificate } from './certs.mjs';

const CSP = "default-src 'none'; base-uri 'self'; connect-src 'self'; form-action 'self'; img-src 'self' data:; script-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

const FILES = ['src/lib.rs', 'crates/core/src/engine.rs', 'README.md'];

function prParts(pathname) {
  const m = /^\/([^/]+)\/([^/]+)\/pull\/(\d+)(?:\/(\w+))?/.exec(pathname);
  return m && { owner: m[1], repo: m[2], number: Number(m[3]), tab: m[4] || '' };
}

// ---- The classic view: server-rendered pages, Turbo-style navigation.
const TURBO_JS = `
// A stand-in for Turbo: in-page navigation with pushState; forms are handled in-page.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-turbo-nav]');
  if (!a) return;
  e.preventDefault();
  history.pushState({}, '', a.getAttribute('href'));
  document.getElementById('title').textContent = location.pathname;
  document.dispatchEvent(new Event('turbo:render', { bubbles: true }));
  document.dispatchEvent(new Event('turbo:load', { bubbles: true }));
});
document.addEventListener('submit', (e) => {
  e.preventDefault();
  const form = e.target;
  if (form.matches('.js-inline-comment-form')) {
    const pending = !(e.submitter && e.submitter.name === 'single_comment');
    const li = document.createElement('li');
    li.className = pending ? 'review-comment pending' : 'review-comment';
    li.textContent = (pending ? 'Pending: ' : '') + form.querySelector('textarea').value;
    form.closest('.js-file').querySelector('.js-comments').append(li);
  }
});
`;

function classicFilesHtml(pr) {
  const files = FILES.map((p, i) => `
<div class="file js-file js-details-container" data-tagsearch-path="${p}">
  <div class="file-header d-flex js-file-header" data-path="${p}" data-anchor="diff-${i}a1b2c3">
    <span class="Truncate"><a title="${p}" class="Link--primary Truncate-text" href="#diff-${i}a1b2c3">${p}</a></span>
    <form class="js-toggle-user-reviewed-file-form" action="/${pr.owner}/${pr.repo}/pull/${pr.number}/file_review" method="post">
      <label class="js-reviewed-toggle"><input class="js-reviewed-checkbox" type="checkbox" name="viewed" value="viewed" id="viewed-${i}"> Viewed</label>
    </form>
  </div>
  <div class="js-file-content"><table class="diff-table"><tr><td class="blob-code">+ line</td></tr></table>
    <ul class="js-comments"></ul>
    <form class="js-inline-comment-form" id="inline-${i}" action="/${pr.owner}/${pr.repo}/pull/${pr.number}/review_comment/create" method="post">
      <textarea name="comment[body]">Needs a test</textarea>
      <button type="submit" class="btn" name="single_comment" value="1" id="single-${i}">Add single comment</button>
      <button type="submit" class="btn btn-primary js-start-review" id="start-review-${i}">Start a review</button>
    </form>
  </div>
</div>`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PR #${pr.number} files</title></head><body>
<h1 id="title">Pull request #${pr.number}</h1>
<nav class="tabnav-tabs">
  <a data-turbo-nav id="to-conversation" href="/${pr.owner}/${pr.repo}/pull/${pr.number}">Conversation</a>
  <a data-turbo-nav id="to-files" href="/${pr.owner}/${pr.repo}/pull/${pr.number}/files">Files changed</a>
  <a data-turbo-nav id="to-other-pr" href="/${pr.owner}/${pr.repo}/pull/${pr.number + 1}/files">Next PR</a>
</nav>
<div class="js-diff-progressive-container">${files}</div>
<div class="SelectMenu-modal pull-request-review-menu">
  <form id="pull_requests_submit_review" class="js-review-form" action="/${pr.owner}/${pr.repo}/pull/${pr.number}/reviews" method="post">
    <textarea name="pull_request_review[body]">Looks fine</textarea>
    <button type="submit" class="btn btn-primary" id="submit-review">Submit review</button>
  </form>
  <!-- The verdict radios sit outside the form, linked by form= (what form.querySelector misses). -->
  <div class="form-checkbox"><label><input type="radio" name="pull_request_review[event]" value="comment" form="pull_requests_submit_review" checked id="verdict-comment"> Comment</label></div>
  <div class="form-checkbox"><label><input type="radio" name="pull_request_review[event]" value="approve" form="pull_requests_submit_review" id="verdict-approve"> Approve</label></div>
  <div class="form-checkbox"><label><input type="radio" name="pull_request_review[event]" value="reject" form="pull_requests_submit_review" id="verdict-reject"> Request changes</label></div>
</div>
<script src="/assets/turbo.js"></script>
</body></html>`;
}

// ---- The React view: one client-rendered app for the PR's tabs.
const REACT_JS = `
const FILES = ${JSON.stringify(FILES)};
const LRM = '\\u200e';
const viewed = new Set();
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (v !== false && v !== undefined) e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children);
  return e;
};
const later = (ms) => new Promise((r) => setTimeout(r, ms)); // a request to GitHub's API

function route() {
  const m = /^\\/([^/]+)\\/([^/]+)\\/pull\\/(\\d+)(?:\\/(\\w+))?/.exec(location.pathname);
  return { owner: m[1], repo: m[2], number: Number(m[3]), tab: m[4] || '' };
}

// Viewed: file 0 is updated in place, the others are rendered anew (both happen in React).
function viewedButton(i) {
  return el('button', { type: 'button', class: 'MarkAsViewedButton-module__viewedButton--Xq3f1 prc-Button-ButtonBase-c50BI', 'aria-pressed': String(viewed.has(i)), id: 'viewed-' + i, on: { click: (e) => toggleViewed(i, e.currentTarget) } }, 'Viewed');
}
async function toggleViewed(i, button) {
  await later(30);
  if (viewed.has(i)) viewed.delete(i); else viewed.add(i);
  if (i === 0) button.setAttribute('aria-pressed', String(viewed.has(i)));
  else button.replaceWith(viewedButton(i));
}

function commentEditor(file, i) {
  const editor = el('div', { class: 'AddCommentEditor-module__editorContainer--pQ8aZ', id: 'editor-' + i },
    el('textarea', { 'aria-label': 'Markdown value', id: 'editor-text-' + i }),
    el('button', { type: 'button', class: 'prc-Button-ButtonBase-c50BI', 'aria-label': 'Bold' }, 'B'),
    el('button', { type: 'button', class: 'prc-Button-ButtonBase-c50BI', id: 'editor-cancel-' + i, on: { click: () => editor.remove() } }, 'Cancel'),
    el('button', { type: 'button', class: 'prc-Button-ButtonBase-c50BI', id: 'editor-start-' + i, on: { click: () => save(true) } }, 'Start a review'),
    el('button', { type: 'button', class: 'prc-Button-ButtonBase-c50BI', 'data-variant': 'primary', id: 'editor-comment-' + i, on: { click: () => save(false) } }, 'Comment'));
  async function save(pending) {
    const text = editor.querySelector('textarea').value;
    if (!text.trim()) return; // nothing to post: the editor stays
    await later(80);
    editor.replaceWith(el('div', { class: 'ReviewThread-module__thread--aa1' }, (pending ? 'Pending: ' : '') + text));
  }
  return editor;
}

function fileDiff(path, i) {
  const file = el('div', { id: 'diff-' + i + 'f00dbeef', class: 'Diff-module__diffTargetable--rV3kD' },
    el('div', { class: 'DiffFileHeader-module__diffHeaderWrapper--Zx8aL' },
      el('h3', { class: 'DiffFileHeader-module__file-name--t0tRq' }, el('a', { href: '#diff-' + i + 'f00dbeef', id: 'anchor-' + i }, el('code', {}, LRM + path + LRM))),
      viewedButton(i)),
    el('table', { class: 'DiffLines-module__tableLayoutFixed--k3' }, el('tr', {}, el('td', {}, '+ fn added() {}'),
      el('td', {}, el('button', { type: 'button', 'aria-label': 'Add a comment on line 1', id: 'add-comment-' + i, on: { click: () => { if (!document.getElementById('editor-' + i)) file.append(commentEditor(file, i)); } } }, '+')))));
  return file;
}

function reviewDialog() {
  const error = el('div', { role: 'alert', class: 'ReviewDialog-module__error--x1', hidden: true });
  const choice = (value, label, checked) => el('label', {}, el('input', { type: 'radio', name: 'review-event', value, id: 'review-' + value, checked }), ' ' + label);
  const dialog = el('div', { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'review-title', class: 'Overlay-module__overlay--mN2s1', id: 'review-dialog' },
    el('h2', { id: 'review-title' }, 'Finish your review'),
    el('textarea', { 'aria-label': 'Review summary', id: 'review-body' }),
    el('fieldset', {}, choice('comment', 'Comment', true), choice('approve', 'Approve', false), choice('reject', 'Request changes', false)),
    error,
    el('button', { type: 'button', class: 'prc-Button-ButtonBase-c50BI', id: 'review-cancel', on: { click: () => dialog.remove() } }, 'Cancel'),
    el('button', { type: 'button', class: 'SubmitReviewButton-module__submitReviewButton--R9o2P prc-Button-ButtonBase-c50BI', 'data-variant': 'primary', id: 'review-submit', on: { click: submit } }, 'Submit review'));
  dialog.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) submit(); if (e.key === 'Escape') dialog.remove(); });
  async function submit() {
    const event = dialog.querySelector('input[name="review-event"]:checked').value;
    const body = dialog.querySelector('#review-body').value.trim();
    // GitHub refuses a comment or change request without a body: the dialog stays open.
    if (event !== 'approve' && !body) { error.hidden = false; error.textContent = 'Review body is required'; return; }
    await later(100);
    dialog.remove();
    document.getElementById('review-state').textContent = 'Reviewed: ' + event;
  }
  return dialog;
}

function render() {
  const pr = route();
  const base = '/' + pr.owner + '/' + pr.repo + '/pull/' + pr.number;
  const tab = (id, href, label) => el('a', { id, href, 'data-soft-nav': true }, label);
  const root = document.getElementById('react-root');
  root.replaceChildren(
    el('h1', { id: 'title' }, 'Pull request #' + pr.number + (pr.tab ? ' — ' + pr.tab : '')),
    el('nav', { class: 'PullRequestTabs-module__tabs--a1' },
      tab('to-conversation', base, 'Conversation'), tab('to-commits', base + '/commits', 'Commits'),
      tab('to-changes', base + '/changes', 'Files changed'),
      tab('to-other-pr', '/' + pr.owner + '/' + pr.repo + '/pull/' + (pr.number + 1) + '/changes', 'Next PR'),
      tab('to-repo', '/' + pr.owner + '/' + pr.repo, 'Repository')),
    el('p', { id: 'review-state' }));
  if (pr.tab === 'changes') {
    root.append(el('button', { type: 'button', class: 'ReviewMenuButton-module__ReviewMenuButton--Ke5bA prc-Button-ButtonBase-c50BI', id: 'review-menu', on: { click: () => { if (!document.getElementById('review-dialog')) document.body.append(reviewDialog()); } } }, 'Submit review'));
    root.append(el('div', { class: 'DiffsList-module__list--q1' }, ...FILES.map(fileDiff)));
  }
}

// GitHub's React router: pushState, then soft-nav:* events (never turbo:*).
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-soft-nav]');
  if (!a) return;
  e.preventDefault();
  document.dispatchEvent(new Event('soft-nav:start'));
  history.pushState({}, '', a.getAttribute('href'));
  if (!/\\/pull\\/\\d+/.test(location.pathname)) { document.getElementById('react-root').replaceChildren(el('h1', {}, 'Repository')); }
  else render();
  document.dispatchEvent(new Event('soft-nav:payload'));
  document.dispatchEvent(new Event('soft-nav:react-done'));
  document.dispatchEvent(new Event('soft-nav:end'));
});
window.addEventListener('popstate', () => { if (/\\/pull\\/\\d+/.test(location.pathname)) render(); });
render();
`;

function reactHtml(pr) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>PR #${pr.number}</title></head><body>
<div id="react-root" data-target="react-app.reactRoot"></div>
<script src="/assets/react.js"></script>
</body></html>`;
}

function repoHtml() {
  return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Repository</title></head><body><h1>Repository</h1></body></html>';
}

/**
 * Starts the local https://github.com. `args` are the Chromium flags for it:
 * github.com resolves to this server; its certificate (and only it) is
 * accepted; its address counts as public. Local Network Access stays as Chrome
 * ships it. `classic` pages are the /files view, everything else under a PR the
 * React app.
 */
export async function startGitHub() {
  const { key, cert, spki } = makeCertificate(['github.com']);
  const requests = []; // every request the page server saw
  const server = https.createServer({ key, cert }, (req, res) => {
    const url = new URL(req.url, 'https://github.com');
    requests.push({ method: req.method, path: url.pathname, at: Date.now() });
    const send = (type, body, headers = {}) => { res.writeHead(200, { 'content-type': type, ...headers }); res.end(body); };
    if (url.pathname === '/assets/turbo.js') return send('text/javascript', TURBO_JS);
    if (url.pathname === '/assets/react.js') return send('text/javascript', REACT_JS);
    const pr = prParts(url.pathname);
    const html = (body) => send('text/html; charset=utf-8', body, { 'content-security-policy': CSP });
    if (!pr) {
      if (/^\/[^/]+\/[^/]+\/?$/.test(url.pathname)) return html(repoHtml());
      res.writeHead(404); res.end(); return;
    }
    return html(pr.tab === 'files' ? classicFilesHtml(pr) : reactHtml(pr));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    origin: 'https://github.com',
    tracked: '', // github.com is built in: no tracked host, no dynamic content script
    port,
    requests,
    args: [
      `--host-resolver-rules=MAP github.com 127.0.0.1:${port}`,
      `--ignore-certificate-errors-spki-list=${spki}`,
      `--ip-address-space-overrides=127.0.0.1:${port}=public`,
    ],
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}
