// ReviewTime options: edits the settings the background validates and stores.
// Every rule is the worker's: it reads a pairing link (parse_pairing, by
// reviewtime_protocol::pairing), names the host permissions settings need
// (host_patterns, by src/settings.rs), validates and saves; this page asks.
const $ = (id) => document.getElementById(id);
const ask = (message) => chrome.runtime.sendMessage(message);

let pairingAsked = 0;
$('pairing').addEventListener('input', async () => {
  const link = $('pairing').value;
  const asked = ++pairingAsked;
  const answer = await ask({ type: 'parse_pairing', link });
  if (asked !== pairingAsked) return; // typed on since: the later answer speaks
  const p = answer && answer.ok ? answer.pairing : null;
  if (p) {
    $('server').value = p.server;
    $('token').value = p.token;
    $('beacon').value = p.beacon_key;
    $('result').textContent = 'Pairing link read: press Save.';
  } else if (link.trim()) {
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
  const answer = await ask({ type: 'get_settings' });
  if (!answer || !answer.ok) { $('result').textContent = answer ? answer.error : 'no answer'; return; }
  const s = answer.settings;
  $('server').value = s.server_url;
  $('token').value = s.token;
  $('beacon').value = s.beacon_key;
  $('hosts').value = s.tracked_hosts.join('\n');
  $('idle').value = s.idle_limit_minutes;
  // Opened from a pairing link (options.html#http://HOST/pair#token=...): fill it in.
  let fromHash = location.hash.slice(1);
  try { fromHash = decodeURIComponent(fromHash); } catch { /* not encoded: read as it is */ }
  const read = fromHash ? await ask({ type: 'parse_pairing', link: fromHash }) : null;
  if (read && read.ok && read.pairing) { $('pairing').value = fromHash; $('pairing').dispatchEvent(new Event('input')); }
}

$('form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const settings = current();
  // Enterprise hosts and a non-local server need host access, asked for now:
  // the Save click's user activation outlives the worker's answer (checked
  // end to end in tests/e2e/options.test.mjs).
  const needed = await ask({ type: 'host_patterns', settings });
  if (!needed || !needed.ok) { $('result').textContent = `Not saved: ${needed ? needed.error : 'no answer'}`; return; }
  if (needed.origins.length) {
    let granted = false;
    try { granted = await chrome.permissions.request({ origins: needed.origins }); } catch (e) { $('result').textContent = `Not saved: ${e.message}`; return; }
    if (!granted) { $('result').textContent = 'Not saved: ReviewTime needs access to those hosts to track pull requests and reach the server.'; return; }
  }
  const answer = await ask({ type: 'set_settings', settings });
  $('result').textContent = answer && answer.ok ? 'Saved.' : `Not saved: ${answer ? answer.error : 'no answer'}`;
});

$('test').addEventListener('click', async () => {
  $('result').textContent = 'Testing…';
  const answer = await ask({ type: 'test_connection', settings: current() });
  $('result').textContent = answer && answer.ok ? answer.message : `Error: ${answer ? answer.error : 'no answer'}`;
});

load();
