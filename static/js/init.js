// The init lab: a rule editor generated from the nn.init catalogue, preview overlays, apply / reset / export.
(function () {
  "use strict";
  const { api, showError, clearError, fmt, el } = window.ts;
  const panel = document.getElementById("plan-panel");
  const modelId = panel.dataset.model;
  const base = "/api/models/" + encodeURIComponent(modelId);
  const catalogue = JSON.parse(document.getElementById("schemes-data").textContent);
  const schemes = Object.fromEntries(catalogue.schemes.map(s => [s.name, s]));
  const rulesBox = document.getElementById("rules");
  const status = document.getElementById("status");

  function argInput(arg, value) {
    let input;
    if (arg.choices) {
      input = el("select", { "data-arg": arg.name, "aria-label": arg.name });
      for (const c of arg.choices) input.append(el("option", { value: c, text: c, selected: c === value }));
    } else {
      input = el("input", { type: arg.type === "str" ? "text" : "number", step: arg.type === "int" ? "1" : "any",
        "data-arg": arg.name, "aria-label": arg.name, style: "width:7em",
        placeholder: arg.required ? "required" : "" });
      if (value !== null && value !== undefined) input.value = value;
    }
    input.dataset.type = arg.type;
    return el("label", {}, arg.name + " ", input);
  }

  function renderArgs(row, fnName, values) {
    const box = row.querySelector(".args");
    box.replaceChildren();
    const s = schemes[fnName];
    for (const a of s.args) box.append(argInput(a, values && a.name in values ? values[a.name] : a.default));
    row.querySelector(".fn-note").textContent = [s.note, s.min_rank ? ("rank " + s.min_rank + (s.max_rank === s.min_rank ? "" : s.max_rank ? "-" + s.max_rank : "+")) : ""].filter(Boolean).join(" · ");
  }

  function renumber() {
    rulesBox.querySelectorAll(".rule").forEach((r, i) => { r.querySelector(".idx").textContent = "#" + i; r.dataset.index = String(i); });
  }

  function addRule(rule) {
    rule = rule || { match: "Linear", tensor: "weight", fn: "kaiming_normal_", args: {} };
    const fnSel = el("select", { class: "fn", "aria-label": "function" });
    for (const s of catalogue.schemes) fnSel.append(el("option", { value: s.name, text: s.name === "default" ? "default (reset_parameters)" : s.name, selected: s.name === rule.fn }));
    const tensorSel = el("select", { class: "tensor", "aria-label": "tensor" });
    for (const t of catalogue.tensor_choices) tensorSel.append(el("option", { value: t, text: t, selected: t === rule.tensor }));
    const row = el("div", { class: "rule" },
      el("span", { class: "idx" }),
      el("label", {}, "match ", el("input", { type: "text", class: "match", list: "match-options", value: rule.match, "aria-label": "match", style: "width:14em" })),
      el("label", {}, "tensor ", tensorSel),
      el("label", {}, "fn ", fnSel),
      el("span", { class: "args" }),
      el("span", { class: "muted fn-note" }),
      el("button", { type: "button", class: "remove", text: "✕", "aria-label": "remove rule",
        onclick: () => { row.remove(); renumber(); } }));
    fnSel.addEventListener("change", () => renderArgs(row, fnSel.value, null));
    rulesBox.append(row);
    renderArgs(row, rule.fn, rule.args);
    renumber();
    return row;
  }

  function readPlan() {
    const rules = [];
    rulesBox.querySelectorAll(".rule").forEach(row => {
      const args = {};
      row.querySelectorAll("[data-arg]").forEach(inp => {
        if (inp.value === "") return;  // left empty: the function's default (or a clear 422 if required)
        args[inp.dataset.arg] = inp.dataset.type === "str" ? inp.value : Number(inp.value);
      });
      rules.push({ match: row.querySelector(".match").value, tensor: row.querySelector(".tensor").value,
        fn: row.querySelector(".fn").value, args: args });
    });
    const seed = Number(document.getElementById("seed").value);
    return { rules: rules, seed: seed };
  }

  // Tensor names for the match box, searched on the server as the user types (never all inlined).
  const matchOptions = document.getElementById("match-options");
  let nameQuery = null;
  const suggestNames = ts.debounce(async (text) => {
    if (!text || /[*?[]/.test(text) || text === nameQuery) return;
    nameQuery = text;
    try {
      const d = await api(base + "/tensors?limit=30&q=" + encodeURIComponent(text));
      if (nameQuery !== text) return;  // a newer query is on its way
      matchOptions.querySelectorAll('option[data-kind="name"]').forEach(o => o.remove());
      for (const t of d.items) {
        for (const n of [t.name, ...t.aliases]) matchOptions.append(el("option", { value: n, "data-kind": "name", text: t.module_type }));
      }
      matchOptions.dataset.query = text;
    } catch (_e) { /* suggestions only: the plan's own validation reports real problems */ }
  }, 200);
  rulesBox.addEventListener("input", e => { if (e.target.classList.contains("match")) suggestNames(e.target.value.trim()); });

  function markRule(err) {
    rulesBox.querySelectorAll(".rule").forEach(r => r.classList.remove("bad"));
    if (err && err.data && typeof err.data.rule === "number") {
      const row = rulesBox.querySelector('.rule[data-index="' + err.data.rule + '"]');
      if (row) row.classList.add("bad");
    }
  }

  function ruleText(r) {
    const args = Object.entries(r.args || {}).map(([k, v]) => k + "=" + v).join(", ");
    return r.match + " · " + r.tensor + " → " + r.fn + "(" + args + ")";
  }

  // The plans applied since the original weights: the page remembers what "modified" is made of.
  function showApplied(data) {
    const box = document.getElementById("applied-box");
    const list = document.getElementById("applied-list");
    list.replaceChildren(...data.plans.map(p => el("li", {}, "seed " + p.seed + ": " + p.rules.map(ruleText).join("; "))));
    box.hidden = !(data.modified && data.plans.length);
  }

  async function refreshApplied() {
    showApplied(await api(base + "/init/applied"));
  }

  function setStatus(text, modified) {
    status.textContent = text;
    status.dataset.modified = modified ? "1" : "0";
  }

  async function drawPreview(item, t, materialised) {
    const b = t.before, a = t.after, d = t.density;
    const mids = h => h.counts.map((_, i) => (h.edges[i] + h.edges[i + 1]) / 2);
    const after = { type: "bar", x: mids(a), y: d.after, width: a.counts.map((_, i) => a.edges[i + 1] - a.edges[i]),
      name: "after", marker: { color: "#2563eb" }, opacity: 0.55,
      customdata: a.counts, hovertemplate: "%{x:.4g}: density %{y:.4g} (%{customdata} elements)<extra>after</extra>" };
    // "now" as an outline on top of the "after" bars, so both stay visible where they overlap.
    // Both are densities: the two histograms have their own ranges, hence their own bin widths.
    const now = { type: "scatter", mode: "lines", name: materialised ? "now (default init, materialised copy)" : "now", line: { color: "#374151", width: 1.5, shape: "hv" },
      x: [...b.edges], y: [...d.before, d.before[d.before.length - 1]] };
    const traces = [after, now];
    if (d.expected) {
      traces.push({ type: "scatter", mode: "lines", x: mids(a), y: d.expected, name: "theory", line: { color: "#ee4c2c", width: 2 } });
    }
    const chart = item.querySelector(".chart");
    const Plotly = await window.ts.plotly();
    await Plotly.newPlot(chart, traces, {
      barmode: "overlay", bargap: 0, margin: { t: 8, r: 8, b: 40, l: 52 }, showlegend: true,
      xaxis: { title: { text: "weight value" } }, yaxis: { title: { text: "density (per unit of value)" } },
      legend: { orientation: "h", y: -0.3 }, height: 290,
    }, { displaylogo: false, responsive: true });
    chart.dataset.ready = "1";
  }

  function theoryText(th) {
    if (!th) return "no closed-form distribution";
    if (th.kind === "uniform") return "U(" + fmt(th.low) + ", " + fmt(th.high) + ")" + (th.std ? ", std " + fmt(th.std) : "");
    if (th.kind === "normal") return "N(" + fmt(th.mean) + ", " + fmt(th.std) + "²)";
    if (th.kind === "trunc_normal") return "N(" + fmt(th.mean) + ", " + fmt(th.std) + "²) cut to [" + fmt(th.low) + ", " + fmt(th.high) + "]";
    return "constant " + fmt(th.value);
  }

  async function preview() {
    const box = document.getElementById("previews");
    box.dataset.ready = "0";
    clearError("plan-error");
    markRule(null);
    const bins = encodeURIComponent(document.getElementById("bins").value);
    try {
      const d = await api(base + "/init/preview?bins=" + bins, { method: "POST", body: readPlan() });
      box.replaceChildren();
      document.getElementById("preview-count").textContent = d.tensors.length + " tensor(s)";
      for (const t of d.tensors) {
        const item = el("div", { class: "preview-item", "data-tensor": t.name },
          el("div", {}, el("code", { text: t.name }), " ", el("span", { class: "muted", text: "rule #" + t.rule + " · " + t.fn + " · [" + t.shape.join(", ") + "] " + t.dtype })),
          el("div", { class: "muted small" }, "std now " + fmt(t.before.stats.std) + " → after " + fmt(t.after.stats.std) + " · theory " + theoryText(t.theory)),
          el("div", { class: "chart" }));
        box.append(item);
      }
      // Draw sequentially: dozens of charts at once would block the page.
      const items = box.querySelectorAll(".preview-item");
      for (let i = 0; i < d.tensors.length; i++) await drawPreview(items[i], d.tensors[i], d.materialised);
      box.dataset.ready = "1";
    } catch (err) {
      showError("plan-error", err);
      markRule(err);
      box.dataset.ready = "error";
    }
  }

  async function applyPlan() {
    clearError("plan-error");
    markRule(null);
    try {
      const d = await api(base + "/init/apply", { method: "POST", body: readPlan() });
      setStatus("applied: " + d.count + " tensor(s) changed; reset restores the original", d.modified);
      await refreshApplied();
    } catch (err) {
      showError("plan-error", err);
      markRule(err);
      setStatus(status.textContent, status.dataset.modified === "1");
    }
    status.dataset.done = String(Date.now());
  }

  async function resetModel() {
    clearError("plan-error");
    try {
      const d = await api(base + "/init/reset", { method: "POST" });
      setStatus(d.restored ? "reset: " + d.restored + " tensor(s) restored bit for bit" : "nothing to reset: the weights are the original", d.modified);
      await refreshApplied();
    } catch (err) {
      showError("plan-error", err);
    }
    status.dataset.done = String(Date.now());
  }

  async function showSnippet() {
    clearError("plan-error");
    markRule(null);
    try {
      const d = await api(base + "/init/snippet", { method: "POST", body: readPlan() });
      document.getElementById("snippet").textContent = d.code;
      document.getElementById("snippet-panel").hidden = false;
    } catch (err) {
      showError("plan-error", err);
      markRule(err);
    }
  }

  async function copySnippet() {
    const text = document.getElementById("snippet").textContent;
    const btn = document.getElementById("copy-snippet");
    try {
      await navigator.clipboard.writeText(text);
      btn.textContent = "Copied";
    } catch (_e) {
      // No clipboard permission (plain http, headless): select the text for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents(document.getElementById("snippet"));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      btn.textContent = "Selected: press Ctrl+C";
    }
  }

  document.getElementById("add-rule").addEventListener("click", () => addRule({ match: "*.bias", tensor: "all", fn: "zeros_", args: {} }));
  document.getElementById("preview").addEventListener("click", preview);
  document.getElementById("apply").addEventListener("click", applyPlan);
  document.getElementById("reset").addEventListener("click", resetModel);
  document.getElementById("snippet-btn").addEventListener("click", showSnippet);
  document.getElementById("copy-snippet").addEventListener("click", copySnippet);
  const applied = JSON.parse(document.getElementById("applied-data").textContent);
  showApplied(applied);
  const last = applied.modified && applied.plans.length ? applied.plans[applied.plans.length - 1] : null;
  if (last) {
    for (const r of last.rules) addRule(r);
    document.getElementById("seed").value = last.seed;
  } else {
    addRule();
  }
  panel.dataset.ready = "1";
})();
