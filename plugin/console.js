/* interview-liveness console: pick a source, mark the candidate's tile, watch live results. */
(function () {
  "use strict";
  const P = LivenessEmbed.PROTOCOL;
  const $ = (id) => document.getElementById(id);
  const video = $("video"), canvas = $("overlay"), ctx = canvas.getContext("2d");
  let conn = null, ws = null, session = null, last = null, crop = null, drag = null, nCmd = 0;
  let clipSignals = {};
  /* plain-language texts (label wording, one line per signal), from the same tables as the report */
  const T = (() => { try { return JSON.parse($("liveness-texts").textContent); } catch (e) { return {}; } })();
  const TL = T.labels || {}, TH = T.headlines || {}, TS = T.signals || {}, TY = T.typical || {};

  function setConn(s) { const el = $("conn"); el.textContent = s; el.className = "pill " + s; }
  function fmt(x, d) { return (x === null || x === undefined) ? "–" : Number(x).toFixed(d === undefined ? 1 : d); }

  async function api(path, body) {
    const r = await fetch(path, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
    const j = await r.json().catch(() => ({ error: "HTTP " + r.status }));
    if (!r.ok) throw new Error(j.error || ("HTTP " + r.status));
    return j;
  }

  function send(cmd, args) {
    const msg = { v: P, type: "command", id: "k" + (++nCmd), cmd, args: args || {} };
    if (conn && conn.channel.readyState === "open") conn.channel.send(JSON.stringify(msg));
    else if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg));
    else logEvent({ kind: "console", message: "not connected: " + cmd });
  }

  function reset() {
    if (conn) { conn.stop(); conn = null; }
    if (ws) { ws.close(); ws = null; }
    video.srcObject = null; last = null; crop = null; session = null; clipSignals = {};
    $("events").innerHTML = ""; $("challenges").innerHTML = ""; $("prompt").hidden = true;
    $("signals").innerHTML = '<p class="muted">waiting for results…</p>';
    $("risk").textContent = "–"; $("label").textContent = "no verdict yet"; $("label").className = "pill";
    $("label-text").textContent = "";
    $("invite").hidden = true; $("report-links").hidden = true;
    for (const id of ["start-challenges", "stop", "clear-crop"]) $(id).disabled = true;
    document.querySelectorAll(".controls button.active").forEach((b) => b.classList.remove("active"));
  }

  async function newSession(label) {
    session = await api("/api/sessions", { label });
    $("report-link").href = "/api/sessions/" + session.id + "/report.html";
    $("report-json").href = "/api/sessions/" + session.id + "/report";
    $("report-links").hidden = false;
    $("stop").disabled = false; $("start-challenges").disabled = false;
    return session;
  }

  async function startLocal(kind) {
    reset();
    $(kind === "screen" ? "src-screen" : "src-camera").classList.add("active");
    try {
      const stream = kind === "screen"
        ? await navigator.mediaDevices.getDisplayMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15, max: 15 } }, audio: false })
        : await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15, max: 15 } }, audio: false });
      const track = stream.getVideoTracks()[0];
      if (kind === "screen" && "contentHint" in track) track.contentHint = "detail";
      video.srcObject = stream;
      await newSession(kind === "screen" ? "shared call" : "camera");
      setConn("connecting");
      conn = await LivenessEmbed.connect({ offerUrl: session.offer_url.replace(/^https?:\/\/[^/]+/, ""), stream, source: kind, onMessage, onState: setConn });
      $("clear-crop").disabled = false;
      track.addEventListener("ended", () => send("stop", { reason: "the shared source ended" }));
    } catch (e) {
      setConn("failed");
      logEvent({ kind: "console", message: "could not start: " + e.message });
    }
  }

  async function startInvite() {
    reset();
    $("src-invite").classList.add("active");
    try {
      await newSession("candidate link");
      $("join-url").value = session.join_url; $("invite").hidden = false;
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      ws = new WebSocket(proto + "//" + location.host + "/api/sessions/" + session.id + "/watch");
      ws.onmessage = (ev) => { try { onMessage(JSON.parse(ev.data)); } catch (e) { /* ignore */ } };
      ws.onclose = () => setConn(last ? "ended" : "closed");
      setConn("waiting for candidate");
      $("clear-crop").disabled = false;
    } catch (e) { logEvent({ kind: "console", message: "could not create a session: " + e.message }); }
  }

  function onMessage(m) {
    if (m.v !== P) return;
    if (m.type === "result") { last = m; showResult(m); }
    else if (m.type === "event") { onEvent(m); }
    else if (m.type === "status") { showStatus(m); }
    else if (m.type === "state") { setConn(m.state); }
    else if (m.type === "ack" && !m.ok) { logEvent({ kind: "ack", message: (m.cmd || "") + ": " + m.error }); }
    else if (m.type === "bye") { setConn("ended"); logEvent({ kind: "session", message: "ended: " + m.reason }); if (m.verdict) showVerdict(m.verdict); }
  }

  function showVerdict(v) {
    if (!v) return;
    $("risk").textContent = v.risk === null || v.risk === undefined ? "–" : Math.round(v.risk * 100) + "%";
    const l = $("label"); l.textContent = TH[v.label] || v.label; l.className = "pill " + v.label;
    l.title = TL[v.label] || v.label;
    $("label-text").textContent = TL[v.label] || "";
  }

  function esc(s) { return String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";"); }

  function bar(name, value, clip) {
    const v = value === null || value === undefined ? null : Math.max(0, Math.min(1, value));
    const cls = v === null ? "" : v > 0.66 ? "high" : v > 0.33 ? "mid" : "";
    const typical = name in TY ? "; real people ≈ " + fmt(TY[name], 2) : "";
    const desc = TS[name] ? '<div class="desc">' + esc(TS[name]) + "</div>" : "";
    return '<div class="row" data-signal="' + esc(name) + '"><span title="' + esc(name) + '">' + esc(name) + '</span><span class="bar"><i class="' + cls + '" style="width:' +
      (v === null ? 0 : Math.round(v * 100)) + '%"></i></span><span title="clip value ' + fmt(clip, 2) + esc(typical) + '">' + fmt(v, 2) + "</span></div>" + desc;
  }

  function showSignals(frameSignals) {
    const names = new Set(Object.keys(clipSignals).concat(Object.keys(frameSignals || {})));
    if (!names.size) return;
    let html = "";
    for (const n of Array.from(names).sort()) {
      const clip = clipSignals[n] ? clipSignals[n].value : null;
      html += bar(n, frameSignals && n in frameSignals ? frameSignals[n] : clip, clip);
    }
    $("signals").innerHTML = html;
  }

  function showResult(m) {
    $("face").textContent = m.face ? "yes" : "no";
    $("faces").textContent = m.faces;
    $("yaw").textContent = fmt(m.yaw) + "°"; $("pitch").textContent = fmt(m.pitch) + "°"; $("roll").textContent = fmt(m.roll) + "°";
    $("t").textContent = fmt(m.t, 2) + " s";
    if (m.risk !== undefined) showVerdict({ risk: m.risk, label: m.label });
    showSignals(m.signals);
    if (m.counters) $("dropped").textContent = m.counters.dropped;
    draw();
  }

  function showStatus(m) {
    const c = m.counters || {};
    $("fps-in").textContent = fmt(c.fps_received); $("fps-out").textContent = fmt(c.fps_analysed);
    $("dropped").textContent = c.dropped === undefined ? "–" : c.dropped;
    $("latency").textContent = fmt(c.latency_ms_p50, 0) + " / " + fmt(c.latency_ms_p95, 0) + " ms";
    clipSignals = m.signals || {};
    showSignals(last ? last.signals : {});
    if (m.verdict) showVerdict(m.verdict);
  }

  function onEvent(e) {
    logEvent(e);
    const d = e.data || {};
    if (e.kind === "challenge.prompt") {
      const p = $("prompt"); p.hidden = false; p.textContent = "Ask: " + e.message;
    } else if (e.kind === "challenge.result") {
      $("prompt").hidden = true;
      const li = document.createElement("li");
      const passed = d.passed === true;
      li.innerHTML = '<span class="' + (passed ? "pass" : "fail") + '">' + (passed ? "✔" : "✘") + "</span> ";
      li.appendChild(document.createTextNode(e.message + (d.latency_s !== undefined && d.latency_s !== null ? " (" + fmt(d.latency_s, 2) + " s)" : "")));
      $("challenges").prepend(li);
    } else if (e.kind === "challenge.sequence") {
      $("prompt").hidden = true;
    }
  }

  function logEvent(e) {
    const li = document.createElement("li");
    li.textContent = (e.t !== undefined ? fmt(e.t, 1) + "s " : "") + e.kind + ": " + e.message;
    const ul = $("events"); ul.prepend(li);
    while (ul.children.length > 100) ul.removeChild(ul.lastChild);
  }

  /* the content rectangle of the picture inside the view (object-fit: contain) */
  function contentRect() {
    const W = canvas.clientWidth, H = canvas.clientHeight;
    const vw = video.videoWidth || (last && last.width) || 640, vh = video.videoHeight || (last && last.height) || 480;
    const s = Math.min(W / vw, H / vh);
    return { x: (W - vw * s) / 2, y: (H - vh * s) / 2, w: vw * s, h: vh * s };
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== canvas.clientWidth * dpr || canvas.height !== canvas.clientHeight * dpr) {
      canvas.width = canvas.clientWidth * dpr; canvas.height = canvas.clientHeight * dpr;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, canvas.clientWidth, canvas.clientHeight);
    const r = contentRect();
    const c = drag ? drag.rect : crop;
    if (c) {
      ctx.strokeStyle = "#4c8dff"; ctx.setLineDash([6, 4]); ctx.lineWidth = 2;
      ctx.strokeRect(r.x + c.x * r.w, r.y + c.y * r.h, c.w * r.w, c.h * r.h); ctx.setLineDash([]);
    }
    if (last && last.face && last.box) {
      const sx = r.w / last.width, sy = r.h / last.height, b = last.box;
      const risk = last.risk === undefined || last.risk === null ? 0 : last.risk;
      ctx.strokeStyle = risk > 0.66 ? "#e5484d" : risk > 0.33 ? "#f0b429" : "#2fbf71"; ctx.lineWidth = 3;
      ctx.strokeRect(r.x + b[0] * sx, r.y + b[1] * sy, b[2] * sx, b[3] * sy);
      ctx.fillStyle = "rgba(0,0,0,.6)"; ctx.fillRect(r.x + b[0] * sx, r.y + b[1] * sy - 22, 190, 20);
      ctx.fillStyle = "#fff"; ctx.font = "13px system-ui";
      ctx.fillText("yaw " + fmt(last.yaw, 0) + "°  pitch " + fmt(last.pitch, 0) + "°  roll " + fmt(last.roll, 0) + "°",
        r.x + b[0] * sx + 5, r.y + b[1] * sy - 7);
    }
    (last && last.other_boxes || []).forEach((b) => {
      const sx = r.w / last.width, sy = r.h / last.height;
      ctx.strokeStyle = "#8b95a5"; ctx.lineWidth = 1; ctx.strokeRect(r.x + b[0] * sx, r.y + b[1] * sy, b[2] * sx, b[3] * sy);
    });
  }

  function norm(ev) {
    const r = contentRect(), b = canvas.getBoundingClientRect();
    return { x: Math.max(0, Math.min(1, (ev.clientX - b.left - r.x) / r.w)), y: Math.max(0, Math.min(1, (ev.clientY - b.top - r.y) / r.h)) };
  }
  canvas.addEventListener("pointerdown", (ev) => { if (!session) return; const p = norm(ev); drag = { p0: p, rect: { x: p.x, y: p.y, w: 0, h: 0 } }; canvas.setPointerCapture(ev.pointerId); });
  canvas.addEventListener("pointermove", (ev) => {
    if (!drag) return; const p = norm(ev);
    drag.rect = { x: Math.min(p.x, drag.p0.x), y: Math.min(p.y, drag.p0.y), w: Math.abs(p.x - drag.p0.x), h: Math.abs(p.y - drag.p0.y) }; draw();
  });
  canvas.addEventListener("pointerup", () => {
    if (!drag) return; const c = drag.rect; drag = null;
    if (c.w >= 0.03 && c.h >= 0.03) { crop = c; send("set_crop", { x: c.x, y: c.y, w: c.w, h: c.h }); }
    draw();
  });

  $("src-screen").addEventListener("click", () => startLocal("screen"));
  $("src-camera").addEventListener("click", () => startLocal("camera"));
  $("src-invite").addEventListener("click", startInvite);
  $("copy").addEventListener("click", () => { $("join-url").select(); navigator.clipboard && navigator.clipboard.writeText($("join-url").value); });
  $("clear-crop").addEventListener("click", () => { crop = null; send("clear_crop"); draw(); });
  $("start-challenges").addEventListener("click", () => send("start_challenges", { count: Number($("challenge-count").value) || 3 }));
  $("stop").addEventListener("click", () => send("stop", { reason: "stopped by the interviewer" }));
  window.addEventListener("resize", draw);
  video.addEventListener("loadedmetadata", draw);
  window.livenessConsole = { get last() { return last; }, get session() { return session; }, startLocal, startInvite };
})();
