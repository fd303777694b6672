// The Weights page: one tensor's histogram (server-binned) + statistics, and the whole-model overview.
(function () {
  "use strict";
  const { api, showError, clearError, debounce, fmt, el } = window.ts;
  const panel = document.getElementById("hist-panel");
  const modelId = panel.dataset.model;
  const base = "/api/models/" + encodeURIComponent(modelId);
  const chart = document.getElementById("hist-chart");
  const select = document.getElementById("tensor-select");
  const binsInput = document.getElementById("bins");
  const logBox = document.getElementById("log-y");
  const overview = JSON.parse(document.getElementById("overview-data").textContent);
  let current = panel.dataset.selected || null;
  let last = null;
  let seq = 0;

  const STAT_ROWS = [
    ["numel", d => fmt(d.numel)], ["shape", d => "[" + d.shape.join(", ") + "]"], ["dtype", d => d.dtype],
    ["mean", d => fmt(d.stats.mean)], ["std", d => fmt(d.stats.std)],
    ["min", d => fmt(d.stats.min)], ["max", d => fmt(d.stats.max)],
    ["mean |x|", d => fmt(d.stats.mean_abs)], ["L2 norm", d => fmt(d.stats.l2)],
    ["zeros", d => fmt(d.stats.zeros) + (d.stats.zero_fraction === null ? "" : " (" + (100 * d.stats.zero_fraction).toPrecision(3) + "%)")],
    ["NaN", d => fmt(d.stats.nan)], ["Inf", d => fmt(d.stats.inf)],
  ];

  function renderStats(d) {
    const body = document.querySelector("#stats-table tbody");
    body.replaceChildren();
    for (const [label, f] of STAT_ROWS) {
      body.append(el("tr", { "data-stat": label }, el("th", { text: label }), el("td", { class: "num", text: f(d) })));
    }
    for (const [q, v] of Object.entries(d.stats.quantiles || {})) {
      body.append(el("tr", { "data-stat": q }, el("th", { text: q }), el("td", { class: "num", text: fmt(v) })));
    }
    document.getElementById("hist-note").textContent = d.sampled
      ? "Sampled: this tensor is large, so the bars come from a fixed-seed random sample; min, max, moments, zeros, NaN and Inf cover every element."
      : "Exact counts: bins are [left, right), the last one closed; NaN and Inf are counted above, not binned.";
  }

  async function drawHistogram(d) {
    const centers = [], widths = [], text = [];
    for (let i = 0; i < d.counts.length; i++) {
      centers.push((d.edges[i] + d.edges[i + 1]) / 2);
      widths.push(d.edges[i + 1] - d.edges[i]);
      text.push("[" + fmt(d.edges[i]) + ", " + fmt(d.edges[i + 1]) + (i === d.counts.length - 1 ? "]" : ")") + ": " + fmt(d.counts[i]));
    }
    const trace = { type: "bar", x: centers, y: d.counts, width: widths, marker: { color: "#2563eb" },
      hovertext: text, hoverinfo: "text", name: d.name };
    const layout = {
      margin: { t: 24, r: 12, b: 40, l: 56 }, bargap: 0,
      xaxis: { title: { text: "value" } },
      yaxis: { title: { text: "count" }, type: logBox.checked ? "log" : "linear" },
      title: { text: d.name + " · " + d.counts.length + " bins", font: { size: 13 } },
    };
    chart.dataset.ready = "0";
    await Plotly.react(chart, [trace], layout, { responsive: true, displaylogo: false });
    chart.dataset.bins = String(d.counts.length);
    chart.dataset.tensor = d.name;
    chart.dataset.ready = "1";
  }

  async function load() {
    if (!current) return;
    const bins = parseInt(binsInput.value, 10);
    const mySeq = ++seq;
    clearError("hist-error");
    try {
      const d = await api(base + "/histogram?tensor=" + encodeURIComponent(current) + "&bins=" + encodeURIComponent(isNaN(bins) ? binsInput.value : bins));
      if (mySeq !== seq) return;  // a newer request is on its way
      last = d;
      document.getElementById("hist-title").textContent = d.name;
      renderStats(d);
      await drawHistogram(d);
    } catch (err) {
      if (mySeq !== seq) return;
      showError("hist-error", err);
      chart.dataset.ready = "error";
    }
  }

  function syncUrl() {
    const url = new URL(window.location.href);
    url.searchParams.set("tensor", current);
    url.searchParams.set("bins", binsInput.value);
    history.replaceState(null, "", url);
  }

  select.addEventListener("change", () => { current = select.value; syncUrl(); load(); });
  binsInput.addEventListener("input", debounce(() => { syncUrl(); load(); }, 250));
  logBox.addEventListener("change", async () => {
    if (!last) return;
    chart.dataset.ready = "0";
    await Plotly.relayout(chart, { "yaxis.type": logBox.checked ? "log" : "linear" });
    chart.dataset.ready = "1";
  });

  // ------------------------------------------------------------- overview
  async function drawOverview() {
    const box = document.getElementById("overview-chart");
    const rows = overview.tensors.filter(r => r.stats !== null && r.stats.mean !== null);
    if (!rows.length) {
      showError("overview-error", new Error("no tensor of this model has values to summarise (meta device or uninitialized lazy modules)"));
      box.dataset.ready = "1";
      return;
    }
    const x = rows.map(r => r.index);
    const names = rows.map(r => r.name);
    const hover = rows.map(r => r.name + " (" + r.module_type + ")<br>mean " + fmt(r.stats.mean) + ", std " + fmt(r.stats.std) +
      "<br>min " + fmt(r.stats.min) + ", max " + fmt(r.stats.max) + "<br>zeros " + (100 * (r.stats.zero_fraction || 0)).toPrecision(3) + "%");
    const traces = [
      { type: "scatter", mode: "lines", x: x, y: rows.map(r => r.stats.max), name: "max", line: { color: "#9ca3af", dash: "dot" }, hoverinfo: "skip" },
      { type: "scatter", mode: "lines", x: x, y: rows.map(r => r.stats.min), name: "min", line: { color: "#9ca3af", dash: "dot" }, hoverinfo: "skip" },
      { type: "scatter", mode: "markers", x: x, y: rows.map(r => r.stats.mean), name: "mean ± std", customdata: names,
        error_y: { type: "data", array: rows.map(r => r.stats.std || 0), visible: true, color: "#2563eb" },
        marker: { color: rows.map(r => r.kind === "buffer" ? "#9333ea" : "#2563eb"), size: 8 },
        hovertext: hover, hoverinfo: "text" },
      { type: "bar", x: x, y: rows.map(r => r.stats.std), name: "std", yaxis: "y2", customdata: names,
        marker: { color: "rgba(238,76,44,0.35)" }, hovertext: hover, hoverinfo: "text" },
    ];
    const layout = {
      margin: { t: 16, r: 56, b: 120, l: 56 }, showlegend: true, legend: { orientation: "h", y: 1.08 },
      xaxis: { tickmode: "array", tickvals: x, ticktext: names, tickangle: -45, tickfont: { size: 9 } },
      yaxis: { title: { text: "value" } },
      yaxis2: { title: { text: "std" }, overlaying: "y", side: "right", rangemode: "tozero" },
    };
    await Plotly.newPlot(box, traces, layout, { responsive: true, displaylogo: false });
    box.on("plotly_click", ev => {
      const p = ev.points && ev.points[0];
      if (!p || !p.customdata) return;
      current = p.customdata;
      select.value = current;
      syncUrl();
      load();
      panel.scrollIntoView({ behavior: "instant", block: "start" });
    });
    box.dataset.ready = "1";
  }

  drawOverview().catch(err => showError("overview-error", err));
  if (current) load();
  else showError("hist-error", new Error("this model has no tensor with values to show"));
})();
