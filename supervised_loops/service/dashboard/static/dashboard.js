// The supervised_loops dashboard: draws the tree from the server's live stream.
// No framework, no CDN: the server ships this file with the package.
"use strict";

const EVENTS_SHOWN = 500;         // the timeline keeps as many as the server
const LOOP_COMMANDS = ["run-now", "pause", "resume", "change-interval", "restart", "stop", "cancel"];
const SUPERVISOR_COMMANDS = ["restart", "stop", "cancel"];
const ICONS = {
  "run-now": "▶", pause: "‖", resume: "▷", "change-interval": "◷", restart: "↻", stop: "■", cancel: "✕",
};

const state = {
  root: null, control: false, rows: new Map(), elements: new Map(),
  opened: new Set(), closed: new Set(), events: [], types: new Set(),
  offset: 0, token: null, structure: "", source: null, fresh: false,
};

function token() {
  const params = new URLSearchParams(location.search);
  const given = params.get("token");
  if (given) {
    sessionStorage.setItem("supervised_loops_token", given);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
  }
  return sessionStorage.getItem("supervised_loops_token");
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function depth(path) { return path.split("/").length - (state.root ? state.root.split("/").length : 1); }

// The server decides what is unfolded (big supervisors start folded) and
// sends a folded supervisor without its children.
function isFolded(path, row) { return row.kind === "supervisor" && !row.children; }

function countdown(next) {
  if (next === null || next === undefined) return "—";
  const left = next - (Date.now() / 1000 + state.offset);
  if (left <= 0) return "due";
  if (left < 60) return left.toFixed(1) + " s";
  if (left < 3600) return Math.floor(left / 60) + " min " + Math.floor(left % 60) + " s";
  return Math.floor(left / 3600) + " h " + Math.floor((left % 3600) / 60) + " min";
}

function makeRow(path) {
  const row = el("div", "row");
  row.dataset.path = path;
  const name = el("span", "c-name");
  const fold = el("button", "fold");
  fold.type = "button";
  fold.addEventListener("click", () => toggle(path));
  name.append(fold, el("span", "label"), el("span", "kind"));
  const stateCell = el("span", "c-state");
  stateCell.append(el("span", "state"));
  const chart = el("span", "c-chart");
  const canvas = el("canvas", "chart");
  canvas.width = 192; canvas.height = 48;
  chart.append(canvas);
  const err = el("span", "c-err");
  const errButton = el("button", "error");
  errButton.type = "button";
  errButton.addEventListener("click", () => showDetails(path));
  err.append(errButton);
  row.append(name, stateCell, el("span", "c-iter"), el("span", "c-next"), el("span", "c-fail"),
    el("span", "c-rest"), chart, el("span", "c-strip"), err, el("span", "c-act"));
  return row;
}

function actions(cell, path, kind) {
  if (!state.control || cell.dataset.ready) return;
  cell.dataset.ready = "1";
  for (const command of kind === "supervisor" ? SUPERVISOR_COMMANDS : LOOP_COMMANDS) {
    const button = el("button", "cmd", ICONS[command]);
    button.type = "button";
    button.title = command;
    button.setAttribute("aria-label", command + " " + path);
    button.dataset.command = command;
    button.addEventListener("click", () => control(command, path));
    cell.append(button);
  }
}

function drawChart(canvas, history) {
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (!history || history.durations.length === 0) return;
  const series = [[history.durations, "#2563eb"], [history.lateness, "#d97706"]];
  const top = Math.max(0.001, ...history.durations, ...history.lateness);
  const step = canvas.width / Math.max(1, history.durations.length - 1);
  for (const [values, colour] of series) {
    g.strokeStyle = colour; g.lineWidth = 2; g.beginPath();
    values.forEach((v, i) => {
      const y = canvas.height - 2 - (Math.max(0, v) / top) * (canvas.height - 4);
      if (i === 0) g.moveTo(0, y); else g.lineTo(i * step, y);
    });
    g.stroke();
  }
  canvas.title = "last " + history.durations.length + " iterations; max " + top.toFixed(2) +
    " ms (blue: duration, orange: lateness)";
}

function drawStrip(cell, history) {
  const outcomes = history ? history.outcomes : "";
  const count = history ? String(history.count) : "";
  if (cell.dataset.outcomes === outcomes && cell.dataset.count === count) return;
  cell.dataset.outcomes = outcomes;
  cell.dataset.count = count;  // the same outcomes may slide by: the count still moves
  const strip = el("span", "strip");
  for (const code of outcomes.slice(-30)) strip.append(el("i", code === "o" ? "" : code));
  strip.title = history ? history.count + " iterations, " + history.skipped + " skipped" : "";
  cell.replaceChildren(strip);
}

function drawGauge(cell, intensity) {
  const [count, max, seconds] = intensity;
  const gauge = el("span", "gauge");
  const meter = el("meter");
  meter.min = 0; meter.max = Math.max(1, max + 1); meter.value = count;
  meter.low = max * 0.5; meter.high = max; meter.optimum = 0;
  gauge.title = count + " of " + max + " restarts allowed within " + seconds + " s";
  gauge.append(meter, el("span", "", count + "/" + max + " in " + seconds + " s"));
  cell.replaceChildren(gauge);
}

function update(path) {
  const row = state.rows.get(path);
  let node = state.elements.get(path);
  if (!row) return;
  if (!node) { node = makeRow(path); state.elements.set(path, node); }
  const cells = node.children;
  node.style.setProperty("--depth", depth(path));
  cells[0].style.paddingLeft = (depth(path) * 1.1) + "rem";
  const fold = cells[0].querySelector(".fold");
  fold.textContent = row.kind === "supervisor" && row.count ? (isFolded(path, row) ? "▸" : "▾") : "";
  fold.setAttribute("aria-label", (isFolded(path, row) ? "unfold " : "fold ") + path);
  cells[0].querySelector(".label").textContent = row.name;
  cells[0].title = path + (row.schedule ? " · " + row.schedule : "");
  cells[0].querySelector(".kind").textContent = row.kind === "loop" ? (row.schedule || "")
    : row.kind === "supervisor" ? "supervisor · " + row.count + (row.count === 1 ? " child" : " children")
    : row.kind;
  const badge = cells[1].firstChild;
  badge.textContent = row.state; badge.className = "state " + row.state;
  cells[2].textContent = row.kind === "loop" ? row.iteration : "";
  cells[3].dataset.next = row.next === null ? "" : row.next;
  cells[3].textContent = row.kind === "supervisor" ? "" : countdown(row.next);
  cells[4].textContent = row.failures;
  cells[5].textContent = row.restarts;
  if (row.kind === "supervisor" && row.intensity) drawGauge(cells[6], row.intensity);
  else drawChart(cells[6].querySelector("canvas") || cells[6].appendChild(el("canvas", "chart")), row.history);
  drawStrip(cells[7], row.history);
  const errButton = cells[8].firstChild;
  errButton.textContent = row.error || "";
  errButton.title = row.error ? "show the traceback" : "";
  actions(cells[9], path, row.kind);
}

function visible() {
  const order = [];
  const walk = (path) => {
    const row = state.rows.get(path);
    if (!row) return;
    order.push(path);
    if (row.kind === "supervisor" && !isFolded(path, row)) (row.children || []).forEach(walk);
  };
  if (state.root) walk(state.root);
  return order;
}

function render(changed) {
  const order = visible();
  const key = order.join("\n");
  for (const path of changed) if (state.elements.has(path) || order.includes(path)) update(path);
  if (key !== state.structure) {
    state.structure = key;
    for (const path of order) if (!state.elements.has(path)) update(path);
    document.getElementById("tree").replaceChildren(...order.map((p) => state.elements.get(p)));
  }
  summary();
}

function summary() {
  let shown = 0, failed = 0, active = 0;
  for (const row of state.rows.values()) {
    shown++;
    if (row.state === "failed" || row.state === "quarantined") failed++;
    if (["running", "sleeping", "retrying"].includes(row.state) && row.kind !== "supervisor") active++;
  }
  document.getElementById("summary").textContent =
    shown + " shown · " + active + " active · " + failed + " failed or quarantined";
}

function toggle(path) {
  const row = state.rows.get(path);
  if (isFolded(path, row)) { state.closed.delete(path); state.opened.add(path); }
  else { state.opened.delete(path); state.closed.add(path); }
  connect();  // the server sends what the new view shows
}

function merge(rows, removed) {
  if (state.fresh) {  // the first rows of a connection: all there is to see
    state.fresh = false;
    for (const path of [...state.rows.keys()]) if (!(path in rows)) state.rows.delete(path);
  }
  for (const path of removed || []) {
    state.rows.delete(path);
    state.elements.delete(path);
  }
  for (const [path, row] of Object.entries(rows)) {
    const known = state.rows.get(path);
    if (known && known.history && !row.history && known.hv === row.hv) row.history = known.history;
    if (known && known.history && row.history) row.history = joined(known.history, row.history);
    state.rows.set(path, row);
  }
  render(Object.keys(rows));
}

// A chart's new iterations after those held (the server sends the tail it
// has not sent yet: `first` counts the iterations before it); the last 60 kept.
function joined(held, update) {
  if (update.first === 0 || update.first !== held.count) return update;  // whole, or a new ring
  const keep = (list) => list.slice(-60);
  return {
    ...update,
    durations: keep(held.durations.concat(update.durations)),
    lateness: keep(held.lateness.concat(update.lateness)),
    outcomes: held.outcomes.concat(update.outcomes).slice(-60),
  };
}

function describe(event) {
  return Object.entries(event).filter(([k]) => !["type", "path", "at"].includes(k))
    .map(([k, v]) => k + "=" + JSON.stringify(v)).join(", ");
}

function addEvents(events) {
  for (const event of events) {
    state.events.push(event);
    if (!state.types.has(event.type)) {
      state.types.add(event.type);
      const option = el("option", "", event.type);
      option.value = event.type;
      document.getElementById("filter-type").append(option);
    }
  }
  if (state.events.length > EVENTS_SHOWN) state.events.splice(0, state.events.length - EVENTS_SHOWN);
  drawTimeline();
}

function drawTimeline() {
  const path = document.getElementById("filter-path").value.trim();
  const type = document.getElementById("filter-type").value;
  const items = [];
  for (let i = state.events.length - 1; i >= 0 && items.length < 200; i--) {
    const event = state.events[i];
    if (type && event.type !== type) continue;
    if (path && !event.path.includes(path)) continue;
    const item = el("li");
    item.dataset.type = event.type; item.dataset.path = event.path;
    const bad = /Failed|Escalated|Exceeded|Quarantined|Unkillable|CutShort|DeadLetter/.test(event.type);
    item.append(el("time", "", new Date(event.at).toLocaleTimeString([], { hour12: false })),
      el("span", "type" + (bad ? " bad" : ""), event.type), el("span", "path", event.path + " "),
      el("span", "detail", describe(event)));
    items.push(item);
  }
  document.getElementById("timeline").replaceChildren(...items);
}

async function showDetails(path) {
  const row = state.rows.get(path) || {};
  document.getElementById("details-title").textContent = path;
  document.getElementById("details-error").textContent = row.error || "no error";
  const pre = document.getElementById("details-traceback");
  pre.textContent = "loading…";
  document.getElementById("details").showModal();
  try {
    const reply = await fetch("/api/traceback?path=" + encodeURIComponent(path), { headers: auth() });
    const data = await reply.json();
    pre.textContent = data.traceback ? data.traceback + "\n(iteration " + data.iteration + ")"
      : "no traceback recorded for this actor (only a loop's failed iterations have one)";
  } catch (error) {
    pre.textContent = "could not load the traceback: " + error;
  }
}

function auth() { return state.token ? { Authorization: "Bearer " + state.token } : {}; }

// change-interval asks for the new interval: seconds ("30", "0.5") or times
// of day in UTC ("09:30" or "09:30, 18:00"), as ctl's --seconds and --time.
function interval(path) {
  const text = window.prompt("New interval for " + path + ": seconds (30) or times of day, UTC (09:30, 18:00)");
  if (text === null || !text.trim()) return null;
  const parts = text.split(",").map((part) => part.trim()).filter(Boolean);
  if (parts.every((part) => part.includes(":"))) return { time: parts };
  return { seconds: Number(text) };
}

async function control(command, path) {
  let extra = {};
  if (command === "change-interval") {
    extra = interval(path);
    if (extra === null) return;
  }
  const box = document.getElementById("ack");
  box.hidden = false; box.className = ""; box.textContent = path + ": " + command + "…";
  try {
    const reply = await fetch("/api/control", {
      method: "POST", headers: { "Content-Type": "application/json", ...auth() },
      body: JSON.stringify({ command, path, ...extra }),
    });
    const data = await reply.json();
    if (data.ok) {
      const ack = data.result;
      box.textContent = path + ": " + ack.message + " done at iteration " + ack.iteration +
        (ack.next_iteration ? ", next run " + ack.next_iteration : ", not scheduled");
    } else {
      box.className = "error";
      box.textContent = "error: " + data.error.type + ": " + data.error.message;
    }
  } catch (error) {
    box.className = "error"; box.textContent = "error: " + error;
  }
}

function connect() {
  const link = document.getElementById("link");
  const params = new URLSearchParams();
  if (state.token) params.set("token", state.token);
  if (state.opened.size) params.set("open", [...state.opened].join(","));
  if (state.closed.size) params.set("closed", [...state.closed].join(","));
  if (state.source) state.source.close();
  const query = params.toString();
  const source = new EventSource("/api/events" + (query ? "?" + query : ""));
  state.source = source;
  source.addEventListener("hello", (e) => {
    const data = JSON.parse(e.data);
    state.root = data.root;
    state.control = data.control && Boolean(state.token);  // control needs the token
    document.getElementById("title").textContent = data.root;
    document.title = data.root + " · supervised_loops";
    state.fresh = true;
    state.events = []; addEvents(data.events);
    link.textContent = "live"; link.className = "link";
  });
  source.addEventListener("rows", (e) => {
    const data = JSON.parse(e.data);
    state.offset = data.now - Date.now() / 1000;
    merge(data.rows, data.removed);
  });
  source.addEventListener("event", (e) => {
    const data = JSON.parse(e.data);
    merge(data.rows, []);
    addEvents([data.event]);
  });
  source.onerror = () => { link.textContent = "reconnecting…"; link.className = "link down"; };
}

function tick() {
  for (const cell of document.querySelectorAll(".c-next")) {
    if (!cell.dataset.next) continue;
    cell.textContent = countdown(cell.dataset.next === "" ? null : Number(cell.dataset.next));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  state.token = token();
  document.getElementById("filter-path").addEventListener("input", drawTimeline);
  document.getElementById("filter-type").addEventListener("change", drawTimeline);
  connect();
  setInterval(tick, 200);
});
