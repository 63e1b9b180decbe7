// stockpipe dashboard: one EventSource (/events), a snapshot then updates; charts drawn with the
// plotly.js that the installed plotly package ships (/vendor/plotly.min.js). No other script.
// The Backtest tab (#backtest) asks /api/backtest, which replays the archive as `stockpipe backtest` does.
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

// -- the Backtest view -------------------------------------------------------------------------------

const LISTED_TRADES = 500;  // rows of a symbol's trade table (the JSON has them all)
const pct = (v) => (v === null || v === undefined ? "n/a" : `${v > 0 ? "+" : ""}${(v * 100).toFixed(2)}%`);
const ratio = (v) => (v === null || v === undefined ? "n/a" : v.toFixed(2));
let backtestRan = false;

function element(tag, text, className) {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className) el.className = className;
  return el;
}

function table(className, head, rows) {
  const t = element("table", undefined, className);
  if (head) {
    const tr = element("tr");
    for (const h of head) tr.append(element("th", h));
    t.append(tr);
  }
  for (const row of rows) {
    const tr = element("tr");
    for (const [i, cell] of row.entries()) {
      const [text, cls] = Array.isArray(cell) ? cell : [cell, ""];
      tr.append(element(!head && i === 0 ? "th" : "td", text, cls));
    }
    t.append(tr);
  }
  return t;
}

const sign = (v) => (v > 0 ? "gain" : v < 0 ? "loss" : "");

function figures(r, trades, closed) {
  const dd = r.max_drawdown_period;
  const lasted = r.max_drawdown ? `${dd.ticks === null ? "" : `${fmt(dd.ticks)} ticks, `}${dd.from} to ${dd.to}` +
    (dd.recovered ? "" : " (not recovered)") : "";
  return table("figures", null, [
    ["total return", [pct(r.total_return), sign(r.total_return)]],
    ["buy and hold", [pct(r.buy_and_hold_return), sign(r.buy_and_hold_return)]],
    ["max drawdown", `${(r.max_drawdown * 100).toFixed(2)}%`], ["drawdown lasted", lasted],
    ["trades", `${fmt(trades)} (${fmt(closed)} closed)`], ["win rate", pct(r.win_rate).replace("+", "")],
    ["profit factor", ratio(r.profit_factor)], ["exposure", `${(r.exposure * 100).toFixed(1)}%`],
  ]);
}

function drawBacktestChart(div, symbol, c) {
  const exitColors = c.exits.open.map((open) => (open ? "rgba(0,0,0,0)" : COLORS.SELL));
  const traces = [
    { name: "buy and hold", x: c.t, y: c.hold, mode: "lines", line: { color: "#8a96a3", width: 1.2, dash: "dash" } },
    { name: "strategy equity", x: c.t, y: c.equity, mode: "lines", line: { color: COLORS.price, width: 1.8 } },
    { name: "buy", x: c.entries.t, y: c.entries.equity, mode: "markers", customdata: c.entries.t,
      text: c.entries.price.map((p) => `buy at ${p}`), hoverinfo: "x+text",
      marker: { color: COLORS.BUY, size: 11, symbol: "triangle-up", line: { color: "#0f1419", width: 1 } } },
    { name: "sell", x: c.exits.t, y: c.exits.equity, mode: "markers", customdata: c.exits.t,
      text: c.exits.price.map((p, i) => `${c.exits.open[i] ? "open, valued" : "sell"} at ${p}: ${pct(c.exits.return[i])}`),
      hoverinfo: "x+text",
      marker: { color: exitColors, size: 11, symbol: "triangle-down", line: { color: COLORS.SELL, width: 1.5 } } },
  ];
  const layout = axisLayout(`${symbol}: equity against buy and hold (both from 1)`);
  layout.yaxis.title = { text: "× start", font: { size: 10 } };
  Plotly.react(div, traces, layout, { displayModeBar: false, responsive: true });
  div.dataset.points = String(c.t.length);
  div.dataset.trades = String(c.marked);
}

function symbolSection(symbol, r, c) {
  const section = element("section", undefined, "bt-symbol");
  section.id = `bt-${symbol}`;
  section.append(element("h2", symbol));
  section.append(element("p", `${fmt(r.ticks)} ticks from ${r.first_time} to ${r.last_time}, ${fmt(r.signals)} ` +
    `crossover(s)` + (r.untraded_last_signal ? `; a ${r.untraded_last_signal} signal on the last tick is not traded` : "") +
    (c.sampled ? `; the chart shows ${fmt(c.t.length)} of the ticks` : "") +
    (c.marked < r.trades.length ? `, the first ${fmt(c.marked)} trades marked` : ""), "dim"));
  const div = element("div", undefined, "chart");
  div.id = `bt-chart-${symbol}`;
  section.append(div);
  const tables = element("div", undefined, "bt-tables");
  const closed = r.trades.filter((t) => !t.open).length;
  const box = element("div", undefined, "trades-box");
  if (r.trades.length) {
    const rows = r.trades.slice(0, LISTED_TRADES).map((t) => [t.entry_time, String(t.entry_price), t.exit_time,
      String(t.exit_price), [pct(t.return), sign(t.return)], t.open ? "open" : ""]);
    const trades = table("trades", ["entry time", "entry price", "exit time", "exit price", "return", ""], rows);
    trades.id = `bt-trades-${symbol}`;
    box.append(trades);
    if (r.trades.length > LISTED_TRADES) {
      box.append(element("p", `${fmt(r.trades.length - LISTED_TRADES)} more trade(s): /api/backtest or ` +
        "stockpipe backtest --json lists them all", "dim"));
    }
  } else {
    box.append(element("p", "No trades.", "dim"));
  }
  tables.append(figures(r, r.trades.length, closed), box);
  section.append(tables);
  return [section, div];
}

function drawBacktest(report) {
  const rule = report.rule;
  document.getElementById("bt-title").textContent =
    `SMA-${rule.short}/SMA-${rule.long} crossovers, costs ${rule.cost_bps} bps per side`;
  document.getElementById("bt-warnings").replaceChildren(...report.warnings.map((w) => element("li", `warning: ${w}`)));
  const statements = Object.entries(rule).filter(([key]) => !["short", "long", "cost_bps"].includes(key));
  document.querySelector("#bt-rule ul").replaceChildren(...statements.map(([key, text]) => {
    const li = element("li");
    li.append(element("b", key.replace(/_/g, " ")), `: ${text}`);
    return li;
  }));
  const total = report.total;
  const totalBox = document.getElementById("bt-total");
  totalBox.replaceChildren(
    element("h2", `Total: ${total.symbols} symbol(s) equally weighted, ${fmt(total.ticks)} ticks from ` +
      `${total.first_time} to ${total.last_time}`),
    figures(total, total.trades, total.closed_trades));
  totalBox.hidden = total.symbols < 2;  // one symbol: its own figures are the total (as the CLI prints it)
  const sections = [];
  const charts = [];
  for (const [symbol, r] of Object.entries(report.symbols)) {
    const [section, div] = symbolSection(symbol, r, report.charts[symbol]);
    sections.push(section);
    charts.push([div, symbol]);
  }
  document.getElementById("bt-symbols").replaceChildren(...sections);
  document.getElementById("bt-report").hidden = false;
  for (const [div, symbol] of charts) {
    drawBacktestChart(div, symbol, report.charts[symbol]);
    resized.observe(div);
  }
  const form = document.getElementById("bt-form");
  form.elements.short.placeholder = String(rule.short);
  form.elements.long.placeholder = String(rule.long);
}

async function runBacktest() {
  backtestRan = true;
  const form = document.getElementById("bt-form");
  const params = new URLSearchParams();
  for (const name of ["symbols", "from", "to", "short", "long", "cost_bps"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  const status = document.getElementById("bt-status");
  status.className = "dim";
  status.textContent = "reading the archive…";
  form.querySelector("button").disabled = true;
  const started = performance.now();
  try {
    const answer = await fetch(`/api/backtest?${params}`);
    const body = await answer.json();
    if (!answer.ok) {
      status.className = "error";
      status.textContent = body.error;
      return;
    }
    drawBacktest(body);
    const symbols = Object.keys(body.symbols).length;
    status.textContent = `${fmt(body.total.ticks)} archived ticks of ${symbols} symbol(s) replayed in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s; the same report as stockpipe backtest --json` +
      (params.toString() ? ` ${[...params].map(([k, v]) => `--${k.replace("_", "-")} ${v}`).join(" ")}` : "");
  } catch (error) {
    status.className = "error";
    status.textContent = `the dashboard did not answer: ${error}`;
  } finally {
    form.querySelector("button").disabled = false;
  }
}

function showView() {
  const backtest = location.hash === "#backtest";
  document.getElementById("live-view").hidden = backtest;
  document.getElementById("backtest-view").hidden = !backtest;
  for (const [id, on] of [["tab-live", !backtest], ["tab-backtest", backtest]]) {
    const tab = document.getElementById(id);
    if (on) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (backtest && !backtestRan) runBacktest();  // the first look runs the defaults
}

document.getElementById("bt-form").addEventListener("submit", (event) => {
  event.preventDefault();
  runBacktest();
});
window.addEventListener("hashchange", showView);
showView();
connect();
