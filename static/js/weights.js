// The Weights page: one tensor's histogram (server-binned) + statistics, a searchable tensor picker, and the
// whole-model overview in server-made buckets (zoom in to see single tensors). Nothing per tensor is in the HTML:
// everything is fetched, so the page is as fast for 50,000 tensors as for 10.
(function () {
  "use strict";
  const { api, showError, clearError, debounce, fmt, el, plotly, niceTicks } = window.ts;
  const panel = document.getElementById("hist-panel");
  const modelId = panel.dataset.model;
  const base = "/api/models/" + encodeURIComponent(modelId);
  const chart = document.getElementById("hist-chart");
  const search = document.getElementById("tensor-search");
  const list = document.getElementById("tensor-list");
  const binsInput = document.getElementById("bins");
  const logBox = document.getElementById("log-y");
  const ovBox = document.getElementById("overview-chart");
  const ovInfo = document.getElementById("overview-info");
  const ovAll = document.getElementById("overview-all");
  const MAX_BINS = parseInt(binsInput.max, 10);
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
      yaxis: { title: { text: "count (elements)" }, type: logBox.checked ? "log" : "linear" },
      title: { text: d.name + " · " + d.counts.length + " bins", font: { size: 13 } },
    };
    const Plotly = await plotly();
    chart.dataset.ready = "0";
    await Plotly.react(chart, [trace], layout, { responsive: true, displaylogo: false });
    chart.dataset.bins = String(d.counts.length);
    chart.dataset.tensor = d.name;
    chart.dataset.ready = "1";
  }

  // "2.5" or "1e3" is not a bin count: say so instead of quietly drawing 2 bins.
  function readBins() {
    const text = binsInput.value.trim();
    const n = /^\d+$/.test(text) ? parseInt(text, 10) : NaN;
    if (isNaN(n) || n < 1 || n > MAX_BINS) {
      binsInput.setAttribute("aria-invalid", "true");
      const what = binsInput.validity.badInput ? "that" : text === "" ? "an empty box" : JSON.stringify(text);
      throw new Error("bins must be a whole number from 1 to " + MAX_BINS + ", not " + what);
    }
    binsInput.removeAttribute("aria-invalid");
    return n;
  }

  async function load() {
    if (!current) return;
    const mySeq = ++seq;
    clearError("hist-error");
    let bins;
    try { bins = readBins(); } catch (err) {
      showError("hist-error", err);
      chart.dataset.ready = "invalid";
      return;
    }
    syncUrl();
    try {
      const d = await api(base + "/histogram?tensor=" + encodeURIComponent(current) + "&bins=" + bins);
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

  // tensor, bins and the log axis live in the URL: a reload or a shared link shows the same view.
  function syncUrl() {
    const url = new URL(window.location.href);
    if (current) url.searchParams.set("tensor", current);
    url.searchParams.set("bins", binsInput.value);
    if (logBox.checked) url.searchParams.set("log", "1"); else url.searchParams.delete("log");
    history.replaceState(null, "", url);
  }

  function open(name) {
    current = name;
    search.value = name;
    document.getElementById("hist-title").textContent = name;
    load();
  }

  binsInput.addEventListener("input", debounce(load, 250));
  logBox.addEventListener("change", async () => {
    syncUrl();
    if (!last) return;
    const Plotly = await plotly();
    chart.dataset.ready = "0";
    await Plotly.relayout(chart, { "yaxis.type": logBox.checked ? "log" : "linear" });
    chart.dataset.ready = "1";
  });

  // ------------------------------------------------------------- picker (server-side search)
  let active = -1, items = [], searchSeq = 0;

  function shapeText(r) { return r.shape === null ? "uninitialized" : (r.shape.join("×") || "scalar"); }

  function renderList(d) {
    items = d.items;
    active = items.findIndex(r => r.summarised);
    list.replaceChildren();
    items.forEach((r, i) => {
      const li = el("li", { role: "option", id: "tensor-opt-" + i, "data-name": r.name, "aria-disabled": r.summarised ? null : "true",
        class: (r.summarised ? "" : "disabled ") + (i === active ? "active" : "") },
        el("code", { text: r.name }),
        r.aliases.length ? el("span", { class: "muted", text: " = " + r.aliases.join(", ") }) : null,
        el("span", { class: "muted meta", text: " " + shapeText(r) + " " + r.dtype + " · " + r.module_type + (r.kind === "buffer" ? " buffer" : "") }),
        r.note ? el("div", { class: "muted small", text: r.note }) : null);
      li.addEventListener("mousedown", ev => { ev.preventDefault(); if (r.summarised) choose(r.name); });
      list.append(li);
    });
    const more = d.total - items.length;
    if (!items.length) list.append(el("li", { class: "muted empty", text: "no tensor matches " + JSON.stringify(d.q) }));
    else if (more > 0) list.append(el("li", { class: "muted more", text: fmt(d.total) + " matches: showing the first " + items.length + ", type more to narrow" }));
    list.hidden = false;
    list.dataset.total = String(d.total);
    search.setAttribute("aria-expanded", "true");
    setActive(active);
  }

  function setActive(i) {
    list.querySelectorAll("li[role=option]").forEach((li, j) => li.classList.toggle("active", i === j));
    active = i;
    if (i >= 0) { search.setAttribute("aria-activedescendant", "tensor-opt-" + i); list.children[i].scrollIntoView({ block: "nearest" }); }
    else search.removeAttribute("aria-activedescendant");
  }

  async function runSearch() {
    const q = search.value === current ? "" : search.value;
    const mySeq = ++searchSeq;
    try {
      const d = await api(base + "/tensors?limit=50&q=" + encodeURIComponent(q));
      if (mySeq === searchSeq && document.activeElement === search) renderList(d);
    } catch (err) { showError("hist-error", err); }
  }

  function closeList() {
    list.hidden = true;
    search.setAttribute("aria-expanded", "false");
    search.removeAttribute("aria-activedescendant");
  }

  function choose(name) {
    closeList();
    search.blur();
    open(name);
  }

  search.addEventListener("focus", () => { search.select(); runSearch(); });
  search.addEventListener("input", debounce(runSearch, 120));
  search.addEventListener("blur", () => { closeList(); if (current) search.value = current; });
  search.addEventListener("keydown", ev => {
    const step = ev.key === "ArrowDown" ? 1 : ev.key === "ArrowUp" ? -1 : 0;
    if (step && items.length) {
      ev.preventDefault();
      let i = active;
      for (let k = 0; k < items.length; k++) {
        i = (i + step + items.length) % items.length;
        if (items[i].summarised) break;
      }
      setActive(i);
    } else if (ev.key === "Enter") {
      ev.preventDefault();
      if (active >= 0 && items[active] && items[active].summarised) choose(items[active].name);
    } else if (ev.key === "Escape") {
      search.blur();
    }
  });

  // ------------------------------------------------------------- overview
  let view = null;        // the last overview answer
  let drawn = false;
  let ovSeq = 0;

  function bucketHover(b, i, kind) {
    const s = b[kind];
    const single = b.name[i];
    const head = single ? single : b.label[i] + " (" + fmt(b.stop[i] - b.start[i]) + " tensors, #" + fmt(b.start[i]) + "–" + fmt(b.stop[i] - 1) + ")";
    const lines = [head, (kind === "buffers" ? "buffer" : "parameter") + (single ? "" : "s: " + fmt(s.tensors[i]) + " tensors, " + fmt(s.numel[i]) + " values"),
      "mean " + fmt(s.mean[i]) + ", std " + fmt(s.std[i]), "min " + fmt(s.min[i]) + ", max " + fmt(s.max[i]),
      "zeros " + (s.zero_fraction[i] === null ? "—" : (100 * s.zero_fraction[i]).toPrecision(3) + "%")];
    if (!single && s.std_lo[i] !== null) lines.push("per-tensor std from " + fmt(s.std_lo[i]) + " to " + fmt(s.std_hi[i]));
    lines.push(single ? "click: open its histogram" : "click: zoom in");
    return lines.join("<br>");
  }

  function bucketsAt(v) {
    const b = v.buckets;
    const n = b.start.length;
    const rows = [];
    for (let i = 0; i < n; i++) rows.push({ i, x: (b.start[i] + b.stop[i] - 1) / 2, w: b.stop[i] - b.start[i] });
    return { b, rows };
  }

  async function drawOverview(v) {
    const { b, rows } = bucketsAt(v);
    const named = rows.map(r => ({ label: b.label[r.i], name: b.name[r.i], start: b.start[r.i], stop: b.stop[r.i] }));
    const traces = [];
    const kinds = [["parameters", "#2563eb", "parameters: mean ± std"], ["buffers", "#9333ea", "buffers: mean ± std"]];
    const P = b.parameters;
    const hasParams = P.mean.some(m => m !== null);
    if (hasParams) {
      traces.push({ type: "scatter", mode: "lines", x: rows.map(r => r.x), y: rows.map(r => P.max[r.i]), name: "parameters: min / max",
        legendgroup: "range", line: { color: "#9ca3af", dash: "dot", width: 1 }, hoverinfo: "skip", connectgaps: false });
      traces.push({ type: "scatter", mode: "lines", x: rows.map(r => r.x), y: rows.map(r => P.min[r.i]), name: "parameters: min / max",
        legendgroup: "range", showlegend: false, line: { color: "#9ca3af", dash: "dot", width: 1 }, hoverinfo: "skip", connectgaps: false });
    }
    for (const [kind, color, label] of kinds) {
      const s = b[kind];
      const idx = rows.filter(r => s.mean[r.i] !== null);
      if (!idx.length) continue;
      traces.push({ type: "scatter", mode: "markers", name: label, meta: kind,
        x: idx.map(r => r.x), y: idx.map(r => s.mean[r.i]), customdata: idx.map(r => named[r.i]),
        error_y: { type: "data", array: idx.map(r => s.std[r.i] || 0), visible: true, color: color, thickness: 1 },
        marker: { color: color, size: rows.length > 150 ? 5 : 8, symbol: kind === "buffers" ? "diamond" : "circle" },
        hovertext: idx.map(r => bucketHover(b, r.i, kind)), hoverinfo: "text" });
    }
    const stdIdx = rows.filter(r => P.std[r.i] !== null);
    const stdMax = Math.max(0, ...stdIdx.map(r => P.std[r.i]));
    if (stdIdx.length) {
      traces.push({ type: "bar", name: "parameters: std (right axis)", yaxis: "y2", meta: "std",
        x: stdIdx.map(r => r.x), y: stdIdx.map(r => P.std[r.i]), width: stdIdx.map(r => Math.max(0.6, r.w * 0.9)),
        customdata: stdIdx.map(r => named[r.i]), marker: { color: "rgba(238,76,44,0.30)" },
        hovertext: stdIdx.map(r => bucketHover(b, r.i, "parameters")), hoverinfo: "text" });
    }
    const y2 = niceTicks(stdMax, 4);
    const layout = {
      margin: { t: 8, r: 64, b: 110, l: 64 }, showlegend: true, legend: { orientation: "h", y: 1.12 },
      hovermode: "closest", dragmode: "zoom", bargap: 0,
      xaxis: { tickmode: "array", tickvals: v.ticks.x, ticktext: v.ticks.label.map(shortLabel), tickangle: -35,
        tickfont: { size: 10 }, range: [v.start - 0.5, v.stop - 0.5], autorange: false, showgrid: false,
        title: { text: "tensors in depth order (named_modules), " + groupingText(v), font: { size: 11 } } },
      yaxis: { title: { text: "value" }, zeroline: true },
      yaxis2: { title: { text: "std" }, overlaying: "y", side: "right", showgrid: false, zeroline: false,
        tickmode: "linear", tick0: y2.tick0, dtick: y2.dtick, range: y2.range, fixedrange: true },
    };
    const Plotly = await plotly();
    ovBox.dataset.ready = "0";
    await Plotly.react(ovBox, traces, layout, { responsive: true, displaylogo: false, doubleClick: "autosize" });
    if (!drawn) {
      drawn = true;
      ovBox.on("plotly_click", ev => {
        const p = ev.points && ev.points[0];
        const c = p && p.customdata;
        if (!c) return;
        if (c.name) {
          open(c.name);
          panel.scrollIntoView({ behavior: "instant", block: "start" });
        } else {
          fetchOverview(c.start, c.stop);
        }
      });
      ovBox.on("plotly_relayout", ev => {
        if (ev["xaxis.autorange"] || ev["xaxis.range"] === undefined && ev["xaxis.range[0]"] === undefined) {
          if (ev["xaxis.autorange"] && view && (view.start > 0 || view.stop < view.total)) fetchOverview(0, view.total);
          return;
        }
        const r0 = ev["xaxis.range[0]"] !== undefined ? ev["xaxis.range[0]"] : ev["xaxis.range"][0];
        const r1 = ev["xaxis.range[1]"] !== undefined ? ev["xaxis.range[1]"] : ev["xaxis.range"][1];
        const start = Math.max(0, Math.ceil(r0));
        const stop = Math.min(view.total, Math.floor(r1) + 1);
        if (stop > start && (start !== view.start || stop !== view.stop)) fetchOverview(start, stop);
      });
    }
    ovBox.dataset.start = String(v.start);
    ovBox.dataset.stop = String(v.stop);
    ovBox.dataset.grouping = v.grouping;
    ovBox.dataset.ready = "1";
  }

  // Labels are module paths; keep the last parts so they stay short.
  function shortLabel(s) { return s.length > 28 ? "…" + s.slice(-27) : s; }

  function groupingText(v) {
    if (v.grouping === "tensor") return "one point per tensor";
    if (v.grouping === "module") return "one point per module at depth " + v.depth;
    if (v.grouping === "range") return "one point per run of consecutive tensors";
    return "one point per run of modules at depth " + v.depth;
  }

  function infoText(v) {
    const n = v.buckets ? v.buckets.start.length : 0;
    let text = v.start === 0 && v.stop === v.total
      ? fmt(v.total) + " tensors"
      : "tensors " + fmt(v.start) + "–" + fmt(v.stop - 1) + " of " + fmt(v.total);
    text += v.grouping === "tensor" ? ", one point each" : ", in " + fmt(n) + " groups (" + groupingText(v) + ")";
    text += ". Drag across the chart to zoom in";
    text += v.grouping === "tensor" ? "; click a point to open its histogram." : " (a group opens into its tensors when few enough); click a point to zoom into it.";
    const skipped = Object.entries(v.not_summarised);
    if (skipped.length) text += " Not summarised: " + skipped.map(([why, k]) => fmt(k) + " (" + why + ")").join("; ") + ".";
    return text;
  }

  async function fetchOverview(start, stop) {
    const mySeq = ++ovSeq;
    const width = ovBox.clientWidth || 1000;
    const params = new URLSearchParams({
      max_points: String(Math.max(20, Math.min(400, Math.floor(width / 5)))),
      max_labels: String(Math.max(4, Math.floor(width / 70))),
    });
    if (start !== undefined) { params.set("start", String(start)); params.set("stop", String(stop)); }
    clearError("overview-error");
    try {
      const v = await api(base + "/overview?" + params);
      if (mySeq !== ovSeq) return null;
      view = v;
      ovInfo.textContent = infoText(v);
      ovAll.hidden = v.start === 0 && v.stop === v.total;
      if (!v.buckets || v.summarised === 0) {
        ovInfo.textContent = "No tensor of this model has values to summarise. " + infoText(v);
        ovBox.dataset.ready = "1";
        return v;
      }
      await drawOverview(v);
      return v;
    } catch (err) {
      if (mySeq === ovSeq) { showError("overview-error", err); ovBox.dataset.ready = "error"; }
      return null;
    }
  }

  ovAll.addEventListener("click", () => fetchOverview(0, view ? view.total : undefined));

  // Both requests start at once: the histogram of a linked tensor does not wait for the overview.
  const first = fetchOverview();
  if (current) load();
  else first.then(v => {
    if (v && v.default_tensor) open(v.default_tensor);
    else if (v) showError("hist-error", new Error("no tensor of this model has values to show"));
  });
})();
