// "Model changed, refresh": a page drawn from a model polls its version (GET /api/models/{id}/version)
// and says so when the model changed since (trained or edited from Python, or changed from another tab).
// Pages name the models they show in <body data-live='{"id": revision}'>.
(function () {
  "use strict";
  const raw = document.body.dataset.live;
  if (!raw) return;
  const known = JSON.parse(raw);
  const ids = Object.keys(known);
  if (!ids.length) return;
  const notice = document.getElementById("live-notice");
  // Changes a page makes itself: it redraws what it changed, so it adopts the new revision.
  const OWN_CHANGES = /\/(init\/apply|init\/reset|load)$/;
  let delay = 1000, timer = null, done = false, polls = 0;

  async function version(id) {
    const res = await fetch("/api/models/" + encodeURIComponent(id) + "/version", { headers: { Accept: "application/json" } });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(res.status + " " + res.statusText);
    return res.json();
  }

  function say(text, state) {
    done = true;
    clearTimeout(timer);
    notice.textContent = text + " ";
    if (state !== "stopped") {
      const a = document.createElement("a");
      a.href = location.href;
      a.textContent = "Refresh";
      a.addEventListener("click", ev => { ev.preventDefault(); location.reload(); });
      notice.append(a);
    }
    notice.dataset.state = state;
    notice.hidden = false;
  }

  async function poll() {
    if (done) return;
    if (!document.hidden) {
      try {
        for (const id of ids) {
          const v = await version(id);
          if (v === null) return say("Model “" + id + "” is no longer served.", "removed");
          delay = Math.max(1000, v.poll_ms || 0);
          if (v.revision !== known[id]) {
            const where = v.live ? " (in Python or in another tab)" : " (in another tab)";
            return say("Model “" + id + "” changed" + where + " since this page was drawn: what it shows is out of date.", "changed");
          }
        }
        document.body.dataset.livePolls = String(++polls);  // tests wait on this, never on time
      } catch (err) {
        // The server is gone (torchscope.show's handle.stop(), Ctrl+C): say it once and stop asking.
        return say("The torchscope server stopped.", "stopped");
      }
    }
    timer = setTimeout(poll, delay);
  }

  document.addEventListener("ts:done", async ev => {
    if (done || !OWN_CHANGES.test(ev.detail.url)) return;
    for (const id of ids) {
      try {
        const v = await version(id);
        if (v !== null) known[id] = v.revision;
      } catch (err) { /* the next poll says what happened */ }
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !done) { clearTimeout(timer); poll(); }
  });
  timer = setTimeout(poll, delay);
})();
