// The memkv dashboard: polls this server's admin API every two seconds and
// draws what it returns. Rates are computed here from the counters of
// /v1/metrics; the history lives in this page (the last ten minutes).
"use strict";

const kPollMs = 2000;
const kHistory = 300;  // samples: ten minutes at one every two seconds
const history = [];    // {t, ops, bytes}: rates per second
let previous = null;   // {t, entries, bytes}: the last counters read

function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i + 1 < units.length) { n /= 1024; i += 1; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}

function formatRate(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(2) + " M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + " k";
  return v.toFixed(v < 10 ? 1 : 0);
}

// Sums the samples of one counter family across its labels.
function sumMetric(text, name) {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== "{" && rest[0] !== " ") continue;  // another family with this prefix
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}

function drawChart(svg, values, format) {
  const w = 600, h = 160, left = 44, bottom = 18, top = 8;
  const ns = "http://www.w3.org/2000/svg";
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const max = Math.max(1e-9, ...values);
  for (let g = 0; g <= 4; g++) {
    const y = top + (h - top - bottom) * g / 4;
    const line = document.createElementNS(ns, "line");
    line.setAttribute("class", "grid");
    line.setAttribute("x1", left); line.setAttribute("x2", w);
    line.setAttribute("y1", y); line.setAttribute("y2", y);
    svg.appendChild(line);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 2); label.setAttribute("y", y + 4);
    label.textContent = format(max * (4 - g) / 4);
    svg.appendChild(label);
  }
  const note = document.createElementNS(ns, "text");
  note.setAttribute("x", left); note.setAttribute("y", h - 4);
  note.textContent = values.length < 2 ? "collecting…" : "last " + Math.round(values.length * kPollMs / 1000) + " s";
  svg.appendChild(note);
  if (values.length < 2) return;
  const points = values.map((v, i) => {
    const x = left + (w - left) * i / (kHistory - 1);
    const y = top + (h - top - bottom) * (1 - v / max);
    return x.toFixed(1) + "," + y.toFixed(1);
  });
  const poly = document.createElementNS(ns, "polyline");
  poly.setAttribute("class", "line");
  poly.setAttribute("points", points.join(" "));
  svg.appendChild(poly);
}

function showStatus(status) {
  const health = document.getElementById("health");
  health.textContent = status.status;
  health.className = "state-" + status.status;
  const st = status.storage;
  document.getElementById("summary").textContent =
      "version " + status.version + " · " + st.mode + " mode · " + st.drives.length + " drives · " +
      formatBytes(st.used_bytes_total) + " of " + formatBytes(st.usable_bytes_total) + " used · " +
      st.keys + " keys · up " + status.uptime_seconds + " s";
  document.getElementById("used").textContent = formatBytes(st.used_bytes_total);
  document.getElementById("session-count").textContent = status.sessions.active;
  const ops = status.operations;
  document.getElementById("hit-ratio").textContent =
      ops.gets > 0 ? (100 * (1 - ops.misses / ops.gets)).toFixed(1) + " %" : "–";

  // Value bytes moved per rail since the server started.
  const rails = document.querySelector("#rails tbody");
  rails.textContent = "";
  for (const name of ["tcp", "shm", "rdma"]) {
    const row = document.createElement("tr");
    row.className = "rail";
    const on = status.rails[name] ? "on" : "off";
    const moved = (status.rail_bytes || {})[name] || {to_clients: 0, from_clients: 0};
    cell(row, name);
    cell(row, on, "state-" + (on === "on" ? "online" : "offline"));
    cell(row, formatBytes(moved.to_clients));
    cell(row, formatBytes(moved.from_clients));
    rails.appendChild(row);
  }

  const body = document.querySelector("#drives tbody");
  body.textContent = "";
  for (const d of st.drives) {
    const row = document.createElement("tr");
    row.className = "drive";
    const state = d.resetting ? "resetting" : (d.online ? "online" : "offline");
    cell(row, d.id);
    cell(row, d.name);
    cell(row, state, "state-" + state);
    cell(row, formatBytes(d.used_bytes));
    cell(row, formatBytes(d.usable_bytes));
    cell(row, d.usable_bytes > 0 ? (100 * d.used_bytes / d.usable_bytes).toFixed(1) + " %" : "–");
    body.appendChild(row);
  }
}

function showSessions(list) {
  const body = document.querySelector("#sessions tbody");
  body.textContent = "";
  for (const s of list.sessions) {
    const row = document.createElement("tr");
    cell(row, s.id);
    cell(row, s.host_id);
    cell(row, s.peer);
    cell(row, s.rail);
    cell(row, s.regions);
    body.appendChild(row);
  }
}

function showRates(metrics) {
  const now = performance.now() / 1000;
  const counters = {
    t: now,
    entries: sumMetric(metrics, "memkv_entries_total"),
    bytes: sumMetric(metrics, "memkv_value_bytes_total"),
  };
  if (previous !== null && now > previous.t) {
    const dt = now - previous.t;
    history.push({
      ops: Math.max(0, counters.entries - previous.entries) / dt,
      gibs: Math.max(0, counters.bytes - previous.bytes) / dt / 2 ** 30,
    });
    if (history.length > kHistory) history.shift();
  }
  previous = counters;
  const last = history[history.length - 1];
  document.getElementById("ops-now").textContent = last ? formatRate(last.ops) : "–";
  document.getElementById("gibs-now").textContent = last ? last.gibs.toFixed(3) : "–";
  drawChart(document.getElementById("chart-ops"), history.map((s) => s.ops), formatRate);
  drawChart(document.getElementById("chart-gibs"), history.map((s) => s.gibs), (v) => v.toFixed(2));
}

async function poll() {
  try {
    const [status, sessions, metrics] = await Promise.all([
      fetch("/v1/status").then((r) => r.json()),
      fetch("/v1/sessions").then((r) => r.json()),
      fetch("/v1/metrics").then((r) => r.text()),
    ]);
    showStatus(status);
    showSessions(sessions);
    showRates(metrics);
    document.body.dataset.updated = String(Date.now());
  } catch (e) {
    const health = document.getElementById("health");
    health.textContent = "unreachable";
    health.className = "state-unhealthy";
  }
  setTimeout(poll, kPollMs);
}

poll();
