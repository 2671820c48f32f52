// The export's admin page while the export is queued or running: fetch the page again every few seconds and swap
// #export-live in place (the admin has no htmx), until the status is final; then say so in a polite live region.
(function () {
  "use strict";

  var LIVE = ["queued", "running"];

  function poll() {
    var live = document.getElementById("export-live");
    if (!live || LIVE.indexOf(live.dataset.exportStatus) < 0) { return; }
    var seconds = Number(live.dataset.pollSeconds) || 3;
    window.setTimeout(function () {
      window.fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("export-live");
          if (!fresh) { return; }
          var changed = fresh.dataset.exportStatus !== live.dataset.exportStatus;
          live.innerHTML = fresh.innerHTML;
          live.dataset.exportStatus = fresh.dataset.exportStatus;
          live.dataset.statusLabel = fresh.dataset.statusLabel;
          var announce = document.getElementById("export-announce");
          if (changed && announce) { announce.textContent = fresh.dataset.statusLabel; }
        })
        .catch(function () { /* offline or the server restarting: try again at the next tick */ })
        .then(poll);
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", poll);
})();
