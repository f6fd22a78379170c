// Draw every server-built plotly figure on the page: <div class="chart" data-figure="ID"> + json_script ID.
(function () {
  "use strict";
  var config = {displaylogo: false, responsive: true,
                modeBarButtonsToRemove: ["lasso2d", "select2d", "autoScale2d", "toggleSpikelines"]};
  document.querySelectorAll(".chart[data-figure]").forEach(function (el) {
    var source = document.getElementById(el.dataset.figure);
    if (!source) { return; }
    var fig = JSON.parse(source.textContent);
    if (!fig.data || fig.data.length === 0) {
      el.classList.add("chart-empty");
      el.textContent = "No calls in this range.";
      return;
    }
    window.Plotly.newPlot(el, fig.data, fig.layout, config);
  });
})();
