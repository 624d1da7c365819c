// ReviewTime popup: asks the background for its status and shows it.
const stateEl = document.getElementById('state');
const details = document.getElementById('details');

function row(label, value) {
  const dt = document.createElement('dt');
  dt.textContent = label;
  const dd = document.createElement('dd');
  dd.textContent = value;
  details.append(dt, dd);
}

async function refresh() {
  try {
    const answer = await chrome.runtime.sendMessage({ type: 'status' });
    if (!answer || !answer.ok) throw new Error(answer ? answer.error : 'no answer from the background');
    stateEl.textContent = 'Background running';
    stateEl.className = '';
    details.replaceChildren();
    row('Engine', answer.status.engine);
    row('Messages handled', String(answer.status.messages_handled));
  } catch (e) {
    stateEl.textContent = `The background did not answer: ${e.message}`;
    stateEl.className = 'err';
  }
}

refresh();
