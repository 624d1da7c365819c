// ReviewTime content script: runs on github.com and on the hosts the user adds.
// It announces the page to the background and shows, on the document element,
// that the Rust background answered (data-reviewtime).
(() => {
  if (globalThis.__reviewtimeLoaded) return; // registered twice (static + dynamic): run once
  globalThis.__reviewtimeLoaded = true;
  chrome.runtime.sendMessage({ type: 'hello', url: location.href }).then((answer) => {
    if (answer && answer.ok === true) {
      document.documentElement.dataset.reviewtime = `${answer.from}:${answer.status.messages_handled}`;
    } else {
      document.documentElement.dataset.reviewtime = `error:${answer && answer.error}`;
    }
  }).catch((e) => { document.documentElement.dataset.reviewtime = `error:${e.message}`; });
})();
