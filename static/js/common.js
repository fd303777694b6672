// Shared helpers for every page: window.ts.{api, showError, clearError, debounce, fmt, fmtBytes, el, plotly, niceTicks}
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
    // X-Torchscope: a header no cross-site form can send; the server wants it (or JSON) on every write.
    const init = { method: opts.method || "GET", headers: { Accept: "application/json", "X-Torchscope": "1" } };
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

  // What an HTTP status means to the user; the number itself stays on the box (data-status).
  const STATUS_WORDS = {
    400: "Bad request", 403: "Refused", 404: "Not found", 409: "Not possible", 413: "Too large",
    422: "Invalid input", 429: "Too many requests", 500: "Server error", 503: "Server busy",
  };

  function showError(target, err) {
    const box = typeof target === "string" ? document.getElementById(target) : target;
    if (!box) return;
    const status = err && err.status;
    const words = status ? (STATUS_WORDS[status] || (status >= 500 ? "Server error" : "Request refused")) + ": " : "";
    box.textContent = words + (err && err.message ? err.message : String(err));
    if (status) box.dataset.status = String(status); else delete box.dataset.status;
    box.hidden = false;
  }

  // plotly.js is loaded with `defer` (templates/_partials.html plotly_script): it never blocks the
  // first paint, and page scripts that are not deferred start their requests before it has run.
  // They await this before their first Plotly call.
  let plotlyReady = null;
  function plotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotlyReady) {
      plotlyReady = new Promise((resolve, reject) => {
        const tag = document.getElementById("plotly-js");
        if (!tag) { reject(new Error("this page does not load plotly.js")); return; }
        tag.addEventListener("load", () => resolve(window.Plotly));
        tag.addEventListener("error", () => reject(new Error("plotly.js could not be loaded from " + tag.src)));
      });
    }
    return plotlyReady;
  }

  // Round tick steps (1, 2, 2.5, 5 x 10^k) for an axis from 0 to max: a secondary axis left to itself
  // can end up with ticks such as 0.0228 / 0.0669 when it is aligned to the primary one.
  function niceTicks(max, count) {
    if (!(max > 0) || !isFinite(max)) return { tick0: 0, dtick: 1, range: [0, 1] };
    const raw = max / (count || 5);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(s => s >= raw);
    return { tick0: 0, dtick: step, range: [0, Math.ceil(max / step) * step] };
  }

  function clearError(target) {
    const box = typeof target === "string" ? document.getElementById(target) : target;
    if (box) { box.textContent = ""; box.hidden = true; delete box.dataset.status; }
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

  // request: api() without the busy indicator, for work the user did not ask for (prefetching).
  window.ts = { api, request, showError, clearError, debounce, fmt, fmtBytes, el, plotly, niceTicks };
})();
