// Checkpoint pages: the list (upload, open from --data-dir) and one checkpoint (tensor tree,
// histograms, compare with / load into a served model, diff). Every number comes from the server.
(function () {
  "use strict";
  const { api, showError, clearError, fmt, fmtBytes, el } = window.ts;

  // ------------------------------------------------------------------ list page
  const uploadForm = document.getElementById("upload-form");
  if (uploadForm) {
    uploadForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError("upload-error");
      const input = document.getElementById("upload-file");
      if (!input.files.length) { showError("upload-error", new Error("choose a file first")); return; }
      const file = input.files[0];
      const button = document.getElementById("upload-button");
      button.disabled = true;
      const progress = document.getElementById("upload-progress");
      try {
        // The raw file as the body: the server streams it to disk and stops at the size limit.
        // XMLHttpRequest rather than fetch: only it reports upload progress (checkpoints are big).
        const data = await new Promise((resolve, reject) => {
          const xhr = new XMLHttpRequest();
          xhr.open("POST", "/api/checkpoints/upload?filename=" + encodeURIComponent(file.name));
          xhr.setRequestHeader("Accept", "application/json");
          xhr.setRequestHeader("Content-Type", "application/octet-stream");
          xhr.setRequestHeader("X-Torchscope", "1");  // what a cross-site form cannot send (issue 9)
          xhr.upload.onprogress = (e) => {
            if (!e.lengthComputable) return;
            progress.hidden = false;
            progress.max = e.total;
            progress.value = e.loaded;
            progress.title = fmtBytes(e.loaded) + " of " + fmtBytes(e.total);
          };
          xhr.onload = () => {
            let body = null;
            try { body = JSON.parse(xhr.responseText); } catch (_) { body = { detail: xhr.statusText }; }
            if (xhr.status >= 200 && xhr.status < 300) { resolve(body); return; }
            const err = new Error((body && body.detail) || xhr.statusText);
            err.status = xhr.status;
            reject(err);
          };
          xhr.onerror = () => reject(new Error("the upload was interrupted"));
          xhr.send(file);
        });
        window.location.href = "/checkpoints/" + encodeURIComponent(data.id);
      } catch (err) {
        showError("upload-error", err);
      } finally {
        button.disabled = false;
        progress.hidden = true;
      }
    });
  }
  const openForm = document.getElementById("open-form");
  if (openForm) {
    openForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError("open-error");
      try {
        const ckpt = await api("/api/checkpoints/open", { method: "POST", body: { path: document.getElementById("open-path").value } });
        window.location.href = "/checkpoints/" + encodeURIComponent(ckpt.id);
      } catch (err) {
        showError("open-error", err);
      }
    });
  }

  // ------------------------------------------------------------------ checkpoint page
  const treeEl = document.getElementById("tensor-tree");
  if (!treeEl) return;
  const cid = treeEl.dataset.checkpoint;
  const base = "/api/checkpoints/" + encodeURIComponent(cid);
  let detail = null;

  // Keys grouped into a tree: container levels ("/") then dotted module prefixes, like the module tree.
  function buildTree(tensors) {
    const root = { name: "", children: new Map(), tensors: [], bytes: 0, count: 0 };
    for (const t of tensors) {
      const parts = t.key.split("/").flatMap((p, i, all) => (i === all.length - 1 ? p.split(".") : [p]));
      let node = root;
      node.bytes += t.bytes; node.count += 1;
      for (const part of parts.slice(0, -1)) {
        if (!node.children.has(part)) node.children.set(part, { name: part, children: new Map(), tensors: [], bytes: 0, count: 0 });
        node = node.children.get(part);
        node.bytes += t.bytes; node.count += 1;
      }
      node.tensors.push({ leaf: parts[parts.length - 1], t });
    }
    return root;
  }

  function renderGroup(node, depth) {
    const ul = el("ul", { class: depth === 0 ? "root" : "children" });
    for (const child of node.children.values()) {
      const li = el("li", { class: "node group", "data-prefix": child.name });
      const kids = renderGroup(child, depth + 1);
      const open = depth < 1 || child.count <= 12;
      kids.hidden = !open;
      const toggle = el("button", { type: "button", class: "toggle", "aria-expanded": String(open), text: open ? "▾" : "▸" });
      toggle.addEventListener("click", () => {
        kids.hidden = !kids.hidden;
        toggle.textContent = kids.hidden ? "▸" : "▾";
        toggle.setAttribute("aria-expanded", String(!kids.hidden));
      });
      li.append(toggle, el("span", { class: "node-name", text: child.name }), " ",
        el("span", { class: "node-count", text: fmt(child.count) + " · " + fmtBytes(child.bytes) }), kids);
      ul.append(li);
    }
    for (const { leaf, t } of node.tensors) {
      const a = el("a", { href: "#", class: "tensor-link", "data-key": t.key, text: leaf });
      ul.append(el("li", { class: "node tensor", "data-key": t.key }, el("span", { class: "toggle" }, "·"), a, " ",
        el("span", { class: "node-class", text: t.dtype }), " ",
        el("span", { class: "node-extra", text: "[" + t.shape.join(", ") + "]" }), " ",
        el("span", { class: "node-count", text: fmtBytes(t.bytes) }),
        t.group !== "model" ? el("span", { class: "badge", text: t.group }) : null));
    }
    return ul;
  }

  function renderTree(filter) {
    const tensors = detail.tensors.filter(t => !filter || t.key.toLowerCase().includes(filter.toLowerCase()));
    document.getElementById("tensor-count").textContent = fmt(tensors.length);
    treeEl.replaceChildren(renderGroup(buildTree(tensors), 0));
  }

  document.addEventListener("click", (ev) => {
    const link = ev.target.closest && ev.target.closest("a.tensor-link");
    if (!link) return;
    ev.preventDefault();
    showHistogram(link.dataset.key);
  });

  // Histogram payloads: TensorBoard-style buckets [left, right, count], or edges + counts.
  function bars(h) {
    if (Array.isArray(h.buckets)) {
      return { x: h.buckets.map(b => (b[0] + b[1]) / 2), y: h.buckets.map(b => b[2]), w: h.buckets.map(b => b[1] - b[0]) };
    }
    const edges = h.edges || h.bin_edges || [];
    const counts = h.counts || [];
    return { x: counts.map((_, i) => (edges[i] + edges[i + 1]) / 2), y: counts, w: counts.map((_, i) => edges[i + 1] - edges[i]) };
  }

  async function showHistogram(key) {
    const chart = document.getElementById("hist-chart");
    chart.removeAttribute("data-ready");
    clearError("hist-error");
    document.getElementById("hist-key").textContent = key;
    document.getElementById("hist-hint").hidden = true;
    try {
      const h = await api(base + "/histogram?bins=64&key=" + encodeURIComponent(key));
      const b = bars(h);
      const stats = Object.assign({ numel: h.numel }, h.stats || {});
      const shown = ["numel", "min", "max", "mean", "std", "zeros", "nan", "inf"].filter(k => typeof stats[k] === "number");
      document.getElementById("hist-stats").textContent = shown.map(k => k + " " + fmt(stats[k])).join(" · ");
      await Plotly.newPlot(chart, [{ type: "bar", x: b.x, y: b.y, width: b.w, name: key, marker: { color: "#2563eb" } }],
        { margin: { t: 10, r: 10, b: 40, l: 50 }, bargap: 0, xaxis: { title: { text: "value" } }, yaxis: { title: { text: "count" } } },
        { displaylogo: false, responsive: true });
      chart.dataset.ready = "1";
      chart.dataset.key = key;
    } catch (err) {
      showError("hist-error", err);
      chart.dataset.ready = "error";
    }
  }

  // ------------------------------------------------------------------ compare / load
  function fillList(id, keys) {
    const ul = document.getElementById(id);
    ul.replaceChildren(...keys.slice(0, 500).map(k => el("li", {}, el("code", { text: k }))));
    if (keys.length > 500) ul.append(el("li", { class: "muted", text: "… " + (keys.length - 500) + " more" }));
  }

  function fillTable(id, rows) {
    const tbody = document.querySelector("#" + id + " tbody");
    tbody.replaceChildren(...rows.map(r => el("tr", { "data-key": r.key }, el("td", {}, el("code", { text: r.key })),
      el("td", { text: Array.isArray(r.checkpoint) ? "[" + r.checkpoint.join(", ") + "]" : r.checkpoint }),
      el("td", { text: Array.isArray(r.model) ? "[" + r.model.join(", ") + "]" : r.model }))));
  }

  function prefixes() {
    return { strip_prefix: document.getElementById("strip-prefix").value, add_prefix: document.getElementById("add-prefix").value };
  }

  async function runCompare() {
    const result = document.getElementById("compare-result");
    result.removeAttribute("data-ready");
    clearError("compare-error");
    const model = document.getElementById("compare-model").value;
    const p = prefixes();
    const qs = new URLSearchParams({ model, strip_prefix: p.strip_prefix, add_prefix: p.add_prefix });
    try {
      const r = await api(base + "/compare?" + qs.toString());
      const verdict = document.getElementById("compare-verdict");
      verdict.replaceChildren(r.strict_ok
        ? el("span", { class: "badge ok", text: "strict load would succeed" })
        : el("span", { class: "badge err", text: "strict load would fail" }),
        " " + matchText(r));
      const hints = document.getElementById("compare-hints");
      hints.replaceChildren(...r.hints.map(h => {
        const box = el("div", { class: "finding hint", "data-kind": h.kind }, el("div", { class: "finding-msg", text: h.message }));
        if (h.fix.strip_prefix || h.fix.add_prefix) {
          box.append(el("button", { type: "button", class: "apply-fix", text: "Apply", onclick: () => {
            document.getElementById("strip-prefix").value = h.fix.strip_prefix || "";
            document.getElementById("add-prefix").value = h.fix.add_prefix || "";
            runCompare();
          } }));
        }
        return box;
      }));
      fillList("missing-list", r.missing);
      fillList("unexpected-list", r.unexpected);
      document.getElementById("missing-count").textContent = fmt(r.missing.length);
      document.getElementById("unexpected-count").textContent = fmt(r.unexpected.length);
      document.getElementById("shape-count").textContent = fmt(r.shape_mismatch.length);
      document.getElementById("dtype-count").textContent = fmt(r.dtype_mismatch.length);
      fillTable("shape-table", r.shape_mismatch);
      fillTable("dtype-table", r.dtype_mismatch);
      document.getElementById("torch-message").textContent = r.torch_message || "nothing: it would load";
      showOptimizerNames(r.optimizer_names);
      result.hidden = false;
      result.dataset.ready = "1";
    } catch (err) {
      showError("compare-error", err);
    }
  }

  // "N of M model keys match": BatchNorm's num_batches_tracked counters fit any checkpoint (torch even
  // fills them in), so they are counted apart and never make an unrelated checkpoint look like a match.
  function matchText(r) {
    const weights = r.model_keys - r.counter_keys;
    let text = fmt(r.matched_weights) + " of " + fmt(weights) + " model keys match (" + fmt(r.checkpoint_keys) + " in the checkpoint)";
    if (r.counter_keys) {
      text += "; " + fmt(r.matched_counters) + " of " + fmt(r.counter_keys) +
        " BatchNorm num_batches_tracked counters, not counted: they fit any checkpoint";
    }
    return text + ".";
  }

  // Optimizer ids -> parameter names: saved ones, guesses (marked), and "unknown" where several fit.
  function showOptimizerNames(on) {
    const box = document.getElementById("optimizer-names");
    box.textContent = on ? (on.warning || "optimizer parameter names: " + on.names_from) : "";
    if (!on) return;
    for (const [id, status] of Object.entries(on.status || {})) {
      const name = on.names[id];
      document.querySelectorAll('tr[data-param="' + id + '"] .param-name').forEach(td => {
        td.dataset.status = status;
        if (status === "saved") td.replaceChildren(el("code", { text: name }));
        else if (status === "guess") td.replaceChildren(el("code", { text: name }), " ", el("span", { class: "badge warn", text: "guess" }));
        else td.replaceChildren(el("span", { class: "badge", text: "unknown" }));
      });
    }
  }

  async function runLoad(strict) {
    clearError("load-error");
    const box = document.getElementById("load-result");
    box.hidden = true;
    const body = { model: document.getElementById("compare-model").value, strict, ...prefixes() };
    try {
      const r = await api(base + "/load", { method: "POST", body });
      const parts = ["Loaded " + fmt(r.loaded) + " tensors into " + r.model + (strict ? " (strict)." : " (non-strict).")];
      if (r.missing.length) parts.push("Missing (kept the model's values): " + r.missing.join(", ") + ".");
      if (r.unexpected.length) parts.push("Unexpected (ignored): " + r.unexpected.join(", ") + ".");
      if (r.skipped.length) parts.push("Skipped (shape mismatch): " + r.skipped.join(", ") + ".");
      box.textContent = parts.join(" ");
      box.hidden = false;
      box.dataset.ready = "1";
    } catch (err) {
      showError("load-error", err);
    }
  }

  document.getElementById("compare-button").addEventListener("click", runCompare);
  document.getElementById("load-strict").addEventListener("click", () => runLoad(true));
  document.getElementById("load-nonstrict").addEventListener("click", () => runLoad(false));

  // ------------------------------------------------------------------ diff
  async function runDiff() {
    clearError("diff-error");
    const result = document.getElementById("diff-result");
    result.removeAttribute("data-ready");
    const [kind, id] = document.getElementById("diff-target").value.split(/:(.*)/s);
    try {
      const qs = new URLSearchParams(prefixes());  // the compare panel's key fix applies here too
      qs.set(kind === "model" ? "model" : "other", id);
      const d = await api(base + "/diff?" + qs.toString());
      document.getElementById("diff-summary").textContent =
        "a = " + d.a + ", b = " + d.b + ": " + d.common.length + " common (" + d.unchanged + " unchanged), " +
        d.added.length + " added, " + d.removed.length + " removed, " + d.reshaped.length + " reshaped, " + d.retyped.length + " retyped.";
      const rows = d.common.map(r => el("tr", { "data-key": r.key }, el("td", {}, el("code", { text: r.key })),
        el("td", { text: "[" + r.shape.join(", ") + "]" + (r.dtype_a !== r.dtype_b ? " " + r.dtype_a + "→" + r.dtype_b : "") }),
        el("td", { class: "num", text: fmt(r.max_abs) }), el("td", { class: "num", text: fmt(r.rel_l2) }),
        el("td", { class: "num", text: fmt(r.cosine) })));
      for (const [label, keys] of [["added", d.added], ["removed", d.removed]]) {
        for (const k of keys) rows.push(el("tr", { "data-key": k, class: label }, el("td", {}, el("code", { text: k })), el("td", { text: label }), el("td"), el("td"), el("td")));
      }
      for (const r of d.reshaped) {
        rows.push(el("tr", { "data-key": r.key, class: "reshaped" }, el("td", {}, el("code", { text: r.key })),
          el("td", { text: "reshaped [" + r.a.join(", ") + "] → [" + r.b.join(", ") + "]" }), el("td"), el("td"), el("td")));
      }
      for (const row of rows.slice(0, d.common.length)) {
        row.classList.add("clickable");
        row.title = "overlay the two histograms";
        row.addEventListener("click", () => overlay(row.dataset.key, qs));
      }
      document.querySelector("#diff-table tbody").replaceChildren(...rows);
      result.hidden = false;
      result.dataset.ready = "1";
    } catch (err) {
      showError("diff-error", err);
    }
  }
  document.getElementById("diff-button").addEventListener("click", runDiff);

  // Histogram overlay of one common tensor, a vs b, both binned by the server.
  async function overlay(key, qs) {
    const chart = document.getElementById("hist-chart");
    chart.removeAttribute("data-ready");
    clearError("hist-error");
    document.getElementById("hist-key").textContent = key + " (a vs b)";
    document.getElementById("hist-hint").hidden = true;
    try {
      const q = new URLSearchParams(qs);
      q.set("key", key);
      const r = await api(base + "/diff/histogram?" + q.toString());
      const ba = bars(r.a), bb = bars(r.b);
      document.getElementById("hist-stats").textContent =
        "a mean " + fmt(r.a.stats.mean) + " std " + fmt(r.a.stats.std) + " · b mean " + fmt(r.b.stats.mean) + " std " + fmt(r.b.stats.std);
      await Plotly.newPlot(chart, [
        { type: "bar", x: ba.x, y: ba.y, width: ba.w, name: "a: " + r.a_label, opacity: 0.55, marker: { color: "#2563eb" } },
        { type: "bar", x: bb.x, y: bb.y, width: bb.w, name: "b: " + r.b_label, opacity: 0.55, marker: { color: "#ee4c2c" } },
      ], { barmode: "overlay", bargap: 0, margin: { t: 10, r: 10, b: 40, l: 50 }, legend: { orientation: "h" } },
      { displaylogo: false, responsive: true });
      chart.dataset.ready = "1";
      chart.dataset.key = key;
      document.getElementById("hist-panel").scrollIntoView({ block: "nearest" });
    } catch (err) {
      showError("hist-error", err);
      chart.dataset.ready = "error";
    }
  }

  document.getElementById("tensor-filter").addEventListener("input", window.ts.debounce((ev) => renderTree(ev.target.value), 150));

  api(base).then(d => { detail = d; renderTree(""); treeEl.dataset.ready = "1"; })
    .catch(err => showError("hist-error", err));
})();
