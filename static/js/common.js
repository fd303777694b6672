// Shared helpers for every page: window.ts.{api, showError, clearError, debounce, fmt, fmtBytes, el}
(function () {
  "use strict";

  // A top-bar indicator for work that takes a while (histograms of a big model, init previews,
  // checkpoint diffs): shown after 300 ms, with the elapsed time, while any request is in flight.
  let inFlight = 0, busyTimer = null, busySince = 0;
  function busyTick() {
    const box = document.getElementById("busy");
    if (!box) return;
    box.hidden = inFlight === 0;
    box.textContent = "working… " + ((performance.now() - busySince) / 1000).toFixed(1) + " s";
  }
  function busyStart() {
    if (inFlight++ === 0) {
      busySince = performance.now();
      busyTimer = setTimeout(function tick() { busyTick(); busyTimer = setTimeout(tick, 100); }, 300);
    }
  }
  function busyEnd() {
    if (--inFlight === 0) {
      clearTimeout(busyTimer);
      busyTick();
    }
  }

  async function api(url, opts) {
    busyStart();
    try {
      const data = await request(url, opts);
      // live.js listens: a change this page made itself (init apply, checkpoint load) is no news.
      const method = (opts && opts.method) || "GET";
      if (method !== "GET") document.dispatchEvent(new CustomEvent("ts:done", { detail: { method, url } }));
      return data;
    } finally {
      busyEnd();
    }
  }

  async function request(url, opts) {
    opts = opts || {};
    const init = { method: opts.method || "GET", headers: { Accept: "application/json" } };
    if (opts.body !== undefined) {
      if (opts.body instanceof FormData) {
        init.body = opts.body;
      } else {
        init.body = JSON.stringify(opts.body);
        init.headers["Content-Type"] = "application/json";
      }
    }
    if (opts.signal) init.signal = opts.signal;
    const res = await fetch(url, init);
    const type = res.headers.get("content-type") || "";
    const data = type.includes("application/json") ? await res.json() : await res.text();
    if (!res.ok) {
      const detail = data && typeof data === "object" && data.detail ? data.detail : String(data || res.statusText);
      const err = new Error(detail);
      err.status = res.status;
      err.data = data;
      throw err;
    }
    return data;
  }

  function showError(target, err) {
    const box = typeof target === "string" ? document.getElementById(target) : target;
    if (!box) return;
    const status = err && err.status ? err.status + ": " : "";
    box.textContent = status + (err && err.message ? err.message : String(err));
    box.hidden = false;
  }

  function clearError(target) {
    const box = typeof target === "string" ? document.getElementById(target) : target;
    if (box) { box.textContent = ""; box.hidden = true; }
  }

  function debounce(fn, ms) {
    let t = null;
    return function () {
      const args = arguments, self = this;
      clearTimeout(t);
      t = setTimeout(function () { fn.apply(self, args); }, ms);
    };
  }

  function fmt(n) {
    if (n === null || n === undefined) return "—";
    if (typeof n === "number" && Number.isInteger(n)) return n.toLocaleString("en-US");
    if (typeof n === "number") {
      if (n === 0) return "0";
      const a = Math.abs(n);
      return a >= 1e4 || a < 1e-3 ? n.toExponential(3) : n.toPrecision(4);
    }
    return String(n);
  }

  function fmtBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = n, i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return i === 0 ? v + " B" : v.toFixed(1) + " " + units[i];
  }

  // el("td", {class: "num", text: "3"}, child...)
  function el(tag, attrs) {
    const node = document.createElement(tag);
    const a = attrs || {};
    for (const k of Object.keys(a)) {
      if (k === "text") node.textContent = a[k];
      else if (k === "class") node.className = a[k];
      else if (k.startsWith("on") && typeof a[k] === "function") node.addEventListener(k.slice(2), a[k]);
      else if (a[k] !== null && a[k] !== undefined && a[k] !== false) node.setAttribute(k, a[k] === true ? "" : a[k]);
    }
    for (let i = 2; i < arguments.length; i++) {
      const c = arguments[i];
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  window.ts = { api, showError, clearError, debounce, fmt, fmtBytes, el };
})();
