// LR schedule lab: forms generated from the catalogue JSON (GET /api/schedulers, embedded in the page),
// a nested composition editor, param groups (with live membership for a model), and a Plotly chart
// of the values the server computed (equal to stepping torch). JavaScript never computes a schedule.
(function () {
  "use strict";
  const { api, showError, clearError, debounce, el } = window.ts;

  const lab = document.getElementById("lab");
  const modelId = lab.dataset.model;
  const apiBase = modelId ? "/api/models/" + encodeURIComponent(modelId) + "/schedules" : "/api/schedules";
  const catalogue = JSON.parse(document.getElementById("catalogue-data").textContent);
  const initial = JSON.parse(document.getElementById("initial-data").textContent);
  const initialMembership = JSON.parse(document.getElementById("membership-data").textContent);
  const SCHED = Object.fromEntries(catalogue.schedulers.map(s => [s.name, s]));
  const OPT = Object.fromEntries(catalogue.optimizers.map(o => [o.name, o]));
  const GROUP_OPTIONS = ["lr", "momentum", "betas", "weight_decay"];
  const COLORS = ["#2563eb", "#ee4c2c", "#15803d", "#7c3aed", "#b45309", "#0891b2", "#be185d", "#4b5563"];
  // Each pinned curve gets its own dash and colour (and a legend group), so two pins never look alike.
  const PIN_DASHES = ["dash", "dot", "dashdot", "longdash", "longdashdot"];
  const PIN_COLORS = ["#6b7280", "#0d9488", "#c026d3", "#ca8a04", "#1e3a8a", "#9f1239"];
  const INTENT = { epoch: "usually stepped once per epoch", batch: "meant to be stepped after every batch",
    either: "stepped once per epoch or after every batch" };
  const MAX_POINTS = 4000; // the chart draws at most this many points; the API values are never decimated otherwise

  const chart = document.getElementById("chart");
  const state = JSON.parse(JSON.stringify(initial));
  state.metric_shape = state.metric_shape || "plateau";
  const pins = [];
  let last = null;
  let seq = 0;

  // ------------------------------------------------------------------ value <-> text for each argument kind
  function toText(kind, v) {
    if (v === undefined || v === null) return "";
    if (Array.isArray(v)) return kind === "expr" ? v.join(" | ") : v.join(", ");
    return String(v);
  }

  function numOrText(s) {
    const n = Number(s);
    return s.trim() !== "" && Number.isFinite(n) ? n : s.trim();
  }

  // Unparseable text is sent as typed: the server answers 422 naming the field, shown next to it.
  function fromText(kind, s) {
    s = s.trim();
    if (s === "") return undefined;
    if (kind === "int" || kind === "float" || kind === "optional_int") return numOrText(s);
    if (kind === "int_list" || kind === "float_pair") return s.split(/[\s,;]+/).filter(Boolean).map(numOrText);
    if (kind === "float_or_list") {
      const parts = s.split(/[\s,;]+/).filter(Boolean).map(numOrText);
      return parts.length === 1 ? parts[0] : parts;
    }
    if (kind === "expr") {
      const parts = s.split("|").map(x => x.trim());
      return parts.length === 1 ? parts[0] : parts;
    }
    return s;
  }

  function rangeHint(a) {
    const parts = [];
    if (a.minimum !== null && a.minimum !== undefined) parts.push((a.exclusive_minimum ? "> " : "≥ ") + a.minimum);
    if (a.maximum !== null && a.maximum !== undefined) parts.push((a.exclusive_maximum ? "< " : "≤ ") + a.maximum);
    let hint = parts.join(", ");
    if (a.per_group) hint += (hint ? "; " : "") + (a.kind === "expr" ? "one per group with |" : "a list gives one per group");
    if (a.help) hint += (hint ? " · " : "") + a.help;
    return hint;
  }

  // One labelled input for one argument; `obj[a.name]` is read and written.
  function argField(a, obj, path, onChange) {
    const field = path + "." + a.name;
    const wrap = el("div", { class: "field", "data-arg": field });
    const id = "f-" + field.replace(/[^A-Za-z0-9_-]/g, "-");
    wrap.append(el("label", { for: id, text: a.name + (a.required ? " *" : ""), title: a.annotation }));
    let input;
    if (a.kind === "bool") {
      input = el("input", { type: "checkbox", id });
      input.checked = obj[a.name] !== undefined ? !!obj[a.name] : !!a.default;
      input.addEventListener("change", () => { obj[a.name] = input.checked; onChange(); });
    } else if (a.kind === "choice") {
      input = el("select", { id });
      for (const c of a.choices) input.append(el("option", { value: c, text: c }));
      input.value = obj[a.name] !== undefined ? obj[a.name] : a.default;
      input.addEventListener("change", () => { obj[a.name] = input.value; onChange(); });
    } else {
      const numeric = a.kind === "int" || a.kind === "float" || a.kind === "optional_int";
      input = el("input", { type: "text", id, inputmode: numeric ? "decimal" : null,
        placeholder: a.default === null || a.default === undefined ? (a.required ? "required" : "") : toText(a.kind, a.default) });
      if (a.kind === "expr") input.classList.add("expr");
      input.value = toText(a.kind, obj[a.name]);
      input.addEventListener("input", () => {
        const v = fromText(a.kind, input.value);
        if (v === undefined) delete obj[a.name]; else obj[a.name] = v;
        onChange();
      });
    }
    input.dataset.field = field;
    input.name = a.name;
    wrap.append(input);
    const hint = rangeHint(a);
    if (hint) wrap.append(el("div", { class: "hint", text: hint }));
    return wrap;
  }

  // ------------------------------------------------------------------ optimizer
  function renderOptimizer() {
    const box = document.getElementById("optimizer-form");
    const opt = state.optimizer;
    const sel = el("select", { id: "optimizer-type", "data-field": "optimizer.type" });
    for (const name of Object.keys(OPT)) sel.append(el("option", { value: name, text: name }));
    sel.value = opt.type;
    sel.addEventListener("change", () => {
      const keep = opt.lr;
      for (const k of Object.keys(opt)) delete opt[k];
      opt.type = sel.value;
      if (keep !== undefined) opt.lr = keep;
      // Group options that the new optimizer lacks (betas on SGD) would be a 422: drop them.
      const names = new Set(OPT[opt.type].args.map(a => a.name));
      for (const g of state.groups) for (const k of GROUP_OPTIONS) if (!names.has(k)) delete g[k];
      renderOptimizer();
      renderGroups();
      changed();
    });
    const fields = el("div");
    for (const a of OPT[opt.type].args) {
      if (a.kind === "unsupported") continue;
      fields.append(argField(a, opt, "optimizer", changed));
    }
    box.replaceChildren(el("div", { class: "field" }, el("label", { for: "optimizer-type", text: "type" }), sel), fields);
  }

  // ------------------------------------------------------------------ param groups
  function groupOptionArgs() {
    return OPT[state.optimizer.type].args.filter(a => GROUP_OPTIONS.includes(a.name));
  }

  function renderGroups() {
    const box = document.getElementById("groups-form");
    box.replaceChildren();
    state.groups.forEach((g, i) => {
      const path = "groups[" + i + "]";
      const name = el("input", { type: "text", class: "group-name", placeholder: "group" + i, value: g.name || "",
        "aria-label": "group name", "data-field": path + ".name" });
      name.addEventListener("input", () => { if (name.value.trim()) g.name = name.value.trim(); else delete g.name; changed(); });
      const remove = el("button", { type: "button", class: "danger", text: "✕", title: "remove group",
        disabled: state.groups.length <= 1 && !modelId });
      remove.addEventListener("click", () => { state.groups.splice(i, 1); if (!modelId && !state.groups.length) state.groups.push({}); renderGroups(); changed(); });
      const row = el("div", { class: "group-row", "data-group": String(i) }, el("div", { class: "group-head" }, name, remove));
      if (modelId) {
        const a = { name: "match", kind: "int_list", annotation: "patterns", required: true, default: null,
          help: "name globs or module classes, comma-separated" };
        const wrap = el("div", { class: "field", "data-arg": path + ".match" },
          el("label", { for: "f-match-" + i, text: "match *" }));
        const input = el("input", { type: "text", id: "f-match-" + i, class: "group-match", value: (g.match || []).join(", "),
          placeholder: "fc1.*, LayerNorm", "data-field": path + ".match" });
        input.addEventListener("input", () => {
          g.match = input.value.split(",").map(s => s.trim()).filter(Boolean);
          refreshMembership();
          changed();
        });
        wrap.append(input, el("div", { class: "hint", text: a.help }));
        row.append(wrap);
      }
      for (const a of groupOptionArgs()) {
        row.append(argField({ ...a, required: false, default: null, help: "" }, g, path, changed));
      }
      box.append(row);
    });
  }

  document.getElementById("add-group").addEventListener("click", () => {
    state.groups.push(modelId ? { match: [] } : {});
    renderGroups();
    if (modelId) refreshMembership();
    changed();
  });

  function renderMembership(m) {
    const box = document.getElementById("membership");
    if (!box || !m) return;
    box.replaceChildren(el("h3", { class: "small", text: "Membership" }));
    for (const g of m.groups) {
      const shown = g.params.slice(0, 12).join(", ") + (g.params.length > 12 ? ", … (" + (g.params.length - 12) + " more)" : "");
      box.append(el("div", { class: "mgroup", "data-group-name": g.name },
        el("strong", { text: g.name }), " ",
        el("span", { class: "badge" + (g.count ? "" : " warn"), "data-count": String(g.count), text: g.count + " params · " + g.numel.toLocaleString("en-US") + " el" }),
        g["default"] ? el("span", { class: "muted small", text: " (optimizer defaults)" }) : null,
        el("div", { class: "names", text: shown || "— matches nothing —" })));
    }
    for (const w of m.warnings) box.append(el("div", { class: "notice small", text: w }));
  }

  const refreshMembership = debounce(async function () {
    try {
      const m = await api(apiBase + "/groups", { method: "POST", body: { groups: state.groups } });
      clearError("preview-error");
      renderMembership(m);
    } catch (err) {
      showError("preview-error", err);
      markInvalid(err);
    }
  }, 250);

  // ------------------------------------------------------------------ scheduler (nested)
  function defaultsFor(type) {
    const args = {};
    for (const a of SCHED[type].args) {
      if (a.example !== null && a.example !== undefined && (a.required || a.kind === "schedulers")) {
        args[a.name] = JSON.parse(JSON.stringify(a.example));
      }
    }
    return args;
  }

  function schedNode(spec, path, nested, onRemove) {
    const box = el("div", { class: "sched-node", "data-path": path });
    const sel = el("select", { class: "sched-type", "data-field": path + ".type", "aria-label": "scheduler type" });
    for (const s of catalogue.schedulers) {
      if (nested && s.needs_metrics) continue; // compositions cannot hold ReduceLROnPlateau (step needs a metric)
      sel.append(el("option", { value: s.name, text: s.name }));
    }
    sel.value = spec.type;
    sel.addEventListener("change", () => {
      spec.type = sel.value;
      spec.args = defaultsFor(spec.type);
      renderScheduler();
      changed();
    });
    const head = el("div", { class: "node-head" }, sel);
    if (onRemove) {
      const rm = el("button", { type: "button", class: "danger", text: "✕", title: "remove from composition" });
      rm.addEventListener("click", onRemove);
      head.append(rm);
    }
    const info = SCHED[spec.type];
    box.append(head, el("div", { class: "muted small intent", "data-intent": info.intent, text: info.doc + " · " + INTENT[info.intent] }));
    spec.args = spec.args || {};
    for (const a of info.args) {
      if (a.kind === "unsupported") continue;
      if (a.kind === "schedulers") {
        const kids = el("div", { class: "children" });
        const list = spec.args[a.name] = spec.args[a.name] || [];
        list.forEach((child, j) => {
          kids.append(schedNode(child, path + ".args." + a.name + "[" + j + "]", true, () => {
            list.splice(j, 1);
            renderScheduler();
            changed();
          }));
        });
        const add = el("button", { type: "button", class: "add-child", text: "+ scheduler" });
        add.addEventListener("click", () => {
          list.push({ type: "ExponentialLR", args: defaultsFor("ExponentialLR") });
          renderScheduler();
          changed();
        });
        box.append(el("div", { class: "field-label small", text: a.name }), kids, add);
        continue;
      }
      box.append(argField(a, spec.args, path + ".args", changed));
    }
    if (info.needs_metrics && !nested) box.append(metricsField());
    return box;
  }

  function metricsField() {
    const wrap = el("div", { class: "metrics" });
    const sel = el("select", { id: "metric-source", "data-field": "metric_shape" });
    for (const s of catalogue.metric_shapes) sel.append(el("option", { value: s, text: "synthetic: " + s }));
    sel.append(el("option", { value: "pasted", text: "pasted values" }));
    const area = el("textarea", { id: "metrics", rows: "3", placeholder: "one metric per scheduler step, e.g. 0.9 0.8 0.75 0.75 …",
      "data-field": "metrics" });
    sel.value = state.metrics !== undefined ? "pasted" : state.metric_shape;
    area.value = typeof state.metrics === "string" ? state.metrics : "";
    area.hidden = sel.value !== "pasted";
    sel.addEventListener("change", () => {
      area.hidden = sel.value !== "pasted";
      if (sel.value === "pasted") state.metrics = area.value; else { delete state.metrics; state.metric_shape = sel.value; }
      changed();
    });
    area.addEventListener("input", () => { state.metrics = area.value; changed(); });
    wrap.append(el("div", { class: "field" }, el("label", { for: "metric-source", text: "metric" }), sel), area);
    return wrap;
  }

  function renderScheduler() {
    document.getElementById("scheduler-form").replaceChildren(schedNode(state.scheduler, "scheduler", false, null));
  }

  // ------------------------------------------------------------------ run options
  const epochsIn = document.getElementById("epochs");
  const speIn = document.getElementById("steps-per-epoch");
  epochsIn.value = state.epochs;
  speIn.value = state.steps_per_epoch;
  epochsIn.addEventListener("input", () => { state.epochs = numOrText(epochsIn.value); changed(); });
  speIn.addEventListener("input", () => { state.steps_per_epoch = numOrText(speIn.value); changed(); });
  document.getElementById("step-" + state.step).checked = true;
  for (const r of document.querySelectorAll('input[name="step"]')) {
    r.addEventListener("change", () => { state.step = r.value; changed(); });
  }
  const overlay = document.getElementById("overlay-mistake");
  overlay.addEventListener("change", changed);

  // SWA as torch's docs loop it: the scheduler until swa_start, SWALR after (state.swa, sent as is).
  const swaOn = document.getElementById("swa-on");
  const swaStart = document.getElementById("swa-start");
  const swaForm = document.getElementById("swa-form");
  function renderSwa() {
    swaOn.checked = !!state.swa;
    swaStart.disabled = !state.swa;
    swaForm.hidden = !state.swa;
    if (!state.swa) { swaForm.replaceChildren(); return; }
    swaStart.value = state.swa.start;
    const spec = state.swa.scheduler;
    swaForm.replaceChildren(...SCHED[spec.type].args.filter(a => a.kind !== "unsupported")
      .map(a => argField(a, spec.args, "swa.scheduler.args", changed)));
  }
  swaOn.addEventListener("change", () => {
    if (swaOn.checked) {
      const steps = state.step === "batch" ? state.epochs * state.steps_per_epoch : state.epochs;
      state.swa = { start: Math.max(0, Math.round(0.75 * (Number(steps) || 0)) - 1),
        scheduler: { type: "SWALR", args: { swa_lr: 0.05 } } };
    } else {
      delete state.swa;
    }
    renderSwa();
    changed();
  });
  swaStart.addEventListener("input", () => { if (state.swa) { state.swa.start = numOrText(swaStart.value); changed(); } });
  const logScale = document.getElementById("log-scale");
  const xAxis = document.getElementById("x-axis");
  logScale.addEventListener("change", () => last && draw(last));
  xAxis.addEventListener("change", () => last && draw(last));

  // ------------------------------------------------------------------ preview
  function body(extra) {
    const b = JSON.parse(JSON.stringify(state));
    if (b.scheduler && SCHED[b.scheduler.type] && !SCHED[b.scheduler.type].needs_metrics) {
      delete b.metrics;
      delete b.metric_shape;
    }
    b.overlay_batch_mistake = overlay.checked;
    return Object.assign(b, extra || {});
  }

  function markInvalid(err) {
    for (const n of document.querySelectorAll(".field.invalid")) n.classList.remove("invalid");
    const field = err && err.data && err.data.field;
    if (!field) return;
    const input = document.querySelector('[data-field="' + CSS.escape(field) + '"]');
    const wrap = input && (input.closest(".field") || input);
    if (wrap) wrap.classList.add("invalid");
  }

  async function refresh() {
    const my = ++seq;
    chart.dataset.loading = "1";
    try {
      const result = await api(apiBase + "/preview", { method: "POST", body: body({ max_points: MAX_POINTS }) });
      if (my !== seq) return; // a newer edit is on its way
      clearError("preview-error");
      markInvalid(null);
      last = result;
      if (result.membership) renderMembership(result.membership);
      await draw(result);
      renderWarnings(result);
      refreshSnippet();
    } catch (err) {
      if (my !== seq) return;
      showError("preview-error", err);
      markInvalid(err);
    } finally {
      if (my === seq) chart.dataset.loading = "";
    }
  }

  // A function declaration (hoisted): the form handlers above are wired before this line runs.
  let pendingRefresh = null;
  function changed() {
    clearTimeout(pendingRefresh);
    pendingRefresh = setTimeout(refresh, 250);
  }

  function xs(result) {
    return xAxis.value === "epochs" ? result.x.map(v => v / result.steps_per_epoch) : result.x;
  }

  // One style per curve set: the current preview, or pin k (its own dash, colour and legend group).
  function styleFor(pin, nGroups) {
    if (pin === null) {
      return { prefix: "", dash: "solid", width: 2, opacity: 1, color: i => COLORS[i % COLORS.length], group: "current" };
    }
    return { prefix: pin.label + " · ", dash: PIN_DASHES[pin.n % PIN_DASHES.length], width: 2, opacity: 0.75,
      color: i => (nGroups > 1 ? COLORS[i % COLORS.length] : PIN_COLORS[pin.n % PIN_COLORS.length]),
      group: "pin-" + pin.n, title: pin.label };
  }

  function traces(result, pin) {
    const out = [];
    const x = xs(result);
    const mkey = result.momentum_key === "betas" ? "betas[0]" : "momentum";
    const st = styleFor(pin, result.groups.length);
    result.groups.forEach((g, i) => {
      const common = { legendgroup: st.group, legendgrouptitle: st.title ? { text: st.title } : undefined };
      out.push(Object.assign({ x, y: g.lr, name: st.prefix + g.name + " lr", type: "scatter", mode: "lines",
        line: { color: st.color(i), width: st.width, dash: st.dash }, opacity: st.opacity,
        meta: { kind: "lr", group: g.name, pinned: pin !== null, pin: pin ? pin.n : null } }, common));
      if (g.momentum) {
        out.push(Object.assign({ x, y: g.momentum, name: st.prefix + g.name + " " + mkey, type: "scatter", mode: "lines",
          yaxis: "y2", line: { color: st.color(i), width: 1, dash: pin ? st.dash : "dot" }, opacity: st.opacity * 0.8,
          meta: { kind: "momentum", group: g.name, pin: pin ? pin.n : null } }, common));
      }
    });
    return out;
  }

  // A dashed vertical line where torch raises: the training run would stop there.
  function crashMarks(result) {
    const shapes = [], notes = [];
    const scale = xAxis.value === "epochs" ? 1 / result.steps_per_epoch : 1;
    const marks = [[result.crash, "torch raises here"], [result.mistake && result.mistake.crash, "per batch: torch raises here"]];
    for (const [c, text] of marks) {
      if (!c) continue;
      const at = c.x * scale;
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: at, x1: at, y0: 0, y1: 1, line: { color: "#b91c1c", width: 1.5, dash: "dash" } });
      notes.push({ x: at, y: 1, xref: "x", yref: "paper", text, showarrow: false, xanchor: "left", font: { color: "#b91c1c", size: 11 } });
    }
    return { shapes, annotations: notes };
  }

  async function draw(result) {
    let data = traces(result, null);
    if (result.mistake) {
      const x = xs(result);
      result.mistake.groups.forEach((g, i) => {
        data.push({ x, y: g.lr, name: g.name + " lr (per batch by mistake)", type: "scatter", mode: "lines",
          line: { color: COLORS[i % COLORS.length], width: 1.5, dash: "longdash" }, opacity: 0.6,
          legendgroup: "mistake", meta: { kind: "mistake", group: g.name } });
      });
    }
    pins.forEach(p => { data = data.concat(traces(p.result, p)); });
    const hasMomentum = result.groups.some(g => g.momentum);
    const marks = crashMarks(result);
    const layout = {
      margin: { l: 70, r: hasMomentum ? 70 : 20, t: 10, b: 50 },
      xaxis: { title: { text: xAxis.value === "epochs" ? "epoch" : "optimizer step" } },
      yaxis: { title: { text: "learning rate" }, type: logScale.checked ? "log" : "linear", exponentformat: "e" },
      yaxis2: { title: { text: result.momentum_key === "betas" ? "betas[0]" : "momentum" }, overlaying: "y", side: "right",
        showgrid: false, visible: hasMomentum, rangemode: "tozero" },
      hovermode: "x unified",
      legend: { orientation: "h", y: -0.2, groupclick: "toggleitem" },
      shapes: marks.shapes,
      annotations: marks.annotations,
    };
    const config = { responsive: true, displaylogo: false };
    if (chart.dataset.ready === "1") await Plotly.react(chart, data, layout, config);
    else await Plotly.newPlot(chart, data, layout, config);
    chart.dataset.ready = "1";
    chart.dataset.draws = String(Number(chart.dataset.draws || 0) + 1);
    const info = document.getElementById("chart-info");
    info.textContent = result.epochs + " epochs × " + result.steps_per_epoch + " steps = " +
      (result.epochs * result.steps_per_epoch).toLocaleString("en-US") + " optimizer steps; scheduler.step() " +
      result.scheduler_steps.toLocaleString("en-US") + " times (" + result.step + "); computed by " +
      (result.engine === "exact" ? "an exact replay of torch's update rules" : "stepping torch") + " in " +
      result.timing_ms + " ms" + (result.decimated ? "; drawn with " + result.x.length + " points (CSV has every step)" : "");
  }

  function renderWarnings(result) {
    const ul = document.getElementById("warnings");
    ul.replaceChildren();
    result.warnings.forEach((w, i) => ul.append(el("li", { "data-code": result.warning_codes[i] || "", text: w })));
  }

  // ------------------------------------------------------------------ compare
  const clearPins = document.getElementById("clear-pins");
  document.getElementById("pin").addEventListener("click", () => {
    if (!last) return;
    pins.push({ label: "pin " + (pins.length + 1) + " (" + state.scheduler.type + ")", result: last, n: pins.length });
    clearPins.disabled = false;
    draw(last);
  });
  clearPins.addEventListener("click", () => { pins.length = 0; clearPins.disabled = true; if (last) draw(last); });

  // ------------------------------------------------------------------ export
  const status = document.getElementById("export-status");
  const snippetEl = document.getElementById("snippet");

  async function refreshSnippet() {
    try {
      const out = await api(apiBase + "/snippet", { method: "POST", body: body() });
      snippetEl.textContent = out.code;
      clearError("export-error");
    } catch (err) {
      showError("export-error", err);
    }
  }

  document.getElementById("copy-snippet").addEventListener("click", async () => {
    await refreshSnippet();
    try {
      await navigator.clipboard.writeText(snippetEl.textContent);
      status.textContent = "snippet copied";
    } catch (_err) {
      // No clipboard permission (e.g. plain http in some browsers): select it for Ctrl+C instead.
      const range = document.createRange();
      range.selectNodeContents(snippetEl);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      status.textContent = "snippet selected: press Ctrl+C";
    }
  });

  document.getElementById("download-csv").addEventListener("click", async () => {
    clearError("export-error");
    try {
      const res = await fetch(apiBase + "/csv", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body()) });
      if (!res.ok) {
        const data = await res.json();
        const err = new Error(data.detail || res.statusText);
        err.status = res.status;
        throw err;
      }
      const blob = await res.blob();
      const a = el("a", { href: URL.createObjectURL(blob), download: modelId ? modelId + "-schedule.csv" : "schedule.csv" });
      document.body.append(a);
      a.click();
      a.remove();
      status.textContent = "CSV downloaded (" + blob.size.toLocaleString("en-US") + " bytes)";
    } catch (err) {
      showError("export-error", err);
    }
  });

  // ------------------------------------------------------------------ start
  renderOptimizer();
  renderGroups();
  renderScheduler();
  renderSwa();
  renderMembership(initialMembership);
  refresh();
})();
