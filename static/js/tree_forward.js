// The structure page's tree, with what flows through it: each node's output shape and FLOPs
// (own / subtree, with the share of the model's total as a bar), sortable among siblings.
// It decorates the nodes model.js renders (a MutationObserver sees lazily loaded ones too), so
// model.js needs no change. Inputs: those last run on the Forward page, else the served ones.
(function () {
  "use strict";
  const { api, fmt, fmtBytes, el } = window.ts;
  const { si, short } = window.tsShapes;
  const treeEl = document.getElementById("tree");
  const panel = document.getElementById("tree-panel");
  const note = document.getElementById("tree-fwd-note");
  const modelId = treeEl.dataset.model;
  const base = "/api/models/" + encodeURIComponent(modelId) + "/forward/modules";
  const storeKey = "torchscope:forward-inputs:" + modelId;
  const forwardPage = "/models/" + encodeURIComponent(modelId) + "/forward";
  let nodes = null, total = 0, sortKey = null, sortDir = -1;

  function decorate(li) {
    if (li.dataset.fwd || li.classList.contains("more-children")) return;
    const n = nodes[li.dataset.path];
    const ul = li.parentElement;
    li.dataset.fwd = "1";
    li.dataset.order = ul ? String(Array.prototype.indexOf.call(ul.children, li)) : "0";
    const cols = el("span", { class: "node-fwd" });
    if (n) {
      const share = total ? Math.min(1, n.flops_total / total) : 0;
      const times = n.calls > 1 ? " ×" + n.calls : "";
      cols.append(
        el("span", { class: "fwd-out", title: "output of the first call: " + short(n.output, 400) + (times ? " (" + n.calls + " calls)" : ""), text: short(n.output, 28) + times }),
        el("span", { class: "fwd-own", title: fmt(n.flops) + " FLOPs in this module's own ops", text: n.flops ? si(n.flops) : "--" }),
        el("span", { class: "fwd-total", title: fmt(n.flops_total) + " FLOPs in the subtree · " + (100 * share).toFixed(1) + "% of the model" },
          el("span", { class: "share", "aria-hidden": "true" }, el("span", { style: "width:" + (100 * share).toFixed(1) + "%" })),
          n.flops_total ? si(n.flops_total) : "--"));
      li.dataset.flops = String(n.flops);
      li.dataset.flopsTotal = String(n.flops_total);
      li.dataset.outputBytes = String(n.output_bytes);
    } else {
      cols.append(el("span", { class: "fwd-out muted", title: "this module was not called by the forward", text: "not called" }), el("span"), el("span"));
      li.dataset.flops = li.dataset.flopsTotal = li.dataset.outputBytes = "-1";
    }
    const kids = li.querySelector(":scope > ul.children");
    li.insertBefore(cols, kids);
  }

  const DATA = { flops: "flops", flops_total: "flopsTotal", output_bytes: "outputBytes" };
  function sortList(ul) {
    const items = Array.from(ul.children).filter(li => li.matches("li.node:not(.more-children)"));
    const rest = Array.from(ul.children).filter(li => !items.includes(li));
    const key = sortKey ? DATA[sortKey] : null;
    items.sort((a, b) => key ? ((Number(a.dataset[key]) - Number(b.dataset[key])) * sortDir || Number(a.dataset.order) - Number(b.dataset.order))
      : Number(a.dataset.order) - Number(b.dataset.order));
    if (items.every((li, i) => ul.children[i] === li)) return;
    ul.append(...items, ...rest);
  }

  const observer = new MutationObserver(records => {
    const lists = new Set();
    for (const r of records) {
      for (const node of r.addedNodes) {
        if (!(node instanceof Element)) continue;
        const found = node.matches("li.node") ? [node, ...node.querySelectorAll("li.node")] : node.querySelectorAll("li.node");
        for (const li of found) { decorate(li); if (li.parentElement) lists.add(li.parentElement); }
      }
    }
    if (sortKey) withoutObserver(() => lists.forEach(sortList));
  });
  function watch() { observer.observe(treeEl, { childList: true, subtree: true }); }
  function withoutObserver(fn) { observer.disconnect(); try { fn(); } finally { observer.takeRecords(); watch(); } }

  function setSort(key) {
    if (sortKey !== key) { sortKey = key; sortDir = -1; } else if (sortDir < 0) sortDir = 1; else sortKey = null;
    document.querySelectorAll("#tree-fwd-head button[data-key]").forEach(b => {
      const on = b.dataset.key === sortKey;
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.textContent = b.dataset.label + (on ? (sortDir < 0 ? " ▼" : " ▲") : "");
    });
    withoutObserver(() => treeEl.querySelectorAll("ul.root, ul.children").forEach(sortList));
    treeEl.dataset.sort = sortKey ? sortKey + (sortDir < 0 ? ":desc" : ":asc") : "";
  }
  document.querySelectorAll("#tree-fwd-head button[data-key]").forEach(b => b.addEventListener("click", () => setSort(b.dataset.key)));

  async function load() {
    let given = null;
    try { given = JSON.parse(sessionStorage.getItem(storeKey) || "null"); } catch (e) { given = null; }
    try {
      const d = given === null ? await api(base) : await api(base, { method: "POST", body: { inputs: given } });
      if (d.state !== "ok") {
        note.replaceChildren("No output shapes or FLOPs: " + d.detail + " ",
          el("a", { href: forwardPage, text: d.state === "no-inputs" ? "Set the inputs on the Forward tab" : "See the Forward tab" }), ".");
        treeEl.dataset.forward = d.state;
      } else {
        nodes = d.nodes;
        total = d.flops;
        treeEl.classList.add("with-forward");
        panel.classList.add("with-forward");
        note.replaceChildren("Output of each module and its FLOPs, from one forward on ", el("b", { text: d.mode }),
          " tensors with inputs " + d.inputs + " (" + d.source + "): " + si(total) + " FLOPs in all. ",
          el("a", { href: forwardPage, text: "Every call on the Forward tab" }), ".");
        withoutObserver(() => treeEl.querySelectorAll("li.node").forEach(decorate));
        watch();
        treeEl.dataset.forward = "ready";
      }
    } catch (err) {
      note.replaceChildren("No output shapes or FLOPs: " + (err.message || err) + " ",
        el("a", { href: forwardPage, text: "See the Forward tab" }), ".");
      treeEl.dataset.forward = "error";
    }
    note.hidden = false;
  }
  // A model of thousands of modules takes seconds to run even on fake tensors: ask first.
  if (treeEl.dataset.forwardAuto === "1") {
    load();
  } else {
    note.replaceChildren(el("button", { type: "button", id: "tree-fwd-load", text: "Show output shapes and FLOPs",
      onclick: () => { note.textContent = "running one forward on fake tensors…"; load(); } }),
      " one forward on fake tensors; with this many modules it can take a while. ", el("a", { href: forwardPage, text: "Forward tab" }));
    note.hidden = false;
  }
})();
