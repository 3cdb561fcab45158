/* interview-liveness embed SDK (protocol liveness.dc/1). Documented in docs/embed.md.
 *
 * For platforms. Two sides, two pages:
 *
 *   candidate (their camera, a single-use link token; receives no verdict, score or prompt):
 *     const cand = await LivenessEmbed.join({server: "https://liveness.example", token, video: el});
 *     cand.on("ended", (e) => ...);  ...  cand.stop();
 *
 *   interviewer (watches one session with its watch token; never give it to the candidate):
 *     const w = LivenessEmbed.watch({server: "https://liveness.example", session, watchToken});
 *     w.on("verdict", (v) => ...).on("prompt", (p) => ...).on("challenge", (c) => ...);
 *     w.startChallenges(3);  ...  w.close();
 *
 * The interviewer console uses LivenessEmbed.connect() with its own stream and API key.
 * Every handle has on(name, fn) / once(name, fn) (both chainable) and off(name, fn).
 */
(function (global) {
  "use strict";
  const PROTOCOL = "liveness.dc/1";
  const WATCH_PROTOCOL = "liveness";
  const WATCH_TOKEN_PREFIX = "liveness-watch.";
  const EVENTS = ["message", "hello", "state", "connection", "result", "status", "verdict", "prompt",
    "challenge", "sequence", "event", "error", "ack", "ended"];
  const DEFAULT_VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15, max: 15 } };

  /* Adds on/once/off to `target`; returns emit(name, payload). A listener that throws does not
   * stop the others (its error is rethrown on its own, so it still shows in the console). */
  function makeEmitter(target, initial) {
    const handlers = {};
    target.on = function (name, fn) {
      if (EVENTS.indexOf(name) < 0) throw new Error("unknown event " + JSON.stringify(name) + "; known: " + EVENTS.join(", "));
      if (typeof fn !== "function") throw new Error("on(" + name + ", fn): fn must be a function");
      (handlers[name] = handlers[name] || []).push(fn);
      return target;
    };
    target.off = function (name, fn) {
      const list = handlers[name] || [];
      const i = list.findIndex((h) => h === fn || h.inner === fn);
      if (i >= 0) list.splice(i, 1);
      return target;
    };
    target.once = function (name, fn) {
      const wrapper = function (payload) { target.off(name, wrapper); fn(payload); };
      wrapper.inner = fn;
      return target.on(name, wrapper);
    };
    for (const name of Object.keys(initial || {})) target.on(name, initial[name]);
    return function emit(name, payload) {
      for (const fn of (handlers[name] || []).slice()) {
        try { fn(payload); } catch (e) { setTimeout(() => { throw e; }, 0); }
      }
    };
  }

  function eventBody(m) {
    return Object.assign({}, m.data || {}, { t: m.t, text: m.message, event: m.kind });
  }

  /* Turns protocol messages into SDK events. `verdict` fires when the fused verdict differs from
   * the last one (label, risk or reasons), from the once-a-second status and the final bye. */
  function makeRouter(emit) {
    let lastVerdict = null;
    function verdict(v, final) {
      if (!v) return;
      const key = JSON.stringify([v.label, v.risk, v.reasons]);
      if (key === lastVerdict && !final) return;
      lastVerdict = key;
      emit("verdict", Object.assign({}, v, { final: !!final }));
    }
    return function route(m) {
      if (!m || m.v !== PROTOCOL) return;
      emit("message", m);
      switch (m.type) {
        case "hello": emit("hello", m); break;
        case "state": emit("state", { state: m.state }); break;
        case "result": emit("result", m); break;
        case "status": emit("status", m); verdict(m.verdict, false); break;
        case "ack": emit("ack", m); break;
        case "event": {
          const body = eventBody(m);
          emit("event", m);
          if (m.kind === "challenge.prompt") emit("prompt", body);
          else if (m.kind === "challenge.result") emit("challenge", body);
          else if (m.kind === "challenge.sequence") emit("sequence", body);
          else if (typeof m.kind === "string" && m.kind.indexOf("error.") === 0) emit("error", body);
          break;
        }
        case "bye":
          verdict(m.verdict, true);
          emit("ended", { reason: m.reason, verdict: m.verdict || null });
          break;
        default: break;
      }
    };
  }

  function commander(sendText) {
    let n = 0;
    return function send(cmd, args) {
      const id = "c" + (++n);
      sendText(JSON.stringify({ v: PROTOCOL, type: "command", id, cmd, args: args || {} }));
      return id;
    };
  }

  function waitIceGathering(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(done, timeoutMs || 3000);
    });
  }

  /* connect({offerUrl, stream, headers, source, on, onMessage, onState, iceServers, credentials,
   *          closeOnPageHide}) -> {pc, channel, session, send(cmd, args), startChallenges(count, kinds),
   *          stop(), on, once, off} */
  async function connect(opts) {
    const track = opts.stream.getVideoTracks()[0];
    if (!track) throw new Error("the stream has no video track");
    const handle = {};
    const emit = makeEmitter(handle, opts.on);
    const route = makeRouter(emit);
    const pc = new RTCPeerConnection({ iceServers: opts.iceServers || [] });
    const channel = pc.createDataChannel("liveness");
    pc.addTransceiver(track, { direction: "sendonly", streams: [opts.stream] });
    const onState = opts.onState || function () {};
    const connection = (s) => { onState(s); emit("connection", { state: s }); };
    pc.addEventListener("connectionstatechange", () => connection(pc.connectionState));
    channel.addEventListener("message", (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.v !== PROTOCOL) return;
      if (opts.onMessage) opts.onMessage(msg);
      route(msg);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await waitIceGathering(pc, 3000);
    const resp = await fetch(opts.offerUrl, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, opts.headers || {}),
      credentials: opts.credentials || "same-origin",
      body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, source: opts.source || "camera" }),
    });
    let body = null;
    try { body = await resp.json(); } catch (e) { body = { error: "HTTP " + resp.status }; }
    if (!resp.ok) { pc.close(); throw new Error(body.error || ("HTTP " + resp.status)); }
    await pc.setRemoteDescription({ type: body.type, sdp: body.sdp });
    // closing the tab does not close the connection by itself: close it explicitly so the
    // server ends the session at once instead of after its no-media timeout
    const onHide = () => pc.close();
    if (opts.closeOnPageHide !== false) window.addEventListener("pagehide", onHide);
    const send = commander((text) => { if (channel.readyState === "open") channel.send(text); });
    return Object.assign(handle, {
      pc, channel, session: body.session, send,
      startChallenges(count, kinds) { return send("start_challenges", kinds ? { count: count || 3, kinds } : { count: count || 3 }); },
      stop() {
        window.removeEventListener("pagehide", onHide);
        try { track.stop(); } catch (e) { /* already stopped */ }
        pc.close();
        connection("closed");
      },
    });
  }

  /* join({server, token, video, constraints, on, onState, onMessage}) - the candidate path: the
   * server sends it only hello/state/ack and a bye with the reason, never a verdict or prompt. */
  async function join(opts) {
    if (!opts || !opts.token) throw new Error("join needs the candidate's token");
    const server = (opts.server || "").replace(/\/$/, "");
    const stream = await navigator.mediaDevices.getUserMedia(opts.constraints || { video: DEFAULT_VIDEO, audio: false });
    if (opts.video) { opts.video.srcObject = stream; opts.video.muted = true; opts.video.play().catch(() => {}); }
    try {
      return await connect({
        offerUrl: server + "/api/join/" + encodeURIComponent(opts.token) + "/offer",
        stream, source: "candidate-camera", on: opts.on, onState: opts.onState, onMessage: opts.onMessage,
        credentials: "omit", closeOnPageHide: opts.closeOnPageHide,
      });
    } catch (e) {
      stream.getTracks().forEach((t) => t.stop());
      throw e;
    }
  }

  /* watch({server, session, watchToken, on, url}) -> {ws, session, send(cmd, args),
   * startChallenges(count, kinds), end(reason), close(), on, once, off}: the interviewer's side,
   * every message of one session over the watch WebSocket. Returns at once; subscribe with on(). */
  function watch(opts) {
    if (!opts || !opts.session) throw new Error("watch needs the session id");
    const server = (opts.server || global.location.origin).replace(/\/$/, "");
    const url = opts.url || (server.replace(/^http/, "ws") + "/api/sessions/" + encodeURIComponent(opts.session) + "/watch");
    // a browser cannot set headers on a WebSocket: the token travels as a subprotocol
    const protocols = [WATCH_PROTOCOL];
    if (opts.watchToken) protocols.push(WATCH_TOKEN_PREFIX + opts.watchToken);
    const handle = { session: opts.session };
    const emit = makeEmitter(handle, opts.on);
    const route = makeRouter(emit);
    const ws = new WebSocket(url, protocols);
    let opened = false, ended = false;
    emit("connection", { state: "connecting" });
    ws.addEventListener("open", () => { opened = true; emit("connection", { state: "connected" }); });
    ws.addEventListener("message", (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg && msg.type === "bye") ended = true;
      route(msg);
      if (ended) ws.close();  // nothing follows a bye
    });
    ws.addEventListener("close", (ev) => {
      if (!opened) {
        emit("error", { event: "error.connection", text: "the watch socket was refused (wrong server, session, watch token or origin?)", code: ev.code });
      }
      emit("connection", { state: ended ? "ended" : "closed", code: ev.code });
    });
    const send = commander((text) => { if (ws.readyState === 1) ws.send(text); });
    return Object.assign(handle, {
      ws, send,
      startChallenges(count, kinds) { return send("start_challenges", kinds ? { count: count || 3, kinds } : { count: count || 3 }); },
      end(reason) { return send("stop", reason ? { reason } : {}); },
      close() { ws.close(); },
    });
  }

  global.LivenessEmbed = { PROTOCOL, EVENTS, connect, join, watch, waitIceGathering };
})(window);
