// stockpipe dashboard: one EventSource (/events), a snapshot then updates; charts drawn with the
// plotly.js that the installed plotly package ships (/vendor/plotly.min.js). No other script.
"use strict";

const COLORS = { price: "#4aa8ff", short: "#f0a030", long: "#b07cff", BUY: "#2ecc71", SELL: "#ff5c5c", ANOMALY: "#f5c542" };
const SHOWN_ALERTS = 100;
const view = { version: 0, labels: { short: "SMA-5", long: "SMA-20" }, window: 600, points: {}, alerts: [], lag: [],
               health: null, symbols: [] };

// Times arrive as ISO 8601 UTC ("2026-03-02T14:30:00.000Z"); plotly takes them without the zone.
const plotTime = (iso) => iso.replace("T", " ").replace("Z", "");
const msTime = (ms) => plotTime(new Date(ms).toISOString());
const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

function axisLayout(title) {
  return {
    margin: { l: 50, r: 10, t: 48, b: 30 }, paper_bgcolor: "#182029", plot_bgcolor: "#182029",
    font: { color: "#dde3ea", size: 11 }, title: { text: title, x: 0.01, font: { size: 13 } },
    xaxis: { type: "date", gridcolor: "#223040", title: { text: "UTC", font: { size: 10 } } },
    yaxis: { gridcolor: "#223040" },
    legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom", font: { size: 10 } },
    uirevision: title,
  };
}

const resized = new ResizeObserver((entries) => {
  for (const entry of entries) if (entry.target.data) Plotly.Plots.resize(entry.target);
});

function chartOf(symbol) {
  let div = document.getElementById(`chart-${symbol}`);
  if (!div) {
    div = document.createElement("div");
    div.id = `chart-${symbol}`;
    div.className = "chart";
    div.dataset.symbol = symbol;
    const charts = document.getElementById("charts");
    const after = [...charts.querySelectorAll(".chart")].find((el) => el.dataset.symbol > symbol);
    charts.insertBefore(div, after || null);
    document.getElementById("no-symbols").hidden = true;
    // A new chart changes the grid: every chart follows its box's size (not only the window's).
    resized.observe(div);
  }
  return div;
}

function drawSymbol(symbol) {
  const points = view.points[symbol] || [];
  const x = points.map((p) => plotTime(p.t));
  const first = points.length ? points[0].t : "";
  const anomalies = points.filter((p) => p.a);
  const traces = [
    { name: "price", x, y: points.map((p) => p.p), mode: "lines", line: { color: COLORS.price, width: 1.5 } },
    { name: view.labels.short, x, y: points.map((p) => p.s), mode: "lines", line: { color: COLORS.short, width: 1 } },
    { name: view.labels.long, x, y: points.map((p) => p.l), mode: "lines", line: { color: COLORS.long, width: 1 } },
    { name: "anomaly", x: anomalies.map((p) => plotTime(p.t)), y: anomalies.map((p) => p.p), mode: "markers",
      marker: { color: COLORS.ANOMALY, size: 9, symbol: "x" },
      text: anomalies.map((p) => (p.c === null ? "" : `${p.c > 0 ? "+" : ""}${p.c.toFixed(2)} %`)) },
  ];
  for (const signal of ["BUY", "SELL"]) {
    const marks = view.alerts.filter((a) => a.symbol === symbol && a.signal === signal && a.timestamp >= first);
    traces.push({ name: signal, x: marks.map((a) => plotTime(a.timestamp)), y: marks.map((a) => a.price),
                  mode: "markers", customdata: marks.map((a) => a.timestamp),
                  marker: { color: COLORS[signal], size: 13, symbol: signal === "BUY" ? "triangle-up" : "triangle-down",
                            line: { color: "#0f1419", width: 1 } } });
  }
  const div = chartOf(symbol);
  Plotly.react(div, traces, axisLayout(symbol), { displayModeBar: false, responsive: true });
  div.dataset.points = String(points.length);
}

function drawLag() {
  const table = view.lag.filter((s) => s.kind === "table");
  const alerts = view.lag.filter((s) => s.kind === "alert");
  const traces = [  // the line over the dots
    { name: "tick → alert", x: alerts.map((s) => msTime(s.at)), y: alerts.map((s) => s.ms), mode: "markers",
      marker: { color: COLORS.BUY, size: 5, opacity: 0.7 } },
    { name: "tick → table (median of a look)", x: table.map((s) => msTime(s.at)), y: table.map((s) => s.ms),
      mode: "lines", line: { color: COLORS.price, width: 1.5 } },
  ];
  const layout = axisLayout("");
  layout.yaxis.title = { text: "ms", font: { size: 10 } };
  layout.yaxis.rangemode = "tozero";
  const chart = document.getElementById("lag-chart");
  if (!chart.data) resized.observe(chart);
  Plotly.react(chart, traces, layout, { displayModeBar: false, responsive: true });
  const lag = (view.health && view.health.lag) || {};
  const ms = (v) => (v === null || v === undefined ? "–" : `${fmt(v)} ms`);
  document.getElementById("lag-summary").textContent =
    `last 5 min: tick → table p50 ${ms(lag.table_p50_ms)}, p95 ${ms(lag.table_p95_ms)}; ` +
    `tick → alert p50 ${ms(lag.alert_p50_ms)}, p95 ${ms(lag.alert_p95_ms)}` + (lag.source ? ` (from ${lag.source})` : "");
}

function alertItem(alert) {
  const li = document.createElement("li");
  li.className = `alert-${alert.signal}`;
  li.dataset.alertId = alert.id;
  if (alert.recovered) {
    li.classList.add("recovered");
    li.title = `missed by the dashboard's queue, recovered from the ${alert.from}`;
  } else if (alert.from === "ledger") li.title = "published before the dashboard started (found in the alert ledger)";
  const signal = document.createElement("span");
  signal.className = "signal";
  signal.textContent = alert.signal;
  const rest = document.createElement("span");
  rest.textContent = `${alert.timestamp.slice(11, 19)}  ${alert.symbol}  ${alert.price === null ? "" : alert.price.toFixed(2)}  ${alert.message || ""}` +
    (alert.recovered ? "  (recovered)" : "");
  li.append(signal, rest);
  return li;
}

function drawAlerts(added) {
  const list = document.getElementById("alerts");
  if (added === null) {
    list.replaceChildren(...view.alerts.slice(-SHOWN_ALERTS).reverse().map(alertItem));
    return;
  }
  for (const alert of added) list.prepend(alertItem(alert));
  while (list.children.length > SHOWN_ALERTS) list.lastChild.remove();
}

function drawHealth() {
  const health = view.health;
  if (!health) return;
  for (const [key, value] of Object.entries(health.counts)) {
    const el = document.getElementById(`count-${key}`);
    if (el) el.textContent = fmt(value);
  }
  const engine = document.getElementById("engine");
  const state = health.engine.reachable === false ? "down" : health.engine.message === "ok" ? "ok" : "waiting";
  engine.className = `badge ${state}`;
  engine.textContent = state === "ok" ? `engine ok: ${health.engine.target}` : health.engine.message;
  const reasons = document.getElementById("reasons");
  const lines = [];
  for (const [queue, title] of [["dead_letters", "dead letter"], ["on_failure", "on-failure"]]) {
    for (const r of (health.reasons && health.reasons[queue]) || []) {
      lines.push(`${title} ${r.at ? msTime(r.at).slice(11, 19) : ""} ${r.stage}: ${r.reason}`);
    }
  }
  reasons.replaceChildren(...lines.map((text) => {
    const div = document.createElement("div");
    div.className = "reason";
    div.textContent = text;
    return div;
  }));
  const look = health.look || {};
  document.getElementById("look").textContent = look.at
    ? `last look ${msTime(look.at).slice(11, 19)} UTC: ${look.requests} requests, ${look.ms} ms` +
      (health.stream_caught_up === false ? " (still counting the stream from its start)" : "")
    : "";
}

function onSnapshot(data) {
  view.version = data.version;
  view.labels = data.labels;
  view.window = data.window;
  view.points = data.points;
  view.alerts = data.alerts;
  view.lag = data.lag;
  view.health = data.health;
  for (const div of [...document.querySelectorAll("#charts .chart")]) {
    if (!(div.dataset.symbol in view.points)) div.remove();
  }
  document.getElementById("no-symbols").hidden = Object.keys(view.points).length > 0;
  for (const symbol of Object.keys(view.points).sort()) drawSymbol(symbol);
  drawAlerts(null);
  drawLag();
  drawHealth();
}

function onUpdate(data) {
  view.version = data.version;
  view.health = data.health;
  const redraw = new Set();
  for (const [symbol, added] of Object.entries(data.points)) {
    const kept = data.replaced.includes(symbol) ? added : (view.points[symbol] || []).concat(added);
    view.points[symbol] = kept.slice(-view.window);
    redraw.add(symbol);
  }
  if (data.alerts.length) {
    view.alerts = view.alerts.concat(data.alerts).slice(-500);
    for (const alert of data.alerts) if (alert.symbol in view.points) redraw.add(alert.symbol);
    drawAlerts(data.alerts);
  }
  for (const symbol of redraw) drawSymbol(symbol);
  if (data.lag.length) {
    const since = Date.now() - 600000;
    view.lag = view.lag.concat(data.lag).filter((s) => s.at >= since);
  }
  drawLag();
  drawHealth();
}

function connect() {
  const wanted = new URLSearchParams(location.search).get("symbols");
  const source = new EventSource(wanted ? `/events?symbols=${encodeURIComponent(wanted)}` : "/events");
  const link = document.getElementById("link");
  source.addEventListener("snapshot", (event) => onSnapshot(JSON.parse(event.data)));
  source.addEventListener("update", (event) => onUpdate(JSON.parse(event.data)));
  source.onopen = () => { link.className = "badge ok"; link.textContent = "live"; };
  source.onerror = () => {
    link.className = "badge down";
    link.textContent = "dashboard server unreachable: reconnecting…";
  };
}

connect();
