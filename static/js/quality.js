// The admin's campaign quality page: pairs (bars) and agreement (line) per language pair. The numbers come from a
// json_script data block, never from inline code (the Content-Security-Policy runs no inline script).
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("quality-data");
    var canvas = document.getElementById("quality-chart");
    if (!window.Chart || !source || !canvas) { return; }
    var data = JSON.parse(source.textContent);
    if (!data.labels.length) { return; }
    new window.Chart(canvas, {
      data: { labels: data.labels, datasets: [
        { type: "bar", label: "pairs", data: data.pairs, yAxisID: "pairs" },
        { type: "line", label: "agreement (alpha)", data: data.agreement, yAxisID: "alpha" }
      ]},
      options: { scales: { pairs: { position: "left", beginAtZero: true }, alpha: { position: "right", min: -1, max: 1 } } }
    });
    canvas.dataset.drawn = "1";
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
