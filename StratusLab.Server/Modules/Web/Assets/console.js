// The live serial console of an instance: xterm.js (vendored from npm) over the console WebSocket, which the server
// authorizes with the session cookie (same origin only). The instance page calls stratuslabStartConsole again when it
// updates itself in place and a terminal appears (the instance reached BOOT).
"use strict";
window.stratuslabStartConsole = function () {
  const el = document.getElementById("terminal");
  if (!el || !window.Terminal || el.dataset.started === "true") return;
  el.dataset.started = "true";
  if (window.stratuslabTerminal) window.stratuslabTerminal.dispose();
  const term = new window.Terminal({ convertEol: false, cursorBlink: true, fontSize: 13, scrollback: 5000 });
  const fit = window.FitAddon ? new window.FitAddon.FitAddon() : null;
  if (fit) term.loadAddon(fit);
  term.open(el);
  if (fit) { fit.fit(); window.addEventListener("resize", () => fit.fit()); }
  window.stratuslabTerminal = term;
  // The boot so far first (the log the server keeps), then the live serial port.
  fetch(el.dataset.log, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.text() : ""))
    .catch(() => "")
    .then((log) => { if (log) term.write(log.replace(/\r?\n/g, "\r\n")); connect(el, term); });
};
document.addEventListener("DOMContentLoaded", () => window.stratuslabStartConsole());

// The serial port may not be there yet (the VM just entered BOOT) or may drop: while the instance page says the VM is
// live, the console connects again, backing off, rather than waiting for a reload that no longer comes.
function connect(el, term, attempt = 0) {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + el.dataset.ws;
  const ws = new WebSocket(url);
  let opened = false;
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { opened = true; attempt = 0; el.dataset.connected = "true"; ws.send(new TextEncoder().encode("\r")); };
  ws.onmessage = (m) => term.write(new Uint8Array(m.data));
  ws.onclose = () => {
    el.dataset.connected = "false";
    if (opened) term.write("\r\n[console closed]\r\n");
    const state = document.getElementById("instance")?.dataset.state;
    if (el.isConnected && attempt < 30 && (state === "BOOT" || state === "RUNNING" || state === "SUSPENDED"))
      setTimeout(() => { if (el.isConnected) connect(el, term, attempt + 1); }, Math.min(1000 * (attempt + 1), 5000));
  };
  const typing = term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(new TextEncoder().encode(d)); });
  ws.addEventListener("close", () => typing.dispose());
}
