// Hexiao console: progressive enhancement only (quantity stepper, live updates); every form works without JS.
"use strict";

document.addEventListener("click", (ev) => {
  const btn = ev.target.closest("button.step");
  if (!btn) return;
  const input = document.getElementById(btn.dataset.for);
  const min = Number(input.min || 1), max = Number(input.max || 99);
  const next = Math.min(max, Math.max(min, (Number(input.value) || min) + Number(btn.dataset.step)));
  input.value = String(next);
  input.dispatchEvent(new Event("change"));
});

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value == null ? "" : String(value);
  if (cls) el.className = cls;
  return el;
}

// A time is shown in the zone of its row's site (as the server-rendered rows are), the gateway's time zone
// for rows without a site; never the browser's.
const clockFormats = {};
function clock(t, tz) {
  const zone = tz || document.body.dataset.tz || undefined;
  const key = zone || "";
  if (!clockFormats[key]) {
    clockFormats[key] = new Intl.DateTimeFormat("en-GB", {
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZone: zone,
    });
  }
  return clockFormats[key].format(new Date(t * 1000));
}

// Live feed: /console/live/events (Server-Sent Events). The server ends each stream after a while and the
// browser reconnects with Last-Event-ID, so nothing is missed across reconnects.
function startLive(root) {
  const tbody = root.querySelector("tbody[data-feed]");
  const status = root.querySelector("[data-live-status]");
  const device = root.dataset.device || "";
  const labels = JSON.parse(root.dataset.labels || "{}");
  const url = "/console/live/events" + (device ? "?device=" + encodeURIComponent(device) : "");
  const es = new EventSource(url);
  es.onopen = () => { if (status) status.textContent = labels.connected || "connected"; };
  es.onerror = () => { if (status) status.textContent = labels.reconnecting || "reconnecting…"; };
  es.onmessage = (msg) => {
    const e = JSON.parse(msg.data);
    const empty = tbody && tbody.querySelector("tr[data-empty]");
    if (empty) empty.remove();
    if (tbody) {
      const tr = document.createElement("tr");
      tr.className = "new";
      tr.dataset.reason = e.reason;
      const when = text("td", clock(e.t, e.tz));
      when.title = e.tz || document.body.dataset.tz || "";
      tr.appendChild(when);
      if (!device) { tr.appendChild(text("td", e.device + (e.user && e.device !== "web-" + e.user ? " · " + e.user : ""))); tr.appendChild(text("td", e.site || "")); tr.appendChild(text("td", e.gate || "")); }
      const codeCell = text("td", "", "mono");
      const link = text("a", e.code);
      link.href = "/console/orders/" + encodeURIComponent(e.code);
      codeCell.appendChild(link);
      tr.appendChild(codeCell);
      const r = document.createElement("td");
      r.appendChild(text("span", (labels.reasons || {})[e.reason] || e.reason, "badge " + (e.ok ? "ok" : (e.sound === "attention" ? "attention" : "deny"))));
      tr.appendChild(r);
      tr.appendChild(text("td", e.detail));
      tbody.prepend(tr);
      while (tbody.children.length > 100) tbody.lastElementChild.remove();
    }
    const oled = root.querySelector("[data-oled]");
    if (oled) {
      oled.querySelector("[data-l1]").textContent = e.l1;
      oled.querySelector("[data-l2]").textContent = e.l2;
    }
    const key = (e.site || "") + "|" + (e.gate || "");
    let row = root.querySelector(`tr[data-counter="${CSS.escape(key)}"]`);
    const counters = root.querySelector("tbody[data-counters]");
    if (!row && counters) {
      row = document.createElement("tr");
      row.dataset.counter = key;
      row.appendChild(text("td", e.site || "—"));
      row.appendChild(text("td", e.gate || "—"));
      row.appendChild(text("td", 0, "num")).dataset.k = "ok";
      row.appendChild(text("td", 0, "num")).dataset.k = "units";
      row.appendChild(text("td", 0, "num")).dataset.k = "denied";
      counters.appendChild(row);
    }
    if (row) {
      const bump = (k, by) => { const c = row.querySelector(`[data-k="${k}"]`); if (c) c.textContent = String(Number(c.textContent) + by); };
      if (e.ok && e.op === "redeem") { bump("ok", 1); bump("units", e.qty || 1); }
      if (!e.ok) bump("denied", 1);
      const kpis = root.querySelector("[data-inside-list]");
      if (e.ok && (e.op === "redeem" || e.op === "exit" || e.op === "annul") && kpis) {
        // The gateway keeps who is inside per order; ask it rather than guess from the feed.
        fetch("/api/inside", {credentials: "same-origin"}).then(r => r.ok ? r.json() : null).then(d => {
          if (!d) return;
          for (const [site, n] of Object.entries(d.sites)) {
            let inside = kpis.querySelector(`[data-inside="${CSS.escape(site)}"]`);
            if (!inside) {
              const box = document.createElement("div");
              box.appendChild(text("span", site));
              inside = box.appendChild(text("strong", 0));
              inside.dataset.inside = site;
              kpis.appendChild(box);
            }
            inside.textContent = String(n);
          }
        });
      }
    }
  };
  window.addEventListener("pagehide", () => es.close());
}

document.querySelectorAll("[data-live]").forEach(startLive);
