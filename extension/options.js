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
  }
});

async function load() {
  const answer = await chrome.runtime.sendMessage({ type: 'get_settings' });
  if (!answer || !answer.ok) { $('result').textContent = answer ? answer.error : 'no answer'; return; }
  const s = answer.settings;
  $('server').value = s.server_url;
  $('token').value = s.token;
  $('beacon').value = s.beacon_key;
  $('hosts').value = s.tracked_hosts.join('\n');
  $('idle').value = s.idle_limit_minutes;
}

$('form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const hosts = $('hosts').value.split('\n').map((h) => h.trim()).filter(Boolean);
  const settings = {
    server_url: $('server').value, token: $('token').value, beacon_key: $('beacon').value,
    tracked_hosts: hosts, idle_limit_minutes: Number($('idle').value),
  };
  const answer = await chrome.runtime.sendMessage({ type: 'set_settings', settings });
  $('result').textContent = answer && answer.ok ? 'Saved.' : `Not saved: ${answer ? answer.error : 'no answer'}`;
});

load();
