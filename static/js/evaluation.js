// Evaluation charts: one bar chart per benchmark, languages along the axis, one bar per metric.
// The data comes from a <script type="application/json"> that Django's json_script wrote (never from inline code),
// so model outputs or language names can never run as script. The table beside each chart has the same numbers.
(function () {
  "use strict";

  var COLOURS = ["#2457c5", "#c2410c", "#15803d", "#7c3aed", "#0e7490", "#be185d"];

  function draw(canvas) {
    if (!window.Chart || canvas.dataset.drawn) { return; }
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) { return; }
    var data = JSON.parse(source.textContent);
    if (!data.labels.length) { return; }
    canvas.dataset.drawn = "1";
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map(function (set, index) {
          return { label: set.label, data: set.data, backgroundColor: COLOURS[index % COLOURS.length] };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: { y: { beginAtZero: true, suggestedMax: 100 } }
      }
    });
  }

  function drawAll(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
})();
