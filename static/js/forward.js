// The Forward page: example inputs (editable), totals with explanations, and the per-call table.
// The table is virtualised: only the rows in view (plus a margin) exist in the DOM, so a GPT-2-XL
// call list (thousands of rows) scrolls like a short one.
(function () {
  "use strict";
  const { api, showError, clearError, debounce, fmt, fmtBytes, el } = window.ts;
  const { si, short, inputsText } = window.tsShapes;
  const root = document.getElementById("forward");
  const modelId = root.dataset.model;
  const base = "/api/models/" + encodeURIComponent(modelId) + "/forward";
  const storeKey = "torchscope:forward-inputs:" + modelId;  // shared with the structure page's tree
  const editor = document.getElementById("inputs-editor");
  const table = document.getElementById("calls-table");
  const tbody = table.querySelector("tbody");
  const scroller = document.getElementById("calls-scroll");
  const ROW_H = 28, MARGIN = 15;

  let given = null;      // the inputs of the last run (null: the served ones)
  let answer = null;     // the last answer (or the failure's payload)
  let view = [];         // calls shown, filtered and sorted
  let sortKey = "index", sortDir = 1;
  let selected = null;

  // --------------------------------------------------------------- inputs editor
  // Pretty JSON with every tensor spec on one line: {"shape": [...], "dtype": ...}.
  function pretty(v, indent) {
    indent = indent || "";
    if (v && typeof v === "object" && !Array.isArray(v) && "shape" in v) {
      return "{" + Object.entries(v).map(([k, x]) => JSON.stringify(k) + ": " + (Array.isArray(x) ? "[" + x.map(d => JSON.stringify(d)).join(", ") + "]" : JSON.stringify(x))).join(", ") + "}";
    }
    if (Array.isArray(v)) {
      if (!v.length) return "[]";
      return "[\n" + v.map(x => indent + "  " + pretty(x, indent + "  ")).join(",\n") + "\n" + indent + "]";
    }
    if (v && typeof v === "object") {
      const keys = Object.keys(v);
      if (!keys.length) return "{}";
      return "{\n" + keys.map(k => indent + "  " + JSON.stringify(k) + ": " + pretty(v[k], indent + "  ")).join(",\n") + "\n" + indent + "}";
    }
    return JSON.stringify(v);
  }

  function showInputs(data) {
    editor.value = pretty(data.inputs);
    const src = document.getElementById("inputs-source");
    src.textContent = data.source;
    src.className = "badge" + (data.source === "inferred" ? " warn" : " ok");
    src.title = { given: "edited here", cli: "from --inputs", python: "from torchscope.show(inputs=...)", inferred: "inferred from the model: check them" }[data.source] || "";
    document.getElementById("inputs-note").textContent = data.note || "";
  }

  // --------------------------------------------------------------- totals
  function setCard(key, value, detail) {
    const card = document.getElementById("total-" + key);
    card.querySelector(".card-value").textContent = value;
    card.querySelector(".detail").textContent = detail;
  }

  function showTotals(d) {
    const t = d.totals, tb = t.training_bytes;
    setCard("flops", si(t.flops), fmt(t.flops) + " · " + d.mode + " tensors, " + d.device + " kernels");
    setCard("macs", si(t.macs), fmt(t.macs) + " multiply-adds");
    setCard("param_bytes", fmtBytes(t.param_bytes), fmtBytes(t.trainable_param_bytes) + " trainable · buffers " + fmtBytes(t.buffer_bytes));
    setCard("activation_bytes", fmtBytes(t.activation_bytes), "saved for backward, " + (d.training ? "train" : "eval") + " mode");
    setCard("output_bytes", fmtBytes(t.output_bytes), "outputs of " + fmt(t.calls) + " calls' leaves");
    setCard("training_bytes", fmtBytes(tb.total.adam), "Adam/AdamW · SGD+momentum " + fmtBytes(tb.total.sgd_momentum) +
      " · grads " + fmtBytes(tb.gradients) + " · optimizer state " + fmtBytes(tb.optimizer_state.adam));
    document.getElementById("totals").hidden = false;
    const warn = document.getElementById("forward-warnings");
    warn.replaceChildren(...(d.warnings || []).map(w => el("div", { text: "⚠ " + w })));
    warn.hidden = !(d.warnings || []).length;
  }

  // --------------------------------------------------------------- the table (virtual)
  function row(c) {
    const total = answer && answer.totals ? answer.totals.flops : 0;
    const share = total ? Math.max(0, Math.min(1, c.flops_total / total)) : 0;
    const name = c.path === "" ? "(model)" : c.path.split(".").pop();
    const tr = el("tr", { "data-index": c.index, "data-path": c.path, class: (c.state || "") + (c.index === selected ? " selected" : "") },
      el("td", { class: "num muted", text: c.index }),
      el("td", { class: "layer", title: (c.path || "(model)") + " · " + c["class"] },
        el("span", { style: "padding-left:" + (c.depth * 14) + "px", class: "lname", text: name }), " ",
        el("span", { class: "node-class", text: c["class"] })),
      el("td", { class: "num", text: c.call }),
      el("td", { class: "shape", title: inputsText(c.inputs, 400), text: inputsText(c.inputs) }),
      el("td", { class: "shape", title: short(c.outputs, 400), text: c.state === "failed" ? "✗ failed" : short(c.outputs) }),
      el("td", { class: "num", text: c.params ? fmt(c.params) : "--" }),
      el("td", { class: "num", text: c.flops ? si(c.flops) : "--", title: fmt(c.flops) }),
      el("td", { class: "num flops-total", title: fmt(c.flops_total) + (total ? " · " + (100 * share).toFixed(1) + "% of the model" : "") },
        el("span", { class: "share", "aria-hidden": "true" }, el("span", { style: "width:" + (100 * share).toFixed(1) + "%" })),
        c.flops_total ? si(c.flops_total) : "--"),
      el("td", { class: "num", text: c.output_bytes ? fmtBytes(c.output_bytes) : "--" }));
    return tr;
  }

  function spacer(h) {
    const tr = el("tr", { class: "spacer", "aria-hidden": "true" }, el("td", { colspan: 9 }));
    tr.style.height = h + "px";
    return tr;
  }

  let pending = false;
  function renderWindow() {
    pending = false;
    // Before the first rows exist the box is only as tall as its header: use the height it will have.
    const top = scroller.scrollTop, h = Math.max(scroller.clientHeight, window.innerHeight * 0.7);
    const start = Math.max(0, Math.floor(top / ROW_H) - MARGIN);
    const end = Math.min(view.length, Math.ceil((top + h) / ROW_H) + MARGIN);
    const rows = view.slice(start, end).map(row);
    tbody.replaceChildren(spacer(start * ROW_H), ...rows, spacer((view.length - end) * ROW_H));
  }
  const schedule = () => { if (!pending) { pending = true; requestAnimationFrame(renderWindow); } };
  scroller.addEventListener("scroll", schedule);
  window.addEventListener("resize", schedule);

  function applyView() {
    const calls = (answer && answer.calls) || [];
    const f = document.getElementById("calls-filter").value.trim().toLowerCase();
    const depthSel = document.getElementById("calls-depth").value;
    const maxDepth = depthSel === "" ? Infinity : Number(depthSel);
    view = calls.filter(c => c.depth <= maxDepth && (!f || c.path.toLowerCase().includes(f) || c["class"].toLowerCase().includes(f)));
    if (sortKey !== "index") {
      view.sort((a, b) => {
        const x = a[sortKey], y = b[sortKey];
        return (typeof x === "string" ? x.localeCompare(y) : x - y) * sortDir || a.index - b.index;
      });
    } else if (sortDir < 0) view.reverse();
    document.getElementById("calls-count").textContent = "(" + fmt(view.length) + (view.length !== calls.length ? " of " + fmt(calls.length) : "") + ")";
    renderWindow();
    table.dataset.rows = String(view.length);
    table.dataset.ready = "1";
  }

  function fillDepths(calls) {
    const sel = document.getElementById("calls-depth");
    const keep = sel.value;
    const max = calls.reduce((m, c) => Math.max(m, c.depth), 0);
    sel.replaceChildren(el("option", { value: "", text: "all" }));
    for (let d = 0; d <= max; d++) sel.append(el("option", { value: String(d), text: "≤ " + d }));
    sel.value = keep !== "" && Number(keep) <= max ? keep : "";
  }

  function showDetail(index) {
    const c = answer.calls[index];
    if (!c) return;
    selected = index;
    document.getElementById("detail-title").textContent = (c.path || "(model)") + " · " + c["class"] + " · call " + c.call;
    document.getElementById("detail-inputs").textContent = JSON.stringify(c.inputs, null, 2);
    document.getElementById("detail-outputs").textContent = c.state === "failed" ? "(failed)" : JSON.stringify(c.outputs, null, 2);
    document.getElementById("call-detail").hidden = false;
    renderWindow();
  }
  tbody.addEventListener("click", e => {
    const tr = e.target.closest("tr[data-index]");
    if (tr) showDetail(Number(tr.dataset.index));
  });

  table.querySelectorAll("th[data-key]").forEach(th => th.addEventListener("click", () => {
    const k = th.dataset.key;
    sortDir = sortKey === k ? -sortDir : (k === "index" || k === "path" || k === "call" ? 1 : -1);
    sortKey = k;
    table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
    applyView();
  }));

  // --------------------------------------------------------------- running
  function showFailure(data) {
    const box = document.getElementById("failure");
    document.getElementById("failure-path").textContent = data.path === null ? "(before any module)" : (data.path || "(model)");
    document.getElementById("failure-class").textContent = data["class"] ? data["class"] + ", call " + data.call : "";
    document.getElementById("failure-inputs").textContent = data.module_inputs ? inputsText(data.module_inputs, 400) : "—";
    document.getElementById("failure-message").textContent = data.error_type + ": " + data.error;
    box.hidden = false;
  }

  async function run(inputs) {
    clearError("inputs-error");
    root.dataset.state = "running";
    table.dataset.ready = "";
    const started = performance.now();
    try {
      const d = inputs === null ? await api(base) : await api(base, { method: "POST", body: { inputs } });
      answer = d;
      given = inputs;
      if (inputs === null) sessionStorage.removeItem(storeKey); else sessionStorage.setItem(storeKey, JSON.stringify(inputs));
      document.getElementById("failure").hidden = true;
      showInputs(d);
      showTotals(d);
      fillDepths(d.calls);
      selected = null;
      document.getElementById("call-detail").hidden = true;
      applyView();
      document.getElementById("run-info").textContent = fmt(d.calls.length) + " calls · " + d.mode + " forward in " +
        fmt(Math.round(d.elapsed_ms)) + " ms · page " + fmt(Math.round(performance.now() - started)) + " ms";
      root.dataset.state = "ok";
    } catch (err) {
      const data = err.data || {};
      if (err.status === 422 && Array.isArray(data.calls)) {  // the forward ran and failed: show where
        answer = data;
        given = inputs;
        if (inputs === null) sessionStorage.removeItem(storeKey); else sessionStorage.setItem(storeKey, JSON.stringify(inputs));
        showInputs(data);
        showFailure(data);
        document.getElementById("totals").hidden = true;
        document.getElementById("forward-warnings").hidden = true;
        fillDepths(data.calls);
        applyView();
        document.getElementById("run-info").textContent = "failed after " + fmt(data.calls.length) + " calls (" + data.mode + " forward)";
        root.dataset.state = "failed";
      } else {
        if (err.status === 409 && !editor.value.trim()) editor.value = pretty({ args: [{ shape: [1, 3, 224, 224], dtype: "float32" }] });
        showError("inputs-error", err);
        root.dataset.state = err.status === 409 ? "no-inputs" : "error";
        table.dataset.ready = "1";
      }
    }
  }

  document.getElementById("run-forward").addEventListener("click", () => {
    let inputs;
    try {
      inputs = JSON.parse(editor.value);
    } catch (e) {
      showError("inputs-error", new Error("the inputs are not valid JSON: " + e.message));
      return;
    }
    run(inputs);
  });
  document.getElementById("served-inputs").addEventListener("click", () => run(null));
  document.getElementById("calls-filter").addEventListener("input", debounce(applyView, 150));
  document.getElementById("calls-depth").addEventListener("change", applyView);

  // --------------------------------------------------------------- export
  async function exportAs(kind) {
    const depth = document.getElementById("calls-depth").value;
    const q = "?format=" + kind + (depth !== "" ? "&depth=" + depth : "");
    try {
      const text = given === null ? await api(base + q) : await api(base + q, { method: "POST", body: { inputs: given } });
      const out = document.getElementById("export-output");
      out.value = text;
      document.getElementById("export-kind").textContent = kind === "markdown" ? "Markdown" : "text";
      const link = document.getElementById("export-download");
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      link.download = modelId + "-forward." + (kind === "markdown" ? "md" : "txt");
      document.getElementById("export-panel").hidden = false;
      out.dataset.ready = "1";
    } catch (err) { showError("inputs-error", err); }
  }
  document.getElementById("export-markdown").addEventListener("click", () => exportAs("markdown"));
  document.getElementById("export-text").addEventListener("click", () => exportAs("text"));
  document.getElementById("export-copy").addEventListener("click", async () => {
    const out = document.getElementById("export-output");
    out.select();
    try { await navigator.clipboard.writeText(out.value); } catch (e) { document.execCommand("copy"); }
  });

  const stored = sessionStorage.getItem(storeKey);
  let first = null;
  try { first = stored ? JSON.parse(stored) : null; } catch (e) { first = null; }
  run(first);
})();
