// The structure page: lazy module tree, search, flat named_modules() view, sortable tables.
(function () {
  "use strict";
  const { api, showError, clearError, debounce, fmt, fmtBytes, el } = window.ts;
  const treeEl = document.getElementById("tree");
  const flatEl = document.getElementById("flat");
  const modelId = treeEl.dataset.model;
  const base = "/api/models/" + encodeURIComponent(modelId);
  const PAGE = 200;
  const lintModules = new Set(JSON.parse(treeEl.dataset.lint || "[]"));

  // ------------------------------------------------------------------ tree
  function nodeLabel(n) {
    const label = el("span", { class: "node-label" },
      el("span", { class: "node-name", text: n.path === "" ? "(model)" : n.name }),
      " ",
      el("span", { class: "node-class", text: n["class"] }));
    if (n.extra_repr) label.append(" ", el("span", { class: "node-extra", title: n.extra_repr, text: n.extra_repr }));
    label.append(" ", el("span", { class: "node-count", title: "parameters: own / in subtree",
      text: fmt(n.params_own) + " / " + fmt(n.params_total) }));
    if (n.buffers_total) label.append(" ", el("span", { class: "node-buf", title: "buffer elements in subtree", text: "buf " + fmt(n.buffers_total) }));
    if (n.shared) label.append(" ", el("span", { class: "badge shared", title: "the same module object is also at: " + n.shared_with.join(", "), text: "shared" }));
    if (n.tensors) {
      // Each own tensor opens its histogram on the Weights page.
      const links = el("span", { class: "node-tensors" });
      n.tensors.forEach(t => links.append(el("a", { href: "/models/" + encodeURIComponent(modelId) + "/weights?tensor=" + encodeURIComponent(n.path ? n.path + "." + t : t), title: "histogram of " + (n.path ? n.path + "." + t : t), text: t })));
      label.append(" ", links);
    }
    if (n.params_total > 0 && n.params_frozen === n.params_total) {
      label.append(" ", el("span", { class: "badge frozen", title: "every parameter here has requires_grad=False", text: "frozen" }));
    } else if (n.params_frozen > 0) {
      label.append(" ", el("span", { class: "badge frozen", title: "requires_grad=False elements in this subtree", text: "frozen " + fmt(n.params_frozen) + " of " + fmt(n.params_total) }));
    }
    if (n.tied) {
      for (const [local, others] of Object.entries(n.tied)) {
        label.append(" ", el("span", { class: "badge shared", title: "one tensor under several names, counted once", text: "tied: " + local + " = " + others.join(", ") }));
      }
    }
    if (lintModules.has(n.path)) label.append(" ", el("a", { class: "badge warn", href: "#lint", title: "see the lint findings above", text: "lint" }));
    if (n.training === false) label.append(" ", el("span", { class: "badge", text: "eval" }));
    return label;
  }

  function renderNode(n, expanded) {
    const li = el("li", { class: "node", "data-path": n.path, "data-class": n["class"] });
    if (n.match) li.classList.add("match");
    const hasKids = n.child_count > 0;
    const toggle = el("button", { type: "button", class: "toggle", "aria-label": "expand " + (n.path || "model"),
      "aria-expanded": "false", disabled: !hasKids, text: hasKids ? "▸" : "·" });
    li.append(toggle, nodeLabel(n));
    const ul = el("ul", { class: "children" });
    ul.hidden = true;
    li.append(ul);
    if (Array.isArray(n.children)) {
      appendChildren(ul, n.children, expanded);
      li.dataset.loaded = "1";
      if (expanded && hasKids) setOpen(li, true);
    }
    toggle.addEventListener("click", () => onToggle(li));
    return li;
  }

  // Very wide nodes (thousands of children) render in pages of CHILD_PAGE.
  const CHILD_PAGE = 500;
  function appendChildren(ul, children, expanded, start) {
    const from = start || 0;
    children.slice(from, from + CHILD_PAGE).forEach(c => ul.append(renderNode(c, expanded)));
    const left = children.length - from - CHILD_PAGE;
    if (left > 0) {
      const more = el("li", { class: "node more-children" });
      more.append(el("button", { type: "button", class: "more", text: "Show " + Math.min(left, CHILD_PAGE) + " more of " + left + " remaining",
        onclick: () => { more.remove(); appendChildren(ul, children, expanded, from + CHILD_PAGE); } }));
      ul.append(more);
    }
  }

  function setOpen(li, open) {
    const ul = li.querySelector(":scope > ul.children");
    const t = li.querySelector(":scope > .toggle");
    ul.hidden = !open;
    t.textContent = open ? "▾" : "▸";
    t.setAttribute("aria-expanded", open ? "true" : "false");
    li.classList.toggle("open", open);
  }

  async function onToggle(li) {
    const open = li.classList.contains("open");
    if (open) { setOpen(li, false); return; }
    if (!li.dataset.loaded) {
      li.classList.add("loading");
      try {
        const sub = await api(base + "/tree?depth=1&path=" + encodeURIComponent(li.dataset.path));
        const ul = li.querySelector(":scope > ul.children");
        appendChildren(ul, sub.children || [], false);
        li.dataset.loaded = "1";
      } catch (err) {
        showError("tree-error", err);
        return;
      } finally {
        li.classList.remove("loading");
      }
    }
    setOpen(li, true);
  }

  async function loadTree() {
    clearError("tree-error");
    treeEl.dataset.ready = "";
    const root = await api(base + "/tree?depth=2&max_nodes=400");
    treeEl.replaceChildren(el("ul", { class: "root" }, renderNode(root, false)));
    const rootLi = treeEl.querySelector("li.node");
    // The model's own children are always shown; a very wide root loads them now (first page rendered).
    if (root.child_count) {
      if (rootLi.dataset.loaded) setOpen(rootLi, true); else await onToggle(rootLi);
    }
    treeEl.dataset.ready = "1";
  }

  // What the tree shows now ("" = the whole tree): the search box may change while the flat view
  // is up, and the tree must follow the box when it comes back (issue 8).
  let treeQuery = "";
  async function search(q) {
    clearError("tree-error");
    treeQuery = q;
    if (!q.trim()) { await loadTree(); return; }
    treeEl.dataset.ready = "";
    const res = await api(base + "/tree?q=" + encodeURIComponent(q));
    const info = el("div", { class: "search-info muted", text: res.matches.length + " match(es)" + (res.truncated ? " (first " + res.matches.length + " shown)" : "") });
    if (!res.matches.length) {
      treeEl.replaceChildren(info);
    } else {
      treeEl.replaceChildren(info, el("ul", { class: "root" }, renderNode(res.tree, true)));
      // Nodes in a search result are partial: reload them fully when the user expands again.
      treeEl.querySelectorAll("li.node").forEach(li => { if (!li.classList.contains("open")) delete li.dataset.loaded; });
    }
    treeEl.dataset.ready = "1";
  }

  // ------------------------------------------------------------------ flat view
  let flatData = null, flatShown = 0;
  function flatRows(filter) {
    const f = (filter || "").toLowerCase();
    return flatData.modules.filter(r => !f || r.path.toLowerCase().includes(f) || r["class"].toLowerCase().includes(f));
  }
  function renderFlat(filter, more) {
    const rows = flatRows(filter);
    flatShown = more ? flatShown + 500 : 500;
    const table = el("table", { class: "grid", id: "flat-table" },
      el("thead", {}, el("tr", {}, el("th", { text: "named_modules() path" }), el("th", { text: "class" }),
        el("th", { class: "num", text: "own params" }), el("th", { class: "num", text: "subtree params" }), el("th", { text: "also at" }))));
    const tb = el("tbody");
    rows.slice(0, flatShown).forEach(r => tb.append(el("tr", { "data-path": r.path },
      el("td", {}, el("code", { text: r.path === "" ? '""  (the model itself)' : r.path })),
      el("td", { text: r["class"] }), el("td", { class: "num", text: fmt(r.params_own) }),
      el("td", { class: "num", text: fmt(r.params_total) }), el("td", { text: r.also_at.join(", ") }))));
    table.append(tb);
    const head = el("p", { class: "flat-explain" },
      el("b", { text: "children(): " + flatData.children.length }), " direct submodules (" +
      flatData.children.map(c => c.name).join(", ") + ") · ",
      el("b", { text: "modules() / named_modules(): " + flatData.named_modules_count }),
      " — every module, recursively, the model itself included, each object once" +
      (flatData.occurrences !== flatData.named_modules_count ? " (" + flatData.occurrences + " tree positions: some modules are shared)" : "") + ".");
    const nodes = [head, table];
    if (rows.length > flatShown) nodes.push(el("button", { type: "button", class: "more", text: "Show more (" + (rows.length - flatShown) + " left)", onclick: () => renderFlat(filter, true) }));
    flatEl.replaceChildren(...nodes);
    flatEl.dataset.ready = "1";
  }

  async function showView(view) {
    const flat = view === "flat";
    document.getElementById("view-tree").classList.toggle("on", !flat);
    document.getElementById("view-flat").classList.toggle("on", flat);
    document.getElementById("view-tree").setAttribute("aria-pressed", String(!flat));
    document.getElementById("view-flat").setAttribute("aria-pressed", String(flat));
    treeEl.hidden = flat; flatEl.hidden = !flat;
    document.getElementById("tree-explain").hidden = flat;
    const q = document.getElementById("tree-search").value;
    if (!flat && q !== treeQuery) search(q).catch(err => showError("tree-error", err));
    if (flat) {
      try {
        if (!flatData) flatData = await api(base + "/modules");
        renderFlat(document.getElementById("tree-search").value, false);
      } catch (err) { showError("tree-error", err); }
    }
  }

  // ------------------------------------------------------------------ tables
  function makeTable(opts) {
    const table = document.getElementById(opts.table);
    const tbody = table.querySelector("tbody");
    const moreBtn = document.getElementById(opts.more);
    let rows = [], view = [], shown = 0, sortKey = null, sortDir = 1, filter = "";
    function cmp(a, b) {
      let x = a[sortKey], y = b[sortKey];
      if (Array.isArray(x)) { x = sortKey === "shape" ? x.reduce((p, v) => p * v, 1) : x.length; y = sortKey === "shape" ? y.reduce((p, v) => p * v, 1) : y.length; }
      if (x === y) return 0;
      return (x > y ? 1 : -1) * sortDir;
    }
    function apply() {
      const f = filter.toLowerCase();
      view = rows.filter(r => !f || r.name.toLowerCase().includes(f));
      if (sortKey) view.sort(cmp);
      shown = 0; tbody.replaceChildren(); more();
      // Rows are names (tied weights have several); the summary card counts distinct tensors.
      const tensors = parseInt(table.closest("[data-tensors]").dataset.tensors, 10);
      const names = fmt(rows.length) + (rows.length === 1 ? " name" : " names");
      document.getElementById(opts.count).textContent = "(" + (view.length !== rows.length ? fmt(view.length) + " of " + names
        : tensors !== rows.length ? names + ", " + fmt(tensors) + (tensors === 1 ? " tensor" : " tensors") : fmt(rows.length)) + ")";
      if (!view.length) {
        const cols = table.querySelectorAll("thead th").length;
        tbody.append(el("tr", { class: "empty" }, el("td", { colspan: String(cols),
          text: rows.length ? "no name contains " + JSON.stringify(filter) : opts.empty })));
      }
    }
    function more() {
      const next = view.slice(shown, shown + PAGE);
      next.forEach(r => tbody.append(opts.row(r)));
      shown += next.length;
      moreBtn.hidden = shown >= view.length;
      moreBtn.textContent = "Show more (" + (view.length - shown) + " left)";
    }
    table.querySelectorAll("th[data-key]").forEach(th => th.addEventListener("click", () => {
      const k = th.dataset.key;
      sortDir = sortKey === k ? -sortDir : 1; sortKey = k;
      table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      apply();
    }));
    moreBtn.addEventListener("click", more);
    return {
      set(data) { rows = data; apply(); table.dataset.ready = "1"; },
      filter(f) { filter = f; apply(); },
    };
  }

  const shape = s => s === null ? "uninitialized" : "[" + s.join(", ") + "]";
  const params = makeTable({ table: "params-table", more: "params-more", count: "params-count", empty: "this model has no parameters", row: r => el("tr", { "data-name": r.name, class: r.requires_grad ? "" : "frozen" },
    el("td", {}, el("a", { href: "/models/" + encodeURIComponent(modelId) + "/weights?tensor=" + encodeURIComponent(r.name), title: "histogram", text: r.name })),
    el("td", { text: shape(r.shape) }), el("td", { text: r.dtype }), el("td", { text: r.device }),
    el("td", { text: String(r.requires_grad) }), el("td", { class: "num", text: fmt(r.numel) }),
    el("td", { class: "num", text: fmtBytes(r.bytes) }),
    el("td", {}, r.shared_with.length ? el("span", { class: "badge shared", title: "the same tensor (counted once)", text: "tied: " + r.shared_with.join(", ") }) : "")) });
  const buffers = makeTable({ table: "buffers-table", more: "buffers-more", count: "buffers-count", empty: "this model has no buffers", row: r => el("tr", { "data-name": r.name },
    el("td", {}, el("a", { href: "/models/" + encodeURIComponent(modelId) + "/weights?tensor=" + encodeURIComponent(r.name), text: r.name })),
    el("td", { text: shape(r.shape) }), el("td", { text: r.dtype }),
    el("td", {}, el("span", { class: r.persistent ? "badge ok" : "badge warn", text: r.persistent ? "persistent" : "non-persistent" })),
    el("td", { class: "num", text: fmt(r.numel) }), el("td", { class: "num", text: fmtBytes(r.bytes) })) });

  // ------------------------------------------------------------------ wiring
  const searchBox = document.getElementById("tree-search");
  searchBox.addEventListener("input", debounce(() => {
    if (!flatEl.hidden && flatData) { renderFlat(searchBox.value, false); return; }
    search(searchBox.value).catch(err => showError("tree-error", err));
  }, 250));
  document.getElementById("view-tree").addEventListener("click", () => showView("tree"));
  document.getElementById("view-flat").addEventListener("click", () => showView("flat"));
  document.getElementById("expand-all").addEventListener("click", async () => {
    try {
      const full = await api(base + "/tree");
      treeEl.replaceChildren(el("ul", { class: "root" }, renderNode(full, true)));
      searchBox.value = treeQuery = "";  // the whole tree is shown: the box must not say otherwise
    } catch (err) { showError("tree-error", err); }
  });
  document.getElementById("params-filter").addEventListener("input", debounce(e => params.filter(e.target.value), 150));

  // ?q=PATH (the graph page's "show in the module tree" link): search for it once the tree is there.
  const wanted = new URLSearchParams(location.search).get("q");
  loadTree().then(() => { if (wanted) { searchBox.value = wanted; return search(wanted); } }).catch(err => showError("tree-error", err));
  api(base + "/parameters").then(params.set).catch(err => showError("params-error", err));
  api(base + "/buffers").then(buffers.set).catch(err => showError("params-error", err));
})();
