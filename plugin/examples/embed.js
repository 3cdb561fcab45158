/* The embed SDK's example page: #role=candidate&token=T or #role=interviewer&session=S&watch_token=W,
 * each with an optional &server=URL (default: this page's origin). The parameters are in the
 * fragment, which the browser never sends to a server. Every SDK event is kept in
 * window.embedExample.events for a look in the developer tools (and for the tests). */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.hash.slice(1));
  const server = params.get("server") || location.origin;
  const seen = [];
  window.embedExample = { events: seen, server };

  function log(el, name, payload) {
    seen.push({ name, payload });
    const li = document.createElement("li");
    li.textContent = name + " " + JSON.stringify(payload).slice(0, 160);
    el.appendChild(li);
    el.scrollTop = el.scrollHeight;
  }

  function candidate() {
    $("candidate").hidden = false;
    const stateEl = $("cand-state"), logEl = $("cand-log");
    let conn = null;
    const say = (t) => { stateEl.textContent = t; document.body.dataset.state = t; };
    $("join").addEventListener("click", async () => {
      $("join").disabled = true;
      say("Starting the camera…");
      try {
        // the candidate's side: hello, state, connection, ack and ended (with its reason only)
        const on = {};
        for (const name of ["hello", "state", "connection", "ack", "ended", "verdict", "prompt", "challenge", "result"]) {
          on[name] = (p) => log(logEl, name, p);  // the last four never fire here: the server sends them no such thing
        }
        conn = await LivenessEmbed.join({ server, token: params.get("token"), video: $("self"), on });
        conn.on("connection", (c) => {
          if (c.state === "connected") say("Connected: the check is running.");
          else if (c.state === "failed" || c.state === "closed") say("Disconnected (" + c.state + ").");
        });
        conn.on("ended", () => say("The session has ended."));
        $("leave").disabled = false;
        say("Connecting…");
      } catch (e) {
        say("Could not start: " + e.message);
        $("join").disabled = false;
      }
    });
    $("leave").addEventListener("click", () => { if (conn) conn.stop(); $("leave").disabled = true; say("Stopped."); });
  }

  function interviewer() {
    $("interviewer").hidden = false;
    const logEl = $("log");
    const w = LivenessEmbed.watch({ server, session: params.get("session"), watchToken: params.get("watch_token") });
    window.embedExample.watch = w;
    for (const name of ["hello", "state", "verdict", "prompt", "challenge", "sequence", "error", "ack", "ended"]) {
      w.on(name, (p) => log(logEl, name, p));
    }
    let results = 0;
    w.on("result", (r) => { results += 1; if (results % 15 === 1) log(logEl, "result", { t: r.t, face: r.face, risk: r.risk }); });
    w.on("connection", (c) => { $("conn").textContent = c.state; seen.push({ name: "connection", payload: c }); });
    w.on("verdict", (v) => {
      $("verdict").textContent = v.label + (v.final ? " (final)" : "");
      $("risk").textContent = v.risk === null || v.risk === undefined ? "–" : Math.round(v.risk * 100) + "%";
    });
    w.on("prompt", (p) => { $("prompt").textContent = "Ask the candidate: " + p.text; $("prompt").hidden = false; });
    w.on("challenge", (c) => { $("prompt").textContent = c.kind + ": " + (c.passed ? "passed" : "failed"); });
    $("challenges").addEventListener("click", () => w.startChallenges(2));
    $("end").addEventListener("click", () => w.end("ended by the interviewer"));
  }

  function setup() {
    $("setup").hidden = false;
    $("create").addEventListener("click", async () => {
      $("setup-error").textContent = "";
      try {
        const r = await fetch(server + "/api/sessions", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
        const s = await r.json();
        if (!r.ok) throw new Error(s.error || ("HTTP " + r.status));
        const base = location.pathname + "#server=" + encodeURIComponent(server);
        $("cand-link").href = base + "&role=candidate&token=" + encodeURIComponent(s.token);
        $("int-link").href = base + "&role=interviewer&session=" + s.id + (s.watch_token ? "&watch_token=" + s.watch_token : "");
        $("links").hidden = false;
      } catch (e) {
        $("setup-error").textContent = "Could not create a session: " + e.message + " (with an API key, your back end creates it).";
      }
    });
  }

  const role = params.get("role");
  if (role === "candidate") candidate();
  else if (role === "interviewer") interviewer();
  else setup();
})();
