/* interview-liveness embed SDK (protocol liveness.dc/1).
 *
 * For platforms: stream a candidate's camera to a liveness server with a single-use link token.
 *
 *   <script src="https://liveness.example/plugin/liveness-embed.js"></script>
 *   const conn = await LivenessEmbed.join({server: "https://liveness.example", token, video: el});
 *   ...
 *   conn.stop();
 *
 * The interviewer console uses LivenessEmbed.connect() with its own stream and API key.
 */
(function (global) {
  "use strict";
  const PROTOCOL = "liveness.dc/1";

  function waitIceGathering(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(done, timeoutMs || 3000);
    });
  }

  /* connect({offerUrl, stream, headers, source, onMessage, onState, iceServers})
   * -> {pc, channel, send(cmd, args), stop()} */
  async function connect(opts) {
    const track = opts.stream.getVideoTracks()[0];
    if (!track) throw new Error("the stream has no video track");
    const pc = new RTCPeerConnection({ iceServers: opts.iceServers || [] });
    const channel = pc.createDataChannel("liveness");
    pc.addTransceiver(track, { direction: "sendonly", streams: [opts.stream] });
    const onState = opts.onState || function () {};
    pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
    channel.addEventListener("message", (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.v !== PROTOCOL) return;
      if (opts.onMessage) opts.onMessage(msg);
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
    let n = 0;
    // closing the tab does not close the connection by itself: close it explicitly so the
    // server ends the session at once instead of after its no-media timeout
    const onHide = () => pc.close();
    if (opts.closeOnPageHide !== false) window.addEventListener("pagehide", onHide);
    return {
      pc, channel, session: body.session,
      send(cmd, args) {
        const id = "c" + (++n);
        if (channel.readyState === "open") {
          channel.send(JSON.stringify({ v: PROTOCOL, type: "command", id, cmd, args: args || {} }));
        }
        return id;
      },
      stop() {
        window.removeEventListener("pagehide", onHide);
        try { track.stop(); } catch (e) { /* already stopped */ }
        pc.close();
        onState("closed");
      },
    };
  }

  /* join({server, token, video, constraints, onState}) - the candidate path. */
  async function join(opts) {
    const server = (opts.server || "").replace(/\/$/, "");
    const stream = await navigator.mediaDevices.getUserMedia(
      opts.constraints || { video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15, max: 15 } }, audio: false });
    if (opts.video) { opts.video.srcObject = stream; opts.video.muted = true; opts.video.play().catch(() => {}); }
    return connect({
      offerUrl: server + "/api/join/" + encodeURIComponent(opts.token) + "/offer",
      stream, source: "candidate-camera", onState: opts.onState, onMessage: opts.onMessage,
      credentials: "omit",
    });
  }

  global.LivenessEmbed = { PROTOCOL, connect, join, waitIceGathering };
})(window);
