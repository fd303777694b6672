// Shared by the Forward page and the structure tree: value descriptions and FLOP counts as short text.
// A description is what the server sent: {shape, dtype} for a tensor, {type, items} for a container,
// {type, repr} for anything else, null for None (see app/inspect/forward/record.py).
(function () {
  "use strict";

  // 3184581017600 -> "3.18T" (SI prefixes, as the CLI's table)
  function si(n) {
    if (n === null || n === undefined) return "—";
    let v = n;
    for (const unit of ["", "K", "M", "G", "T", "P"]) {
      if (Math.abs(Number(v.toPrecision(3))) < 1000 || unit === "P") {
        if (unit === "") return String(Math.round(v));
        let s = v.toPrecision(3);
        if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
        return s + unit;
      }
      v /= 1000;
    }
    return String(n);
  }

  function tensor(d) {
    return "[" + d.shape.join(", ") + "]" + (d.dtype === "float32" ? "" : " " + d.dtype);
  }

  function shortDesc(d, depth) {
    depth = depth || 0;
    if (d === null || d === undefined) return "None";
    if (typeof d !== "object") return String(d);
    if (d.shape) return tensor(d);
    if (d.repr !== undefined) return ["int", "float", "bool", "str"].includes(d.type) ? d.repr : d.type;
    if (depth >= 2) return d.type;
    const more = d.more ? ", …" : "";
    if (Array.isArray(d.items)) {
      if (d.items.length === 1 && depth === 0) return shortDesc(d.items[0], depth + 1);
      return "(" + d.items.map(x => shortDesc(x, depth + 1)).join(", ") + more + ")";
    }
    if (d.items) {
      const parts = Object.entries(d.items).filter(([, v]) => v !== null).map(([k, v]) => k + ": " + shortDesc(v, depth + 1));
      return d.type + "{" + parts.join(", ") + more + "}";
    }
    return d.type;
  }

  function short(d, limit) {
    const text = shortDesc(d, 0);
    const n = limit || 60;
    return text.length <= n ? text : text.slice(0, n - 1) + "…";
  }

  function inputsText(inputs, limit) {
    const parts = (inputs.args || []).map(a => short(a, 40));
    for (const [k, v] of Object.entries(inputs.kwargs || {})) if (v !== null) parts.push(k + "=" + short(v, 40));
    const text = parts.join(", ");
    const n = limit || 60;
    return text.length <= n ? text : text.slice(0, n - 1) + "…";
  }

  window.tsShapes = { si, short, inputsText };
})();
