// ReviewTime popup: sync state at a glance, the current review, and every
// failed sync with retry, discard and export. Live: the worker pushes changes.
const $ = (id) => document.getElementById(id);
const ask = (message) => chrome.runtime.sendMessage(message);

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} second${s === 1 ? '' : 's'} ago`;
  const m = Math.round(s / 60);
  return m < 60 ? `${m} minute${m === 1 ? '' : 's'} ago` : `${Math.round(m / 60)} h ago`;
}
const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const dur = (s) => (s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`);
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

const at = (ms) => (ms ? ` at ${clock(ms)}` : ' soon');
const capital = (text) => (text ? `${text[0].toUpperCase()}${text.slice(1)}` : '');
const sentence = (text) => (text ? `${text[0].toUpperCase()}${text.slice(1)}${/[.!?]$/.test(text) ? '' : '.'}` : '');

/** The sync state in words: [class, mark, headline, what it means and what to do]. */
function describe(st) {
  const waiting = `${plural(st.waiting, 'item')} waiting`;
  if (st.dead_letters > 0 && (st.state === 'all_synced' || st.state === 'syncing')) {
    const conflicts = st.conflicts ? ` ${st.conflicts === 1 ? 'One is a conflict' : `${st.conflicts} are conflicts`}: the server holds other content; export each to compare both versions.` : '';
    return ['dead', '✕', `${plural(st.dead_letters, 'failed sync')} need${st.dead_letters === 1 ? 's' : ''} your attention`, `${st.dead_letters === 1 ? 'It' : 'Each'} could not be delivered as it was. Retry, discard or export ${st.dead_letters === 1 ? 'it' : 'each'} below.${conflicts}`];
  }
  switch (st.state) {
    case 'all_synced': return ['ok', '✓✓', 'All synced', st.last_success_at ? `Last synced ${ago(st.last_success_at)}` : 'Nothing to sync yet'];
    case 'syncing': return ['syncing', '⟳', 'Syncing…', `${plural(st.waiting, 'item')} on the way`];
    case 'offline': return ['offline', '⚡', `Offline — ${waiting}`, 'The browser has no network. They will be sent when it is back; nothing is lost.'];
    case 'unreachable': return ['offline', '⚡', `Cannot reach the server — ${waiting}`,
      `${sentence(st.last_error)} Trying again${at(st.probe_at)}; nothing is lost.`];
    case 'not_api': return ['failing', '?', `The server address does not answer as ReviewTime — ${waiting}`,
      `${sentence(st.not_api)} Sign in to the network, or check the server address in Options. Nothing is lost or counted as failed; checking again${at(st.probe_at)}.`];
    case 'throttled': return ['syncing', '‖', `The server asked to wait until ${clock(st.hold_until)}`, `${capital(waiting)}; nothing is sent before then.`];
    case 'signed_out': return st.paired
      ? ['signed_out', '!', `The server refused the token${st.auth_refused ? ` (HTTP ${st.auth_refused})` : ''} — sending is paused`,
        `${capital(waiting)}. The token is checked again${at(st.probe_at)}, or now with Sync now. If it stays refused, paste the pairing link in Options again (the same one resumes).`]
      : ['signed_out', '!', 'Not paired with a server', 'Open Options and paste the pairing link your server printed.'];
    case 'failing': return ['failing', '⚠', `Server error, retrying${at(st.next_retry_at)}`, sentence(st.last_error)];
    default: return ['', '?', st.state, ''];
  }
}

function row(label, value) {
  const dt = document.createElement('dt'); dt.textContent = label;
  const dd = document.createElement('dd'); dd.textContent = value;
  return [dt, dd];
}

const ref = (pr) => (pr ? `${pr.owner}/${pr.repo}#${pr.number}` : 'a pull request');
const minute = (ms) => new Date(ms).toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
const VERDICTS = { approve: 'Approval', request_changes: 'Change request', comment: 'Review' };
const TABS = { conversation: 'Conversation', commits: 'Commits', checks: 'Checks', files: 'Files changed' };

/** One review action in a reviewer's words: "Comment on octo/widgets#408, 4:02 PM". */
function actionWords(a, prs) {
  const what = {
    comment_posted: 'Comment',
    review_submitted: VERDICTS[a.verdict] || 'Review',
    file_viewed: a.path ? `Viewed ${a.path}` : 'Viewed a file',
    tab_switched: `Opened ${TABS[a.tab] || 'a tab'}`,
  }[a.type] || 'Review action';
  return `${what} on ${ref(prs && prs[a.session_id])}, ${minute(a.at)}`;
}

/** What a failed sync holds, in a reviewer's words. */
function whatItWas(entry) {
  const p = entry.payload;
  if (p.session) { const r = p.session.record; return `${r.ended_at ? 'End of review' : 'Review in progress'} ${ref(r.pr)}`; }
  if (p.conflict) return `Conflict: review of ${ref(p.conflict.sent.pr)} — the server holds other times`;
  if (p.unreadable) return `Stored data that could not be read (${p.unreadable.key})`;
  const items = p.activities.items;
  if (items.length === 1) return actionWords(items[0], p.activities.prs);
  const shown = items.slice(0, 2).map((a) => actionWords(a, p.activities.prs)).join('; ');
  return `${items.length} review actions: ${shown}${items.length > 2 ? `; and ${items.length - 2} more` : ''}`;
}

function renderStatus(st) {
  lastStatus = st;
  const [cls, mark, words, hint] = describe(st);
  $('sync').className = cls;
  $('mark').textContent = mark;
  $('words').textContent = words;
  $('hint').textContent = hint;
  $('signIn').hidden = st.state !== 'signed_out';
  const d = $('details');
  d.replaceChildren(
    ...row('Items waiting', String(st.waiting)),
    ...row('Next retry', st.next_retry_at ? clock(st.next_retry_at) : '—'),
    ...(st.hold_until ? row('Paused until', clock(st.hold_until)) : []),
    ...row('Failed syncs', String(st.dead_letters)),
  );
  if (st.state === 'all_synced' || st.dead_letters || st.open_sessions.length) today();
  const open = st.open_sessions[0];
  $('review').hidden = !open;
  if (open) $('current').textContent = `${open.pr.owner}/${open.pr.repo}#${open.pr.number} — ${dur(open.wall_secs)} elapsed, ${dur(open.active_secs)} active`;
  $('evicted').hidden = !st.evicted && !st.refused_full;
  $('evicted').textContent = [
    st.evicted ? `${plural(st.evicted, 'older failed sync')} (${plural(st.evicted_items, 'item')}) dropped because the list is full.` : '',
    st.refused_full ? `${plural(st.refused_full, 'item')} not recorded because the sync queue is full.` : '',
  ].join(' ').trim();
}

let shownDead = null;
function renderDead(entries) {
  $('failed').hidden = entries.length === 0 && $('evicted').hidden;
  // Rebuild only on change: a list redrawn every second would steal keyboard focus and clicks.
  const signature = entries.map((e) => e.id).join(',');
  if (signature === shownDead) return;
  shownDead = signature;
  $('deadList').replaceChildren(...entries.map((e) => {
    const li = document.createElement('li');
    li.dataset.id = e.id;
    const what = document.createElement('div'); what.className = 'what'; what.textContent = whatItWas(e);
    const when = document.createElement('div'); when.className = 'muted';
    when.textContent = `Failed at ${new Date(e.failed_at).toLocaleString()}${e.status ? ` — HTTP ${e.status}` : ''} after ${plural(e.attempts, 'attempt')}`;
    const why = document.createElement('div'); why.className = 'why'; why.textContent = e.reason;
    const bar = document.createElement('div'); bar.className = 'bar';
    const label = whatItWas(e);
    bar.append(
      ...(e.payload.unreadable || e.payload.conflict ? [] : [button('Retry', `Retry: ${label}`, () => act({ type: 'retry_dead', id: e.id }, 'Sent back to the queue.'))]),
      button('Discard', `Discard: ${label}`, () => confirm(`Discard "${label}"? It will not reach the server.`) && act({ type: 'discard_dead', id: e.id }, 'Discarded.')),
      button('Export', `Export: ${label}`, () => download(`reviewtime-${e.id}.json`, JSON.stringify(e, null, 2))),
    );
    li.append(what, when, why, bar);
    return li;
  }));
}

function button(text, label, onClick) {
  const b = document.createElement('button');
  b.type = 'button'; b.textContent = text; b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

function download(name, text) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// Today's total comes from the server, which holds every finished review,
// plus what the review in progress gained since its last report.
let todayAsked = 0;
let lastStatus = null;
let serverToday = null;
function showToday() {
  if (serverToday === null) return;
  // The server has a review in progress as of its last report; add what it gained since.
  const unreported = (lastStatus ? lastStatus.open_sessions : []).reduce((n, o) => n + Math.max(0, o.active_secs - o.reported_active_secs), 0);
  $('today').textContent = `Today: ${dur(serverToday + unreported)} of active review`;
}
async function today() {
  showToday();
  if (Date.now() - todayAsked < 10000) return;
  todayAsked = Date.now();
  // The worker asks the server (GET /api/v1/totals through its transport);
  // no answer (unpaired, offline, asked to wait) leaves the line as it was.
  const answer = await ask({ type: 'today' }).catch(() => null);
  if (!answer || !answer.ok || answer.active_secs === null || answer.active_secs === undefined) return;
  serverToday = answer.active_secs;
  showToday();
}

async function act(message, done) {
  const answer = await ask(message);
  $('syncResult').textContent = answer && answer.ok ? done : `Failed: ${answer ? answer.error : 'no answer'}`;
  refresh();
}

async function refresh() {
  try {
    const answer = await ask({ type: 'dead_letters' });
    if (!answer || !answer.ok) throw new Error(answer ? answer.error : 'no answer from the background');
    renderStatus(answer.status);
    renderDead(answer.dead_letters);
  } catch (e) {
    $('words').textContent = `The background did not answer: ${e.message}`;
    $('sync').className = 'dead';
  }
}

$('syncNow').addEventListener('click', async () => {
  $('syncResult').textContent = 'Syncing…';
  const answer = await ask({ type: 'sync_now' });
  $('syncResult').textContent = answer && answer.ok ? 'Sync started.' : `Failed: ${answer ? answer.error : 'no answer'}`;
  refresh();
});
$('signIn').addEventListener('click', () => chrome.runtime.openOptionsPage());
$('retryAll').addEventListener('click', () => act({ type: 'retry_dead' }, 'All sent back to the queue.'));
$('discardAll').addEventListener('click', () => confirm('Discard every failed sync? They will not reach the server.') && act({ type: 'discard_dead' }, 'All discarded.'));
$('exportAll').addEventListener('click', async () => {
  const answer = await ask({ type: 'export_dead' });
  if (answer && answer.ok) download('reviewtime-failed-syncs.json', answer.export);
});
chrome.runtime.onMessage.addListener((m) => { if (m && m.type === 'status_changed') refresh(); });
chrome.storage.local.get('reviewtime.settings').then((s) => {
  const url = s['reviewtime.settings'] && s['reviewtime.settings'].server_url;
  $('dashboard').href = url ? `${url}/` : 'options.html';
});
refresh();
setInterval(refresh, 1000); // elapsed time and "N seconds ago" stay current
