// LR lab, "resume a checkpointed run": the scheduler state saved in an opened checkpoint, continued by
// torch on the server (POST /api/checkpoints/{id}/resume), drawn in its own chart. Nothing is computed here.
(function () {
  "use strict";
  const { api, showError, clearError, el } = window.ts;
  const COLORS = ["#2563eb", "#ee4c2c", "#15803d", "#7c3aed", "#b45309", "#0891b2", "#be185d", "#4b5563"];

  function numOrText(s) {
    const n = Number(s);
    return s.trim() !== "" && Number.isFinite(n) ? n : s.trim();
  }

  const resumeSource = document.getElementById("resume-source");
  const resumeChart = document.getElementById("resume-chart");

  function resumeLambdaRows() {
    const cands = (resumeSource.selectedOptions[0].dataset.candidates || "").split(",");
    const lambda = cands.includes("LambdaLR") || cands.includes("MultiplicativeLR");
    document.getElementById("resume-lambda-row").hidden = !lambda;
    document.getElementById("resume-type-row").hidden = !(cands.includes("LambdaLR") && cands.includes("MultiplicativeLR"));
  }

  // Series come as base64 float64 (exact, compact); Plotly draws typed arrays directly.
  function decode(a) {
    if (a === null || Array.isArray(a)) return a;
    const bin = atob(a.bdata);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float64Array(bytes.buffer);
  }

  async function runResume() {
    const [cid, path] = resumeSource.value.split(/\|(.*)/s);
    clearError("resume-error");
    resumeChart.dataset.loading = "1";
    const req = { path, steps: numOrText(document.getElementById("resume-steps").value), encoding: "b64" };
    if (!document.getElementById("resume-lambda-row").hidden) req.lr_lambda = document.getElementById("resume-lambda").value.trim() || null;
    if (!document.getElementById("resume-type-row").hidden) req.scheduler_type = document.getElementById("resume-type").value;
    try {
      const out = await api("/api/checkpoints/" + encodeURIComponent(cid) + "/resume", { method: "POST", body: req });
      out.x = decode(out.x);
      for (const g of out.groups) { g.lr = decode(g.lr); g.momentum = decode(g.momentum); }
      const mkey = out.momentum_key === "betas" ? "betas[0]" : "momentum";
      const data = [];
      out.groups.forEach((g, i) => {
        data.push({ x: out.x, y: g.lr, name: g.name + " lr", type: "scatter", mode: "lines",
          line: { color: COLORS[i % COLORS.length], width: 2 }, meta: { kind: "lr", group: g.name } });
        if (g.momentum) data.push({ x: out.x, y: g.momentum, name: g.name + " " + mkey, type: "scatter", mode: "lines",
          yaxis: "y2", line: { color: COLORS[i % COLORS.length], width: 1, dash: "dot" }, meta: { kind: "momentum", group: g.name } });
      });
      const shapes = out.crash_at === null ? [] : [{ type: "line", xref: "x", yref: "paper", x0: out.last_epoch + out.crash_at,
        x1: out.last_epoch + out.crash_at, y0: 0, y1: 1, line: { color: "#b91c1c", dash: "dash" } }];
      await Plotly.newPlot(resumeChart, data, {
        margin: { l: 70, r: 60, t: 10, b: 45 }, shapes, hovermode: "x unified", legend: { orientation: "h", y: -0.25 },
        xaxis: { title: { text: "scheduler last_epoch (" + out.type + ")" } },
        yaxis: { title: { text: "learning rate" }, exponentformat: "e" },
        yaxis2: { title: { text: mkey }, overlaying: "y", side: "right", showgrid: false, visible: out.groups.some(g => g.momentum) },
      }, { responsive: true, displaylogo: false });
      document.getElementById("resume-info").textContent = out.type + " saved at last_epoch " + out.last_epoch +
        " (hyperparameters from " + (out.optimizer_path !== null ? "the optimizer state '" + (out.optimizer_path || "(file)") + "'" : out.groups_from) +
        "): the resumed run's next optimizer.step() uses lr " + out.groups.map(g => fmtLr(g.lr[0])).join(", ") +
        "; " + out.steps.toLocaleString("en-US") + " more scheduler.step() calls drawn, stepping torch.";
      const ul = document.getElementById("resume-warnings");
      ul.replaceChildren(...out.warnings.map((w, i) => el("li", { "data-code": out.warning_codes[i] || "", text: w })));
      resumeChart.dataset.ready = "1";
    } catch (err) {
      showError("resume-error", err);
      resumeChart.dataset.ready = "error";
    } finally {
      resumeChart.dataset.loading = "";
    }
  }

  function fmtLr(v) { return Number.isFinite(v) ? v.toPrecision(6) : String(v); }

  if (!resumeSource) return;  // no opened checkpoint holds a scheduler state
  resumeSource.addEventListener("change", resumeLambdaRows);
  document.getElementById("resume-run").addEventListener("click", runResume);
  resumeLambdaRows();

  const resumeData = JSON.parse(document.getElementById("resume-data").textContent);
  if (resumeData && resumeData.resume_from) {
    document.getElementById("resume-panel").scrollIntoView({ block: "nearest" });
    if (document.getElementById("resume-lambda-row").hidden) runResume();  // a lambda needs its expression first
  }
})();
