// The dashboard's small scripts: live instance states (server-sent events from /ui/events) and copy buttons.
// Values from events are written with textContent only, never as HTML.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const b of document.querySelectorAll("button.copy-button")) {
    b.addEventListener("click", async () => {
      try { await navigator.clipboard.writeText(b.dataset.copy); b.textContent = "Copied"; } catch { b.textContent = "Select and copy"; }
    });
  }
  const table = document.getElementById("instances");
  const instance = document.getElementById("instance");
  if (!table && !instance) return;
  const events = new EventSource("/ui/events");
  window.stratuslabEvents = events;
  // Changes between the page's rendering and the stream's (re)connection are not replayed: catch up once on each open.
  // The stream is subscribed before it answers, so nothing falls between this read and the events that follow.
  events.addEventListener("open", () => {
    if (table) resyncList(table);
    if (instance) resyncInstance(instance);
  });
  events.addEventListener("instance", (m) => {
    const e = JSON.parse(m.data);
    if (table) updateRow(table, e);
    if (instance && String(e.id) === instance.dataset.id && (e.state !== instance.dataset.state || String(e.ready) !== instance.dataset.ready)) {
      const live = document.getElementById("instance-live");
      if (live) live.textContent = "now " + e.state + (e.ready ? ", ready" : "") + "; reloading…";
      // The console keeps running while the page shows a new state: reload only when the state itself changed.
      setTimeout(() => location.reload(), 300);
    }
  });
});

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

async function resyncInstance(instance) {
  const r = await fetch("/api/v1/instances/" + Number(instance.dataset.id), { credentials: "same-origin" });
  if (!r.ok) return;
  const i = await r.json();
  if (i.state !== instance.dataset.state || String(i.ready) !== instance.dataset.ready) location.reload();
}
