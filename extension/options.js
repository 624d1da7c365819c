// ReviewTime options: edits the settings the background validates and stores.
const $ = (id) => document.getElementById(id);

function fromPairing(link) {
  const m = /^(https?:\/\/[^#]+?)\/pair#(.*)$/.exec(link.trim());
  if (!m) return null;
  const params = new URLSearchParams(m[2]);
  return { server: m[1], token: params.get('token'), beacon: params.get('beacon') };
}

$('pairing').addEventListener('input', () => {
  const p = fromPairing($('pairing').value);
  if (p && p.token && p.beacon) {
    $('server').value = p.server;
    $('token').value = p.token;
    $('beacon').value = p.beacon;
    $('result').textContent = 'Pairing link read: press Save.';
  } else if ($('pairing').value.trim()) {
    $('result').textContent = 'That is not a pairing link: it looks like http://HOST:PORT/pair#token=…&beacon=…';
  }
});

function current() {
  return {
    server_url: $('server').value, token: $('token').value, beacon_key: $('beacon').value,
    tracked_hosts: $('hosts').value.split('\n').map((h) => h.trim()).filter(Boolean),
    idle_limit_minutes: Number($('idle').value),
  };
}

async function load() {
  const answer = await chrome.runtime.sendMessage({ type: 'get_settings' });
  if (!answer || !answer.ok) { $('result').textContent = answer ? answer.error : 'no answer'; return; }
  const s = answer.settings;
  $('server').value = s.server_url;
  $('token').value = s.token;
  $('beacon').value = s.beacon_key;
  $('hosts').value = s.tracked_hosts.join('\n');
  $('idle').value = s.idle_limit_minutes;
  // Opened from a pairing link (options.html#http://HOST/pair#token=...): fill it in.
  const fromHash = decodeURIComponent(location.hash.slice(1));
  if (fromPairing(fromHash)) { $('pairing').value = fromHash; $('pairing').dispatchEvent(new Event('input')); }
}

$('form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const settings = current();
  // Enterprise hosts and a non-local server need host access, asked for now (the click is the user gesture).
  const origins = [...settings.tracked_hosts, settings.server_url].filter(Boolean).map((o) => {
    try { const u = new URL(o); return `${u.protocol}//${u.hostname}/*`; } catch { return null; }
  }).filter(Boolean);
  if (origins.length) {
    let granted = false;
    try { granted = await chrome.permissions.request({ origins }); } catch (e) { $('result').textContent = `Not saved: ${e.message}`; return; }
    if (!granted) { $('result').textContent = 'Not saved: ReviewTime needs access to those hosts to track pull requests and reach the server.'; return; }
  }
  const answer = await chrome.runtime.sendMessage({ type: 'set_settings', settings });
  $('result').textContent = answer && answer.ok ? 'Saved.' : `Not saved: ${answer ? answer.error : 'no answer'}`;
});

$('test').addEventListener('click', async () => {
  $('result').textContent = 'Testing…';
  const answer = await chrome.runtime.sendMessage({ type: 'test_connection', settings: current() });
  $('result').textContent = answer && answer.ok ? answer.message : `Error: ${answer ? answer.error : 'no answer'}`;
});

load();
