// Charts of a training run page. The status partial (#run-status) carries the chart data as a json_script block
// and is replaced every 2 s while the run is live; the canvases stay outside it, so each swap only feeds the
// existing charts new points instead of rebuilding them.
(function () {
  "use strict";

  var charts = {};

  function lineChart(key, canvas, datasets, scales) {
    var chart = charts[key];
    if (chart && chart.canvas === canvas) {
      datasets.forEach(function (set, index) { chart.data.datasets[index].data = set.data; });
      chart.update("none");
      return;
    }
    charts[key] = new window.Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: false },
        elements: { point: { radius: 2 } },
        scales: Object.assign({ x: { type: "linear", ticks: { precision: 0 },
                                      title: { display: true, text: canvas.dataset.xLabel } } }, scales)
      }
    });
  }

  function draw() {
    var source = document.getElementById("run-chart-data");
    if (!source || !window.Chart) { return; }
    var data = JSON.parse(source.textContent);
    var points = 0;
    var loss = document.getElementById("chart-loss");
    if (loss) {
      var stages = Object.keys(data.loss);
      lineChart("loss", loss, stages.map(function (stage) {
        points += data.loss[stage].length;
        return { label: loss.dataset["label" + stage.charAt(0).toUpperCase() + stage.slice(1)] || stage,
                 data: data.loss[stage] };
      }), {});
    }
    var dpo = document.getElementById("chart-dpo");
    if (dpo) {
      lineChart("dpo", dpo, [
        { label: dpo.dataset.labelAccuracies, data: data.dpo["rewards/accuracies"], yAxisID: "accuracy" },
        { label: dpo.dataset.labelMargins, data: data.dpo["rewards/margins"], yAxisID: "margin" }
      ], { accuracy: { position: "left", min: 0, max: 1 }, margin: { position: "right", grid: { drawOnChartArea: false } } });
    }
    var empty = document.getElementById("chart-empty");
    if (empty) { empty.hidden = points > 0; }
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSwap", draw);
})();
