// The dashboard's small scripts: live instance states (server-sent events from /ui/events) and copy buttons.
// Values from events are written with textContent only, never as HTML.
"use strict";
// The pages update themselves in place from the events: they never reload, so they can never interrupt a navigation
// or a form the user (or a test) has started. Once the page is being left, no update touches it any more.
let leaving = false;
window.addEventListener("beforeunload", () => { leaving = true; });
window.addEventListener("pagehide", () => { leaving = true; });
window.addEventListener("pageshow", () => { leaving = false; });
document.addEventListener("submit", () => { leaving = true; }, true);
document.addEventListener("click", (e) => {
  const b = e.target.closest && e.target.closest("button.copy-button");
  if (b) copy(b);
  const a = e.target.closest && e.target.closest("a[href]");
  if (a && e.button === 0 && !a.getAttribute("href").startsWith("#")) leaving = true;
});

async function copy(b) {
  try { await navigator.clipboard.writeText(b.dataset.copy); b.textContent = "Copied"; } catch { b.textContent = "Select and copy"; }
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("instances");
  const instance = document.getElementById("instance");
  if (!table && !instance) return;
  const events = new EventSource("/ui/events");
  window.stratuslabEvents = events;
  // Changes between the page's rendering and the stream's (re)connection are not replayed: catch up once on each open.
  // The stream is subscribed before it answers, so nothing falls between this read and the events that follow.
  events.addEventListener("open", () => {
    if (table) resyncList(table);
    if (instance) resyncInstance();
  });
  events.addEventListener("instance", (m) => {
    const e = JSON.parse(m.data);
    if (table) updateRow(table, e);
    const current = document.getElementById("instance");
    if (current && String(e.id) === current.dataset.id && (e.state !== current.dataset.state || String(e.ready) !== current.dataset.ready)) {
      const live = document.getElementById("instance-live");
      if (live) live.textContent = "now " + e.state + (e.ready ? ", ready" : "") + "; updating…";
      scheduleInstanceUpdate();
    }
  });
});

// Bursts of events (PROLOG, BOOT, RUNNING in a second) make one update; one update runs at a time.
let updateTimer = null, updating = false, updateAgain = false;
function scheduleInstanceUpdate() {
  clearTimeout(updateTimer);
  updateTimer = setTimeout(updateInstance, 250);
}

/** Fetches the instance's page and swaps its details (and, when the console comes alive, the console) in place. */
async function updateInstance() {
  if (leaving) return;
  if (updating) { updateAgain = true; return; }
  const instance = document.getElementById("instance");
  if (!instance) return;
  updating = true;
  try {
    const r = await fetch("/ui/instances/" + Number(instance.dataset.id), { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!r.ok || leaving) return;
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    if (leaving) return;
    const details = doc.getElementById("instance-details"), current = document.getElementById("instance-details");
    if (details && current) current.replaceWith(document.importNode(details, true));
    const consoleSection = doc.getElementById("instance-console"), currentConsole = document.getElementById("instance-console");
    // A running terminal stays (it keeps its WebSocket); a terminal appears when the instance comes alive.
    if (consoleSection && currentConsole && !document.getElementById("terminal")) {
      currentConsole.replaceWith(document.importNode(consoleSection, true));
      if (window.stratuslabStartConsole) window.stratuslabStartConsole();
    }
  } catch {
    // A failed update leaves the page as it was; the next event or reconnection tries again.
  } finally {
    updating = false;
    if (updateAgain) { updateAgain = false; scheduleInstanceUpdate(); }
  }
}

function badge(cell, state, ready) {
  cell.replaceChildren();
  const b = document.createElement("span");
  b.className = "state-badge " + state.toLowerCase();
  b.textContent = state;
  cell.append(b);
  if (ready) { const r = document.createElement("span"); r.className = "ready"; r.textContent = " ready"; cell.append(" ", r); }
}

function updateRow(table, e) {
  const filter = table.dataset.filter;
  const wanted = filter === "all" || (filter === "active" ? e.state !== "DONE" : e.state === filter);
  let row = table.querySelector(`tr[data-id="${Number(e.id)}"]`);
  if (row && !wanted) { row.remove(); return; }
  if (!wanted || (table.dataset.q && !e.name.toLowerCase().includes(table.dataset.q.toLowerCase()))) return;
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = String(Number(e.id));
    const name = document.createElement("td"), link = document.createElement("a");
    link.href = "/ui/instances/" + Number(e.id); link.textContent = e.name; name.append(link);
    const id = document.createElement("td"); id.textContent = String(e.id);
    const state = document.createElement("td"); state.className = "state";
    row.append(name, id, state, document.createElement("td"), document.createElement("td"), document.createElement("td"), document.createElement("td"));
    table.tBodies[0].prepend(row);
    document.getElementById("no-instances")?.remove();
  }
  badge(row.querySelector("td.state"), e.state, e.ready);
}

async function resyncList(table) {
  const f = table.dataset.filter;
  const states = f === "all" ? "" : f === "active" ? "&state=PENDING,PROLOG,BOOT,RUNNING,SHUTDOWN,STOPPED,SUSPENDED,EPILOG,FAILED" : "&state=" + encodeURIComponent(f);
  const r = await fetch("/api/v1/instances?limit=1000" + states, { credentials: "same-origin" });
  if (!r.ok) return;
  const list = await r.json();
  const seen = new Set(list.map((i) => String(i.id)));
  for (const row of table.querySelectorAll("tbody tr[data-id]")) if (!seen.has(row.dataset.id)) row.remove();
  for (const row of table.querySelectorAll("tbody tr[data-id]")) {
    const i = list.find((x) => String(x.id) === row.dataset.id);
    if (i) badge(row.querySelector("td.state"), i.state, i.ready);
  }
}

async function resyncInstance() {
  const instance = document.getElementById("instance");
  if (!instance) return;
  const r = await fetch("/api/v1/instances/" + Number(instance.dataset.id), { credentials: "same-origin" });
  if (!r.ok) return;
  const i = await r.json();
  if (i.state !== instance.dataset.state || String(i.ready) !== instance.dataset.ready) scheduleInstanceUpdate();
}

// The volumes page's upload: the file goes as the request body (streamed into Pdisk on the server), with the CSRF
// header; the progress bar follows the bytes sent (XHR upload progress events, not polling).
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload");
  if (!form) return;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    e.stopPropagation();
    const file = document.getElementById("upload-file").files[0];
    const tag = document.getElementById("upload-tag").value.trim();
    const bar = document.getElementById("upload-progress");
    const status = document.getElementById("upload-status");
    const problem = document.getElementById("upload-problem");
    if (!file) return;
    problem.hidden = true;
    bar.hidden = false;
    bar.value = 0;
    status.textContent = "Uploading " + file.name + "…";
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/ui/volumes/upload" + (tag ? "?tag=" + encodeURIComponent(tag) : ""));
    xhr.setRequestHeader("X-CSRF-Token", document.querySelector('meta[name="csrf-token"]').content);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", (p) => {
      if (p.lengthComputable) {
        bar.value = Math.floor(100 * p.loaded / p.total);
        status.textContent = Math.floor(p.loaded / 1048576) + " of " + Math.ceil(p.total / 1048576) + " MiB sent";
      }
    });
    xhr.addEventListener("load", () => {
      let answer = null;
      try { answer = JSON.parse(xhr.responseText); } catch { answer = null; }
      if (xhr.status === 201 && answer) {
        bar.value = 100;
        status.textContent = "Uploaded: volume " + answer.uuid + " (" + answer.sizeGiB + " GiB, " + answer.state + ")";
        leaving = true;
        window.location.assign(answer.href);
      } else {
        bar.hidden = true;
        status.textContent = "";
        problem.textContent = (answer && answer.detail) || ("The upload was refused (" + xhr.status + "); reload the page and try again.");
        problem.hidden = false;
      }
    });
    xhr.addEventListener("error", () => {
      bar.hidden = true;
      status.textContent = "";
      problem.textContent = "The upload was interrupted; check the connection and try again.";
      problem.hidden = false;
    });
    xhr.send(file);
  });
});

// The admin image cache page: while downloads are in flight, server-sent events bring their progress each second;
// when the last one ends the stream says so and the page is shown again once with the final states.
document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("cache");
  if (!table || !table.dataset.live) return;
  const events = new EventSource("/ui/admin/images/progress");
  window.stratuslabCacheEvents = events;
  events.addEventListener("progress", (m) => {
    const e = JSON.parse(m.data);
    for (const d of e.downloads) {
      const row = Array.from(table.querySelectorAll("tr[data-image]")).find((r) => r.dataset.image === d.image);
      if (!row) continue;
      const bar = row.querySelector("progress");
      const done = row.querySelector(".done");
      if (bar) {
        if (d.bytesTotal) bar.max = d.bytesTotal;
        bar.value = d.bytesDone;
      }
      if (done) done.textContent = (d.bytesDone / 1048576).toFixed(1) + " MiB" + (d.bytesTotal ? " of " + (d.bytesTotal / 1048576).toFixed(1) + " MiB" : "");
    }
    if (e.idle) {
      events.close();
      if (!leaving) { leaving = true; window.location.reload(); }
    }
  });
});
