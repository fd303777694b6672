// The graph page: one module call's graph at a time from GET /api/models/{id}/graph, composed in
// place as the user expands boxes, laid out by ELK (layered) in a Web Worker, drawn as SVG.
(function () {
  "use strict";
  const { api, request, showError, clearError, debounce, fmt, fmtBytes, el } = window.ts;
  const SVGNS = "http://www.w3.org/2000/svg";
  const panel = document.getElementById("graph-panel");
  const modelId = panel.dataset.model;
  const base = "/api/models/" + encodeURIComponent(modelId);
  const svg = document.getElementById("graph-svg");
  const viewport = document.getElementById("viewport");
  const statusEl = document.getElementById("graph-status");
  const elk = new window.ELK({ workerUrl: panel.dataset.elk });
  const ROOT = "#0";

  const state = {
    views: new Map(),      // "path#call" -> view JSON
    parentOf: new Map(),   // view key -> the view key its box sits in
    expanded: new Set(),   // view keys drawn open
    params: false, overlay: "", capture: "auto", inputs: null,
    selected: null, focus: null,
    nodes: new Map(),      // drawn node id -> {data, viewKey}
    edges: [],             // drawn edges {id, source, target, data}
    seq: 0,
    gen: 0,                // bumped when inputs, capture method or the params toggle change the views
    fetching: new Map(),   // view key -> its request in flight (prefetch)
    transform: { x: 20, y: 20, k: 1 },
  };
  // A block that repeats (GPT-2's h.0 ... h.11): same structure, a module with children.
  const isBlock = n => n.kind === "module" && !n.part && n.repeats > 1 && n.children > 0;
  // A view's key: a module call ("path#call"), or a part of one too wide to draw at once
  // ("path#call/lo-hi": its nodes lo..hi, see the server's parts.py); a box's id is "m:" + its key.
  const key = (path, call, part) => path + "#" + (call || 0) + (part ? "/" + part[0] + "-" + part[1] : "");
  const partOf = n => n.part ? [n.part.lo, n.part.hi] : null;
  const nodeKey = n => key(n.path, n.call, partOf(n));

  // ------------------------------------------------------------------ data
  function graphUrl(path, call, part) {
    const q = new URLSearchParams({ path: path, call: String(call || 0), capture: state.capture });
    if (part) q.set("part", part[0] + "-" + part[1]);
    if (state.params) q.set("params", "true");
    if (state.inputs) q.set("inputs", state.inputs);
    return base + "/graph?" + q;
  }
  async function loadView(path, call, part) {
    const k = key(path, call, part);
    if (!state.views.has(k)) {
      const gen = state.gen, view = await (state.fetching.get(k) || api(graphUrl(path, call, part)));
      if (gen === state.gen) state.views.set(k, view);
      else return loadView(path, call, part);  // fetched for other inputs or options
    }
    return state.views.get(k);
  }
  // While the page is idle, the views of the boxes on screen are fetched (a few ms of server time
  // each, one at a time), so expanding one waits only for its layout.
  const PREFETCH = 24;
  async function prefetch() {
    const gen = state.gen;
    const wanted = [];
    for (const info of state.nodes.values()) {
      const n = info.data;
      if (!info.group && n.kind === "module" && n.expandable && !state.views.has(nodeKey(n))) wanted.push(n);
    }
    for (const n of wanted.slice(0, PREFETCH)) {
      const k = nodeKey(n);
      if (gen !== state.gen || state.views.has(k) || state.fetching.has(k)) continue;
      const pending = request(graphUrl(n.path, n.call, partOf(n)));
      state.fetching.set(k, pending);
      try {
        const view = await pending;
        if (gen === state.gen && !state.views.has(k)) state.views.set(k, view);
      } catch (e) { /* asked again, and shown, when the user expands it */ } finally {
        if (state.fetching.get(k) === pending) state.fetching.delete(k);
      }
    }
  }
  const isOpen = n => n.kind === "module" && state.expanded.has(nodeKey(n)) && state.views.has(nodeKey(n));

  // ------------------------------------------------------------------ composing the visible graph
  const LAYOUT_OPTIONS = {
    "elk.algorithm": "layered", "elk.direction": "DOWN", "elk.hierarchyHandling": "INCLUDE_CHILDREN",
    "elk.json.shapeCoords": "ROOT", "elk.json.edgeCoords": "ROOT",
    "elk.layered.spacing.nodeNodeBetweenLayers": "34", "elk.spacing.nodeNode": "22",
    "elk.edgeLabels.inline": "false", "elk.layered.nodePlacement.strategy": "BRANDES_KOEPF",
    // One sweep of crossing minimisation instead of 7: half the time on a GPT-2 block, and a
    // network's graph is mostly a chain with skips, where more sweeps rarely find fewer crossings.
    "elk.layered.thoroughness": "1" };
  const textWidth = s => 6.4 * String(s).length;
  function shapeText(shape, dtype) {
    return "[" + shape.join("×") + "]" + (dtype && dtype !== "float32" ? " " + dtype : "");
  }
  const badgeWidth = n => 10 + 6.2 * String(n.repeats).length + 6;  // "×12", "×4999"
  function nodeSize(n) {
    const repeat = n.kind === "module" && isBlock(n) ? badgeWidth(n) + 4 : 0;
    const toggle = n.kind === "module" && n.expandable ? 22 : 0;
    const sub = n.kind === "module" ? n["class"] : n.kind === "op" ? (n["class"] || "") : n.members ? n.members.length + " tensors"
      : n.shapes_out.length ? shapeText(n.shapes_out[0].shape, n.shapes_out[0].dtype) : "";
    const w = Math.max(56, textWidth(n.label) + toggle + repeat + 18, textWidth(sub) * 0.95 + 18);
    return { w: Math.min(w, 320), h: n.kind === "module" || sub ? 38 : 26, sub: sub };
  }

  function compose() {
    const root = { id: "root", children: [], edges: [], layoutOptions: LAYOUT_OPTIONS };
    const drawn = new Map();
    const index = new Map();     // view key -> Map(node id -> node)
    const parentEl = new Map();  // node id -> elk container
    const groups = new Map();    // group id -> elk node
    // The model's outputs that share a name (a KV cache: past_key_values.layers.N.keys/values, 24
    // tensors for GPT-2) are one node: 24 boxes say less, and would double the layout's work.
    const alias = new Map();  // output node id -> its group's id
    function outputGroups(v) {
      const byName = new Map(), first = new Map();
      for (const n of v.nodes) {
        if (n.kind !== "output") continue;
        const name = n.label.split(/[.[]/)[0];
        if (!byName.has(name)) byName.set(name, []);
        byName.get(name).push(n);
      }
      for (const [name, list] of byName) {
        if (list.length < 2) continue;
        const group = { id: "outs:" + name, kind: "output", label: name, path: "", "class": "", target: "", params: 0, flops: 0,
          shapes_in: list.flatMap(n => n.shapes_in), shapes_out: [], output_bytes: 0, tensors: [], members: list.map(n => n.label) };
        list.forEach(n => alias.set(n.id, group.id));
        first.set(list[0].id, group);
      }
      return first;
    }
    function addView(vk, container) {
      const v = state.views.get(vk);
      const idx = new Map(v.nodes.map(n => [n.id, n]));
      index.set(vk, idx);
      const groupAt = vk === ROOT ? outputGroups(v) : new Map();
      for (let n of v.nodes) {
        if (vk !== ROOT && (n.kind === "input" || n.kind === "output")) continue;  // ports dissolve into the parent's edges
        if (alias.has(n.id)) {
          if (!groupAt.has(n.id)) continue;  // drawn once, as its group
          n = groupAt.get(n.id);
        }
        if (isOpen(n)) {
          const title = n.label + " · " + n["class"] + (n.call ? " (call " + n.call + ")" : "") + (n.part ? " · part of " + (n.path || "the model") : "") + "  [−]";
          const g = { id: n.id, children: [], edges: [], labels: [{ text: title, width: textWidth(title), height: 14 }],
            layoutOptions: { "elk.padding": "[top=26,left=10,bottom=10,right=10]", "elk.nodeLabels.placement": "H_LEFT V_TOP INSIDE" } };
          container.children.push(g);
          groups.set(n.id, g);
          parentEl.set(n.id, container);
          drawn.set(n.id, { data: n, viewKey: vk, group: true });
          state.parentOf.set(nodeKey(n), vk);
          addView(nodeKey(n), g);
        } else {
          const s = nodeSize(n);
          container.children.push({ id: n.id, width: s.w, height: s.h });
          parentEl.set(n.id, container);
          drawn.set(n.id, { data: n, viewKey: vk, group: false, sub: s.sub });
        }
      }
    }
    addView(ROOT, root);

    function resolveTargets(vk, id, value, depth) {
      if (depth > 64) return [];
      const idx = index.get(vk);
      const n = idx && idx.get(id);
      if (!n) return [];
      if (vk !== ROOT && n.kind === "output") {  // leaves this view: whatever the box feeds in its parent
        const pk = state.parentOf.get(vk);
        const out = [];
        for (const e of state.views.get(pk).edges) {
          if (e.source === "m:" + vk && e.value === value) out.push(...resolveTargets(pk, e.target, value, depth + 1));
        }
        return out;
      }
      if (isOpen(n)) {  // enters an open box: whatever its input port with this tensor feeds
        const ck = nodeKey(n), cidx = index.get(ck), out = [];
        for (const e of state.views.get(ck).edges) {
          const s = cidx.get(e.source);
          if (s && s.kind === "input" && s.value === value) out.push(...resolveTargets(ck, e.target, value, depth + 1));
        }
        return out;
      }
      return [alias.get(id) || id];
    }
    const ancestors = id => { const out = []; let c = parentEl.get(id); while (c) { out.push(c); c = parentEl.get(c.id); } return out; };
    // One drawn edge per (producer, consumer): tensors that go the same way (a block's key and
    // value into the cache) share it, and its label counts them.
    const edges = [], byPair = new Map();
    const edgeLabel = e => shapeText(e.shape, e.dtype) + (e.via ? " · " + e.via.join("·") : "");
    for (const [vk, idx] of index) {
      for (const e of state.views.get(vk).edges) {
        const s = idx.get(e.source);
        if (!s || (vk !== ROOT && s.kind === "input") || isOpen(s)) continue;  // drawn from the tensor's producer only
        for (const t of resolveTargets(vk, e.target, e.value, 0)) {
          const id = e.source + "→" + t;
          if (!drawn.has(t)) continue;
          const known = byPair.get(id);
          if (known) {
            if (!known.values.has(e.value)) { known.values.add(e.value); known.labels.add(edgeLabel(e)); }
            continue;
          }
          const up = ancestors(e.source), down = new Set(ancestors(t));
          const lca = up.find(c => down.has(c)) || root;
          const elkEdge = { id: id, sources: [e.source], targets: [t], labels: [] };
          lca.edges.push(elkEdge);
          byPair.set(id, { elkEdge: elkEdge, values: new Set([e.value]), labels: new Set([edgeLabel(e)]) });
          edges.push({ id: id, source: e.source, target: t, data: e, fromParam: s.kind === "param" || s.kind === "buffer" });
        }
      }
    }
    for (const pair of byPair.values()) {
      const shapes = Array.from(pair.labels), n = pair.values.size;
      const label = n === 1 ? shapes[0] : shapes.length === 1 ? n + " × " + shapes[0] : n + " tensors: " + shapes[0] + ", …";
      pair.elkEdge.labels.push({ text: label, width: textWidth(label) * 0.9, height: 12 });
    }
    return { graph: root, drawn: drawn, edges: edges };
  }

  // ------------------------------------------------------------------ drawing
  function svgEl(tag, attrs, parent) {
    const node = document.createElementNS(SVGNS, tag);
    for (const k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, s, cls) {
    const t = svgEl("text", { x: x, y: y }, parent);
    if (cls) t.setAttribute("class", cls);
    t.textContent = s;
    return t;
  }
  const repColor = sig => "hsl(" + (parseInt(sig.slice(0, 6), 16) % 360) + ",55%,45%)";

  // ELK is Java compiled to JavaScript: its first layouts in a fresh worker run 3-10x slower than
  // later ones, until V8 has optimised its hot code. So the worker is warmed on small layouts
  // while the page is idle (during the capture, after each drawing), one at a time so that a real
  // layout never waits for more than one; they stop once the worker is warm.
  const warm = { left: 10, running: false, layouts: 0 };
  function warmGraph() {
    const opts = LAYOUT_OPTIONS;
    const root = { id: "w", children: [], edges: [], layoutOptions: opts };
    for (let b = 0; b < 3; b++) {
      const g = { id: "w" + b, children: [], edges: [], labels: [{ text: "block", width: 40, height: 14 }],
        layoutOptions: { "elk.padding": "[top=26,left=10,bottom=10,right=10]" } };
      for (let i = 0; i < 6; i++) g.children.push({ id: "w" + b + "." + i, width: 100, height: 38 });
      root.children.push(g);
    }
    const lbl = () => [{ text: "[1×16×768]", width: 70, height: 12 }];
    for (let b = 0; b < 3; b++) {
      for (let i = 1; i < 6; i++) root.edges.push({ id: "e" + b + "." + i, sources: ["w" + b + "." + (i - 1)], targets: ["w" + b + "." + i], labels: lbl() });
      root.edges.push({ id: "r" + b, sources: ["w" + b + ".0"], targets: ["w" + b + ".4"], labels: lbl() });
      if (b) root.edges.push({ id: "x" + b, sources: ["w" + (b - 1) + ".5"], targets: ["w" + b + ".0"], labels: lbl() });
    }
    return root;
  }
  function warmUp() {
    if (warm.running || warm.layouts > 0 || warm.left <= 0) return;
    warm.running = true;
    warm.left--;
    elk.layout(warmGraph()).catch(() => { warm.left = 0; }).then(() => { warm.running = false; setTimeout(warmUp, 0); });
  }

  // ELK takes seconds from about 1,000 nodes and overflows its stack near 3,000: past this, an
  // expansion is refused (the server already cuts any one view wider than 300 nodes into parts).
  const MAX_DRAWN = 1500;
  async function relayout() {
    const seq = ++state.seq;
    const t0 = performance.now();
    const composed = compose();
    if (composed.drawn.size > MAX_DRAWN) {
      throw new Error("that would draw " + fmt(composed.drawn.size) + " nodes at once, more than the " + fmt(MAX_DRAWN)
        + " a layout can take here: collapse some boxes first");
    }
    panel.dataset.ready = "0";
    statusEl.textContent = "laying out " + composed.drawn.size + " nodes…";
    const t1 = performance.now();
    let laid;
    warm.layouts++;
    try { laid = await elk.layout(composed.graph); } finally { warm.layouts--; setTimeout(warmUp, 0); }
    if (seq !== state.seq) return;  // a newer layout superseded this one
    const t2 = performance.now();
    draw(laid, composed);
    // where the time of the last drawing went (benchmarks/graph.py prints it)
    state.timings = { compose: t1 - t0, layout: t2 - t1, draw: performance.now() - t2 };
    statusEl.textContent = composed.drawn.size + " nodes, " + composed.edges.length + " edges · layout " + Math.round(t2 - t1) + " ms";
    panel.dataset.ready = "1";
    panel.dataset.nodes = String(composed.drawn.size);
    setTimeout(prefetch, 0);
  }

  function walk(elkNode, fn) { for (const c of elkNode.children || []) { fn(c); walk(c, fn); } }
  function collectEdges(elkNode, out) { for (const e of elkNode.edges || []) out.push(e); for (const c of elkNode.children || []) collectEdges(c, out); return out; }

  function draw(laid, composed) {
    viewport.textContent = "";
    state.nodes = composed.drawn;
    state.edges = composed.edges;
    const gGroups = svgEl("g", {}, viewport), gEdges = svgEl("g", {}, viewport), gNodes = svgEl("g", {}, viewport);
    const edgeInfo = new Map(composed.edges.map(e => [e.id, e]));
    walk(laid, c => {
      const info = composed.drawn.get(c.id);
      if (!info) return;
      const n = info.data;
      if (info.group) {
        const g = svgEl("g", { class: "g-group" + (n.part ? " part" : ""), "data-id": n.id, "data-path": n.path }, gGroups);
        svgEl("rect", { class: "frame", x: c.x, y: c.y, width: c.width, height: c.height, rx: 6 }, g);
        const title = c.labels && c.labels[0] ? c.labels[0].text : n.label;
        const t = text(g, c.x + 8, c.y + 15, title, "title");
        t.addEventListener("click", ev => { ev.stopPropagation(); collapse(n); });
        g.addEventListener("click", ev => { if (ev.target.classList.contains("frame")) { ev.stopPropagation(); select(n.id); } });
        return;
      }
      const cls = "g-node kind-" + n.kind + (n.kind === "module" && n.expandable ? " expandable" : "") + (n.part ? " part" : "");
      const g = svgEl("g", { class: cls, "data-id": n.id, "data-kind": n.kind, "data-path": n.path || "", transform: "translate(" + c.x + "," + c.y + ")" }, gNodes);
      const rect = svgEl("rect", { width: c.width, height: c.height, rx: n.kind === "op" ? 12 : 4 }, g);
      const fill = overlayFill(n);
      if (fill) rect.style.fill = fill;
      if (isBlock(n)) rect.style.stroke = repColor(n.signature);
      text(g, 8, info.sub ? 15 : 17, n.label);
      if (info.sub) text(g, 8, 30, info.sub, "sub");
      if (isBlock(n)) {
        const bw = badgeWidth(n);
        const b = svgEl("g", { class: "badge-rep", transform: "translate(" + (c.width - bw - (n.expandable ? 28 : 6)) + ",5)" }, g);
        svgEl("title", {}, b).textContent = n.repeats + " modules in this model share this structure (signature " + n.signature + ")";
        const r = svgEl("rect", { width: bw, height: 14, rx: 7 }, b);
        r.style.fill = repColor(n.signature);
        text(b, 5, 11, "×" + n.repeats);
      }
      if (n.kind === "module" && n.expandable) {
        const tg = svgEl("g", { class: "toggle", transform: "translate(" + (c.width - 22) + ",4)" }, g);
        svgEl("rect", { class: "toggle-box", width: 17, height: 17, rx: 3 }, tg);
        text(tg, 4.5, 13, "+", "toggle-text");
        tg.style.cursor = "pointer";
        tg.addEventListener("click", ev => { ev.stopPropagation(); expand(n); });
      }
      g.addEventListener("click", ev => { ev.stopPropagation(); select(n.id); });
      g.addEventListener("dblclick", ev => { ev.stopPropagation(); if (n.kind === "module" && n.expandable) expand(n); });
    });
    for (const e of collectEdges(laid, [])) {
      const info = edgeInfo.get(e.id);
      if (!info) continue;
      const g = svgEl("g", { class: "g-edge" + (info.fromParam ? " from-param" : ""), "data-source": info.source, "data-target": info.target, "data-shape": info.data.shape.join(",") }, gEdges);
      for (const s of e.sections || []) {
        const pts = [s.startPoint].concat(s.bendPoints || [], [s.endPoint]);
        svgEl("path", { d: "M" + pts.map(p => p.x + "," + p.y).join("L"), "marker-end": "url(#arrow)" }, g);
      }
      for (const l of e.labels || []) text(g, l.x, l.y + 9, l.text);
    }
    let defs = svg.querySelector("defs");
    if (!defs) {
      defs = svgEl("defs", {});
      svg.insertBefore(defs, svg.firstChild);
      const m = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
      svgEl("path", { d: "M0,0L10,5L0,10z", fill: "#9ca3af" }, m);
    }
    state.bounds = { w: laid.width || 0, h: laid.height || 0 };
    applyHighlight();
    drawLegend();
    if (state.selected && !state.nodes.has(state.selected)) closeSide();
  }

  // ------------------------------------------------------------------ overlays
  const overlays = {
    params: { label: "parameters", log: true, fmt: fmt },
    flops: { label: "FLOPs", log: true, fmt: fmt },
    output_bytes: { label: "output bytes", log: true, fmt: fmtBytes },
    std: { label: "weight std", log: false, fmt: fmt, stat: true },
    abs_mean: { label: "weight |mean|", log: false, fmt: fmt, stat: true },
    zero_fraction: { label: "fraction of zeros", log: false, fmt: v => (100 * v).toFixed(1) + " %", stat: true },
  };
  function metric(n) {
    const o = overlays[state.overlay];
    if (!o || (n.kind !== "module" && n.kind !== "op" && n.kind !== "param")) return null;
    const v = o.stat ? (n.stats ? n.stats[state.overlay] : null) : n[state.overlay];
    return v === null || v === undefined ? null : v;
  }
  function range() {
    let lo = Infinity, hi = -Infinity;
    for (const info of state.nodes.values()) {
      if (info.group) continue;
      const v = metric(info.data);
      if (v === null) continue;
      lo = Math.min(lo, v); hi = Math.max(hi, v);
    }
    return lo <= hi ? { lo: lo, hi: hi } : null;
  }
  function colour(t) {  // white -> amber -> red
    const a = [255, 255, 255], b = [251, 191, 36], c = [220, 38, 38];
    const [p, q, u] = t < 0.5 ? [a, b, t * 2] : [b, c, (t - 0.5) * 2];
    return "rgb(" + p.map((x, i) => Math.round(x + (q[i] - x) * u)).join(",") + ")";
  }
  function scale(v, r) {
    const o = overlays[state.overlay];
    if (r.hi === r.lo) return 1;
    if (o.log) return Math.log1p(v - r.lo) / Math.log1p(r.hi - r.lo);
    return (v - r.lo) / (r.hi - r.lo);
  }
  let currentRange = null;
  function overlayFill(n) {
    if (!state.overlay) return null;
    if (currentRange === null) currentRange = range();
    const v = metric(n);
    if (v === null || !currentRange) return n.kind === "module" || n.kind === "op" ? "#f3f4f6" : null;
    return colour(scale(v, currentRange));
  }
  function drawLegend() {
    const box = document.getElementById("legend");
    currentRange = null;
    if (!state.overlay) { box.hidden = true; return; }
    const r = range(), o = overlays[state.overlay];
    box.hidden = false;
    box.textContent = "";
    box.append(el("div", { text: o.label + (o.log ? " (log scale)" : "") }));
    if (!r) { box.append(el("div", { class: "muted", text: "no values on the nodes shown" + (o.stat ? " (meta tensors have none)" : "") })); return; }
    const bar = el("div", { class: "bar" });
    bar.style.background = "linear-gradient(to right," + colour(0) + "," + colour(0.5) + "," + colour(1) + ")";
    bar.style.border = "1px solid #e5e7eb";
    box.append(bar, el("div", { class: "ends" }, el("span", { id: "legend-min", text: o.fmt(r.lo) }), el("span", { id: "legend-max", text: o.fmt(r.hi) })));
    box.append(el("div", { class: "muted", text: "grey: no value" }));
  }
  function repaint() {
    currentRange = null;
    for (const g of viewport.querySelectorAll(".g-node")) {
      const info = state.nodes.get(g.dataset.id);
      if (!info) continue;
      g.querySelector("rect").style.fill = overlayFill(info.data) || "";
    }
    drawLegend();
  }

  // ------------------------------------------------------------------ expand / collapse
  async function expand(n) {
    clearError("graph-error");
    const k = nodeKey(n);
    try {
      await loadView(n.path, n.call, partOf(n));
      state.expanded.add(k);
      await relayout();
      centerOn(n.id, true);  // keep what was just opened on screen
    } catch (err) { state.expanded.delete(k); showError("graph-error", err); }
  }
  async function collapse(n) {
    const k = nodeKey(n);
    for (const other of Array.from(state.expanded)) if (other === k || isInside(other, k)) state.expanded.delete(other);
    await relayout();
  }
  function isInside(vk, ancestor) {
    let p = state.parentOf.get(vk), guard = 0;
    while (p && guard++ < 256) { if (p === ancestor) return true; p = state.parentOf.get(p); }
    return false;
  }

  // ------------------------------------------------------------------ side panel
  function select(id) {
    state.selected = id;
    for (const g of viewport.querySelectorAll(".selected")) g.classList.remove("selected");
    const g = viewport.querySelector('[data-id="' + CSS.escape(id) + '"]');
    if (g) g.classList.add("selected");
    const info = state.nodes.get(id);
    if (info) showSide(info.data);
  }
  function shapesList(list) {
    if (!list || !list.length) return el("span", { class: "muted", text: "—" });
    const ul = el("ul");
    list.forEach(s => ul.append(el("li", { text: shapeText(s.shape, s.dtype) + " " + s.dtype })));
    return ul;
  }
  function showSide(n) {
    const side = document.getElementById("side"), body = document.getElementById("side-body");
    body.textContent = "";
    body.append(el("h3", { id: "side-title", text: n.kind === "module" && !n.part ? n.path : n.label }));
    const dl = el("dl");
    const row = (k, v) => dl.append(el("dt", { text: k }), el("dd", {}, v));
    row("kind", n.part ? "part" : n.kind);
    if (n["class"]) row(n.part ? "holds" : "class", n["class"]);
    if (n.part) {
      row("part of", (n.path || "the model") + (n.call ? " (call " + n.call + ")" : ""));
      row("why", fmt(n.part.count) + " nodes in a row, of a graph too wide to draw at once: expand to see them");
    } else if (n.kind === "module") { row("path", n.path); if (n.call) row("call", String(n.call)); }
    if (n.kind === "op") { row("op", n.target); row("in module", n.path || "(model)"); }
    if (n.kind === "module" && n.repeats > 1) row("same structure", n.repeats + " modules (" + n.signature + ")");
    row("parameters", fmt(n.params));
    row("FLOPs", fmt(n.flops));
    row("output", fmtBytes(n.output_bytes));
    if (n.stats) row("weights", "std " + fmt(n.stats.std) + ", |mean| " + fmt(n.stats.abs_mean) + ", zeros " + (100 * n.stats.zero_fraction).toFixed(2) + " %");
    body.append(dl);
    if (n.members) {
      body.append(el("div", { class: "muted", text: n.members.length + " outputs" }));
      const ul = el("ul");
      n.members.forEach((m, i) => ul.append(el("li", { text: m + " " + shapeText(n.shapes_in[i].shape, n.shapes_in[i].dtype) })));
      body.append(ul);
    } else body.append(el("div", { class: "muted", text: "shapes in" }), shapesList(n.shapes_in));
    body.append(el("div", { class: "muted", text: "shapes out" }), shapesList(n.shapes_out));
    if (n.tensors && n.tensors.length) {
      body.append(el("div", { class: "muted", text: "parameters and buffers (histograms)" }));
      const ul = el("ul", { id: "side-tensors" });
      n.tensors.forEach(t => ul.append(el("li", {}, el("a", { href: "/models/" + encodeURIComponent(modelId) + "/weights?tensor=" + encodeURIComponent(t.name), text: t.name }), " ", el("span", { class: "muted", text: shapeText(t.shape, "") + " " + t.dtype }))));
      if (n.tensors_more) ul.append(el("li", { class: "muted", text: "… " + n.tensors_more + " more" }));
      body.append(ul);
    }
    const treePath = n.part ? "" : n.kind === "module" ? n.path : n.kind === "op" ? n.path : "";
    if (treePath) body.append(el("p", {}, el("a", { id: "side-tree", href: "/models/" + encodeURIComponent(modelId) + "?q=" + encodeURIComponent(treePath), text: "show " + treePath + " in the module tree" })));
    if (n.kind === "module" && n.expandable && !state.expanded.has(nodeKey(n))) body.append(el("button", { type: "button", text: "Expand", onclick: () => expand(n) }));
    side.hidden = false;
  }
  function closeSide() { document.getElementById("side").hidden = true; state.selected = null; }
  document.getElementById("side-close").addEventListener("click", closeSide);

  // ------------------------------------------------------------------ search and highlight
  const searchBox = document.getElementById("graph-search"), results = document.getElementById("search-results");
  async function runSearch() {
    const q = searchBox.value.trim();
    results.textContent = "";
    if (!q) { results.hidden = true; return; }
    const params = new URLSearchParams({ q: q, capture: state.capture });
    if (state.inputs) params.set("inputs", state.inputs);
    try {
      const res = await api(base + "/graph/search?" + params);
      if (searchBox.value.trim() !== q) return;
      for (const m of res.matches) {
        results.append(el("li", { "data-id": m.id, onclick: () => reveal(m) }, m.kind === "module" ? m.path : m.label,
          el("span", { class: "muted", text: m.kind === "module" ? m["class"] + (m.call ? " call " + m.call : "") : "op in " + (m.path || "(model)") })));
      }
      if (!res.matches.length) results.append(el("li", { class: "muted", text: "no module or op matches" }));
      if (res.truncated) results.append(el("li", { class: "muted", text: "first " + res.matches.length + " of " + res.total }));
      results.hidden = false;
    } catch (err) { showError("graph-error", err); }
  }
  searchBox.addEventListener("input", debounce(runSearch, 200));
  searchBox.addEventListener("keydown", ev => {
    if (ev.key === "Enter") { const first = results.querySelector("li[data-id]"); if (first) first.click(); }
    if (ev.key === "Escape") { results.hidden = true; state.focus = null; applyHighlight(); }
  });
  async function reveal(m) {
    results.hidden = true;
    clearError("graph-error");
    const before = new Set(state.expanded);
    try {
      for (const f of m.reveal) { await loadView(f.path, f.call, f.part); state.expanded.add(key(f.path, f.call, f.part)); }
      state.focus = m.id;
      await relayout();
      select(m.id);
      centerOn(m.id);
    } catch (err) { state.expanded = before; showError("graph-error", err); }
  }
  function applyHighlight() {
    for (const x of viewport.querySelectorAll(".hl-focus,.hl-up,.hl-down")) x.classList.remove("hl-focus", "hl-up", "hl-down");
    const id = state.focus;
    svg.classList.toggle("dimmed", Boolean(id && state.nodes.has(id)));
    if (!id || !state.nodes.has(id)) return;
    const mark = (nid, cls) => { const g = viewport.querySelector('[data-id="' + CSS.escape(nid) + '"]'); if (g) g.classList.add(cls); };
    mark(id, "hl-focus");
    // an open box is highlighted with everything drawn inside it
    const inside = new Set([id]);
    for (const [nid, info] of state.nodes) if (info.data.kind !== "input" && info.data.kind !== "output" && isWithin(nid, id)) inside.add(nid);
    for (const g of viewport.querySelectorAll(".g-edge")) {
      const s = g.dataset.source, t = g.dataset.target;
      if (inside.has(t) && !inside.has(s)) { g.classList.add("hl-up"); mark(s, "hl-up"); }
      if (inside.has(s) && !inside.has(t)) { g.classList.add("hl-down"); mark(t, "hl-down"); }
    }
  }
  function isWithin(nid, groupId) {
    const info = state.nodes.get(nid), group = state.nodes.get(groupId);
    if (!info || !group || !group.group) return false;
    let vk = info.viewKey, guard = 0;
    const target = nodeKey(group.data);
    while (vk && guard++ < 256) { if (vk === target) return true; vk = state.parentOf.get(vk); }
    return false;
  }

  // ------------------------------------------------------------------ pan, zoom, fit
  function applyTransform() {
    const t = state.transform;
    viewport.setAttribute("transform", "translate(" + t.x + "," + t.y + ") scale(" + t.k + ")");
  }
  function fit() {
    const r = svg.getBoundingClientRect(), b = state.bounds || { w: 1, h: 1 };
    const k = Math.min(1.5, Math.max(0.05, Math.min((r.width - 40) / (b.w || 1), (r.height - 40) / (b.h || 1))));
    state.transform = { k: k, x: (r.width - b.w * k) / 2, y: 20 };
    applyTransform();
  }
  function centerOn(id, top) {
    const g = viewport.querySelector('[data-id="' + CSS.escape(id) + '"]');
    if (!g) return;
    const bb = g.getBBox(), m = g.getAttribute("transform"), r = svg.getBoundingClientRect();
    const off = m ? m.match(/translate\(([-\d.e]+),([-\d.e]+)\)/) : null;
    let k = Math.max(state.transform.k, 0.8);
    if (top) k = Math.min(k, (r.width - 40) / Math.max(bb.width, 1), (r.height - 40) / Math.max(bb.height, 1));
    const x = bb.x + (off ? +off[1] : 0) + bb.width / 2;
    const y = top ? bb.y + (off ? +off[2] : 0) + (r.height / 2 - 20) / k : bb.y + (off ? +off[2] : 0) + bb.height / 2;
    state.transform = { k: k, x: r.width / 2 - x * k, y: r.height / 2 - y * k };
    applyTransform();
  }
  let drag = null;
  svg.addEventListener("mousedown", ev => { drag = { x: ev.clientX, y: ev.clientY, t: Object.assign({}, state.transform) }; });
  window.addEventListener("mousemove", ev => {
    if (!drag) return;
    state.transform.x = drag.t.x + ev.clientX - drag.x;
    state.transform.y = drag.t.y + ev.clientY - drag.y;
    applyTransform();
  });
  window.addEventListener("mouseup", () => { drag = null; });
  svg.addEventListener("wheel", ev => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect(), t = state.transform;
    const k = Math.min(4, Math.max(0.03, t.k * Math.exp(-ev.deltaY * 0.0015)));
    const px = ev.clientX - r.left, py = ev.clientY - r.top;
    state.transform = { k: k, x: px - (px - t.x) * k / t.k, y: py - (py - t.y) * k / t.k };
    applyTransform();
  }, { passive: false });
  svg.addEventListener("click", () => { results.hidden = true; });
  document.getElementById("fit").addEventListener("click", fit);

  // ------------------------------------------------------------------ export
  function exportSvgText() {
    const b = state.bounds || { w: 100, h: 100 };
    const clone = svg.cloneNode(true);
    clone.removeAttribute("class");
    clone.setAttribute("width", String(Math.ceil(b.w + 40)));
    clone.setAttribute("height", String(Math.ceil(b.h + 40)));
    clone.setAttribute("viewBox", "-20 -20 " + Math.ceil(b.w + 40) + " " + Math.ceil(b.h + 40));
    clone.querySelector("#viewport").removeAttribute("transform");
    const css = [];
    for (const sheet of document.styleSheets) {
      let rules;
      try { rules = sheet.cssRules; } catch (e) { continue; }
      for (const r of rules) if (/\.g-(node|edge|group)/.test(r.selectorText || "")) css.push(r.cssText);
    }
    const style = document.createElementNS(SVGNS, "style");
    style.textContent = css.join("\n");
    clone.insertBefore(style, clone.firstChild);
    return new XMLSerializer().serializeToString(clone);
  }
  function download(blob, name) {
    const a = el("a", { href: URL.createObjectURL(blob), download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }
  const fileBase = () => modelId + "-graph";
  document.getElementById("export-svg").addEventListener("click", () => {
    download(new Blob([exportSvgText()], { type: "image/svg+xml" }), fileBase() + ".svg");
  });
  document.getElementById("export-png").addEventListener("click", () => {
    const textSvg = exportSvgText(), b = state.bounds || { w: 100, h: 100 };
    const scaleK = Math.min(2, 16000 / Math.max(b.w + 40, b.h + 40));  // browsers cap canvas size
    const img = new Image();
    img.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = Math.ceil((b.w + 40) * scaleK);
      canvas.height = Math.ceil((b.h + 40) * scaleK);
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(blob => download(blob, fileBase() + ".png"), "image/png");
    };
    img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(textSvg);
  });

  // ------------------------------------------------------------------ controls
  async function reload(keepExpanded) {
    const keep = keepExpanded ? Array.from(state.expanded) : [];
    state.gen++;
    state.fetching.clear();
    state.views.clear();
    state.parentOf.clear();
    state.expanded.clear();
    clearError("graph-error");
    // The first view of new inputs or a new capture method waits for the capture (seconds on a big
    // model): say so, with the time it has taken so far (the top bar's busy indicator says it too).
    const what = state.capture === "hooks" ? "forward hooks" : state.capture === "export" ? "torch.export" : "torch.export, else forward hooks";
    const t0 = performance.now();
    const tick = () => { statusEl.textContent = "capturing the graph on fake tensors (" + what + ")… " + ((performance.now() - t0) / 1000).toFixed(1) + " s"; };
    tick();
    const ticker = setInterval(tick, 100);
    try {
      let root;
      try { root = await loadView("", 0); } finally { clearInterval(ticker); }
      showCapture(root);
      for (const k of keep) {
        const i = k.lastIndexOf("#");
        try { await loadView(k.slice(0, i), +k.slice(i + 1)); state.expanded.add(k); } catch (e) { /* gone with new inputs */ }
      }
      await relayout();
    } catch (err) {
      statusEl.textContent = "";
      showError("graph-error", err);
      if (err.status === 409) document.querySelector(".inputs-box").open = true;
      panel.dataset.ready = "error";
    }
  }
  function showCapture(v) {
    const box = document.getElementById("graph-capture");
    box.textContent = "";
    box.append(el("span", { class: "badge", id: "capture-badge", text: v.capture === "export" ? "torch.export" : "forward hooks" }), " ", v.reason,
      " · " + fmt(v.totals.ops) + " ops, " + fmt(v.totals.module_calls) + " module calls, " + fmt(v.totals.flops) + " FLOPs · captured in " + v.totals.seconds + " s");
    for (const w of v.warnings || []) box.append(el("div", { class: "capture-warning", text: w }));
    document.getElementById("inputs-note").textContent = "(" + v.source + (v.inputs_note ? ": " + v.inputs_note : "") + ")";
    const ta = document.getElementById("inputs-json");
    if (!state.inputs) ta.value = JSON.stringify(v.inputs);
  }
  document.getElementById("overlay").addEventListener("change", ev => { state.overlay = ev.target.value; repaint(); });
  document.getElementById("show-params").addEventListener("change", ev => { state.params = ev.target.checked; reload(true); });
  document.getElementById("capture-mode").addEventListener("change", ev => { state.capture = ev.target.value; reload(false); });
  document.getElementById("collapse-all").addEventListener("click", () => { state.expanded.clear(); relayout().then(fit); });
  document.getElementById("inputs-run").addEventListener("click", () => {
    state.inputs = document.getElementById("inputs-json").value.trim() || null;
    reload(false).then(fit);
  });

  window.tsGraph = { state: state, expand: expand, collapse: collapse, relayout: relayout, exportSvgText: exportSvgText };
  // A memoised capture answers in milliseconds: then the first view's layout goes first.
  setTimeout(() => { if (!state.views.size) warmUp(); }, 150);
  reload(false).then(() => { if (panel.dataset.ready === "1") fit(); });
})();
