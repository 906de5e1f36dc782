// The graphical console of an instance: noVNC (vendored from npm, ES modules served from the binary) over the screen's
// WebSocket, which the server authorizes with the session cookie (same origin only) and pipes to the VM's VNC socket.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("screen");
  const status = document.getElementById("screen-status");
  if (!el) return;
  import("/ui/assets/vendor/novnc/core/rfb.js").then(({ default: RFB }) => {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + el.dataset.ws;
    const rfb = new RFB(el, url, { shared: true });
    rfb.scaleViewport = true;
    rfb.focusOnClick = true;
    window.stratuslabScreen = rfb;
    rfb.addEventListener("connect", () => {
      el.dataset.connected = "true";
      status.textContent = "Connected: click the screen, then keyboard and mouse go to the VM.";
    });
    rfb.addEventListener("disconnect", (e) => {
      el.dataset.connected = "false";
      status.textContent = e.detail.clean ? "Disconnected (the VM stopped or the screen closed)." : "The connection was refused or lost; reload the page to try again.";
    });
    rfb.addEventListener("desktopname", (e) => { el.setAttribute("aria-label", "Screen of " + e.detail.name); });
    const cad = document.getElementById("send-cad");
    if (cad) cad.addEventListener("click", () => rfb.sendCtrlAltDel());
  }).catch((e) => { status.textContent = "The screen viewer could not load: " + e; });
});
