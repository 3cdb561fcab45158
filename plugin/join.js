(function () {
  "use strict";
  const token = decodeURIComponent(location.pathname.split("/").pop());
  const stateEl = document.getElementById("state");
  const startBtn = document.getElementById("start");
  const stopBtn = document.getElementById("stop");
  let conn = null;
  const say = (t) => { stateEl.textContent = t; document.body.dataset.state = t; };
  startBtn.addEventListener("click", async () => {
    startBtn.disabled = true;
    say("Starting the camera…");
    try {
      conn = await LivenessEmbed.join({
        server: location.origin, token, video: document.getElementById("preview"),
        onState: (s) => {
          if (s === "connected") say("Connected: the check is running.");
          else if (s === "failed" || s === "closed" || s === "disconnected") say("Disconnected (" + s + ").");
        },
        onMessage: (m) => { if (m.type === "bye") say("The session has ended."); },
      });
      stopBtn.disabled = false;
      say("Connecting…");
    } catch (e) {
      say("Could not start: " + e.message);
      startBtn.disabled = false;
    }
  });
  stopBtn.addEventListener("click", () => { if (conn) conn.stop(); stopBtn.disabled = true; say("Stopped."); });
})();
