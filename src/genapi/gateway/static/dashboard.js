// genapi dashboard: polls the gateway's /admin endpoints with the admin token.
// No data is in the page; every text is set with textContent (names come from configs
// that service nodes push, so they are never parsed as HTML).
"use strict";

const TOKEN_KEY = "genapi.adminToken";
const CALLS_EVERY_MS = 1000;
const STATUS_EVERY_MS = 2000;
const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let timers = [];
let selected = null; // {service, request_type, version} of the function shown in #flow

class Unauthorized extends Error {}

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: "Bearer " + token },
    cache: "no-store",
    credentials: "omit",
  });
  if (response.status === 401) throw new Unauthorized("the gateway refused the token");
  if (response.status === 403) throw new Error("the gateway's admin gate denies view_diagnostics");
  if (!response.ok && response.status !== 404) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

// -- tables ---------------------------------------------------------------------------

function cell(row, value, tag = "td") {
  const el = document.createElement(tag);
  el.textContent = value === null || value === undefined || value === "" ? "–" : String(value);
  row.appendChild(el);
  return el;
}

// rows: [{cells: [...], data: {key: value}}]
function fill(table, columns, rows, empty) {
  table.replaceChildren();
  if (!rows.length) {
    if (empty) cell(table.insertRow(), empty).colSpan = columns.length;
    return [];
  }
  const head = table.createTHead().insertRow();
  columns.forEach((c) => cell(head, c, "th"));
  const body = table.createTBody();
  return rows.map((r) => {
    const row = body.insertRow();
    r.cells.forEach((v) => cell(row, v));
    for (const [k, v] of Object.entries(r.data || {})) row.dataset[k] = v;
    return row;
  });
}

function fixed(value, digits = 2) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

// -- status (every STATUS_EVERY_MS) -----------------------------------------------------

function renderFunctions(cache, calls) {
  const counts = {};
  for (const f of (calls && calls.functions) || []) counts[f.service + "." + f.request_type] = f;
  const rows = cache.functions.map((f) => {
    const name = f.service + "." + f.request_type;
    // Calls are counted per function, whatever the version: shown on the default row.
    const c = counts[name] || {};
    return {
      cells: [f.service, f.request_type, f.version || "(unversioned)", f.response_type,
              f.local ? "local" : "remote", f.default ? "yes" : "",
              f.disabled ? "disabled" : "enabled", f.default ? c.calls || 0 : "",
              f.default ? fixed(c.mean_ms) : ""],
      data: { service: f.service, requestType: f.request_type, version: f.version || "" },
    };
  });
  const made = fill($("functions"), ["Service", "Function", "Version", "Type", "Runs",
                                     "Default", "Status", "Calls", "Mean ms", ""],
                    rows, "No functions registered.");
  made.forEach((row, i) => {
    const { service, requestType, version } = row.dataset;
    if (selected && selected.service === service && selected.request_type === requestType &&
        selected.version === version) row.classList.add("selected");
    row.addEventListener("click", () => showFlow(service, requestType, version));
    const disabled = cache.functions[i].disabled;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = disabled ? "Enable" : "Disable";
    button.className = disabled ? "enable" : "disable";
    button.addEventListener("click", (event) => {
      event.stopPropagation();  // not a row selection
      switchFunction(service, requestType, version, disabled ? "enable" : "disable");
    });
    row.insertCell().appendChild(button);
  });
  $("function-count").textContent =
    "(" + cache.count + " in " + cache.services.length + " services)";
}

async function showFlow(service, requestType, version) {
  selected = { service, request_type: requestType, version };
  const query = new URLSearchParams({ service, request_type: requestType });
  if (version) query.set("version", version);
  try {
    const flow = await api("admin/call-flow?" + query);
    $("flow-title").textContent = service + "." + requestType + " " +
      (flow.found ? "(" + (flow.version || "unversioned") + ", " + flow.response_type + ")"
                  : ": " + flow.error);
    const list = $("flow-steps");
    list.replaceChildren();
    for (const step of flow.steps) {
      const item = document.createElement("li");
      if (!step.active) item.className = "inactive";
      const name = document.createElement("b");
      name.textContent = step.phase;
      item.append(name, " " + step.description);
      list.appendChild(item);
    }
    $("flow").hidden = false;
    for (const row of $("functions").querySelectorAll("tbody tr")) {
      row.classList.toggle("selected", row.dataset.service === service &&
        row.dataset.requestType === requestType && row.dataset.version === version);
    }
  } catch (err) {
    failed(err);
  }
}

function renderCluster(c) {
  $("cluster-text").textContent = c.enabled
    ? c.name + (c.connected ? " — connected to NATS" : " — NOT connected") + ", " +
      c.health.alive + "/" + c.health.nodes + " nodes alive"
    : "No cluster: every function runs in this gateway.";
  fill($("nodes"), ["Node", "Alive", "Services", "Seen (s ago)"],
       Object.entries(c.nodes).map(([n, v]) => ({
         cells: [n, v.alive ? "yes" : "NO", v.services.join(", "), v.seen_ago],
         data: { node: n } })));
  fill($("pushed"), ["Pushed service", "Version", "Auto pull"],
       c.services.map((p) => ({ cells: [p.service, p.version, p.auto_pull ? "yes" : "no"] })));
  fill($("failed"), ["When", "Service", "Function", "Source", "Node", "Reasons"],
       c.failed_configs.entries.map((e) => ({
         cells: [e.inserted_at_ms ? new Date(e.inserted_at_ms).toLocaleTimeString() : "", e.service,
                 e.request_type, e.source, e.node, (e.reasons || []).join("; ")] })),
       "None.");
}

function renderPools(p) {
  fill($("pools"), ["Pool", "State", "Size", "Busy", "Queued", "Executed", "Failed",
                    "Rejected", "Breaker"],
       Object.values(p.pools).map((x) => ({
         cells: [x.name, x.state, x.size, x.busy, x.queued, x.total_executed, x.total_failed,
                 x.total_rejected, x.breaker] })));
  fill($("breakers"), ["Node breaker", "State", "Failures", "Retry in (s)"],
       Object.values(p.nodes).map((b) => ({
         cells: [b.name, b.state, b.consecutive_failures + "/" + b.failure_threshold,
                 fixed(b.retry_in, 1)] })),
       "No node breakers yet.");
}

function renderLimits(r) {
  $("rate-text").textContent = !r.configured ? "No rate limiter."
    : (r.enabled ? "Enabled" : "Disabled") +
      (r.config ? (r.config.fail_open ? " (fails open)" : " (fails closed)") : " (custom)");
  const limits = r.config ? [...r.config.global_limits, ...r.config.api_limits] : [];
  const rows = fill($("limits"), ["Scope", "Key", "Max", "Window (ms)", ""],
                    limits.map((l) => ({
    cells: [l.service ? l.service + "." + l.request_type : "global", l.key, l.max_requests,
            l.window_ms] })));
  rows.forEach((row, i) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Clear";
    button.className = "clear-limit";
    button.addEventListener("click", () => clearLimit(limits[i]));
    row.insertCell().appendChild(button);
  });
}

// -- admin writes: each confirmed first; the gateway's admin gate decides -------------
// They run on every gateway of the cluster; the answer says what changed.

async function write(method, path, body) {
  const response = await fetch(path, {
    method, headers: { Authorization: "Bearer " + token,
                       ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined, cache: "no-store", credentials: "omit",
  });
  if (response.status === 401) throw new Unauthorized("the gateway refused the token");
  const answer = await response.json().catch(() => ({}));
  return { ok: response.ok, error: answer.error || "HTTP " + response.status, answer };
}

async function refreshStatus() {
  renderStatus(await api("admin/status"));
}

async function switchFunction(service, requestType, version, action) {
  const name = service + "." + requestType + " " + (version || "(unversioned)");
  if (!window.confirm(action[0].toUpperCase() + action.slice(1) + " " + name +
                      " on every gateway?")) return;
  try {
    const query = version ? "?" + new URLSearchParams({ version }) : "";
    const done = await write("POST", "admin/functions/" + encodeURIComponent(service) + "/" +
                             encodeURIComponent(requestType) + "/" + action + query);
    $("functions-action").textContent = done.ok
      ? name + " " + action + "d (by " + done.answer.who + ")"
      : action + " refused: " + done.error;
    if (done.ok) await refreshStatus();
  } catch (err) {
    failed(err);
  }
}

async function setLimit(event) {
  event.preventDefault();
  const limit = { key: $("limit-key").value, max_requests: Number($("limit-max").value),
                  window_ms: Number($("limit-window").value) };
  const service = $("limit-service").value.trim();
  const requestType = $("limit-request-type").value.trim();
  if (service || requestType) Object.assign(limit, { service, request_type: requestType });
  const scope = service || requestType ? service + "." + requestType : "global";
  const text = limit.key + " " + limit.max_requests + " per " + limit.window_ms + " ms (" +
               scope + ")";
  if (!window.confirm("Set the rate limit " + text + " on every gateway?")) return;
  try {
    const done = await write("PUT", "admin/rate-limits", limit);
    $("limits-action").textContent = done.ok ? "limit set: " + text
                                             : "set limit refused: " + done.error;
    if (done.ok) await refreshStatus();
  } catch (err) {
    failed(err);
  }
}

async function clearLimit(limit) {
  const scope = limit.service ? limit.service + "." + limit.request_type : "global";
  const text = limit.key + " per " + limit.window_ms + " ms (" + scope + ")";
  if (!window.confirm("Clear the rate limit " + text + " on every gateway?")) return;
  const query = { key: limit.key, window_ms: limit.window_ms };
  if (limit.service) Object.assign(query, { service: limit.service,
                                           request_type: limit.request_type });
  try {
    const done = await write("DELETE", "admin/rate-limits?" + new URLSearchParams(query));
    $("limits-action").textContent = done.ok ? "limit cleared: " + text
                                             : "clear limit refused: " + done.error;
    if (done.ok) await refreshStatus();
  } catch (err) {
    failed(err);
  }
}

async function showUsage(event) {
  event.preventDefault();
  const user = $("rl-user").value.trim();
  if (!user) return;
  try {
    const data = await api("admin/rate-limits?" + new URLSearchParams({ user_id: user }));
    const usage = data.user ? [...data.user.global, ...data.user.api] : [];
    fill($("rl-usage"), ["Scope", "Key", "Used", "Max", "Remaining", "Window (ms)"],
         usage.map((u) => ({
           cells: [Array.isArray(u.scope) ? u.scope.join(".") : u.scope, u.key,
                   u.current_requests, u.max_requests, u.remaining, u.window_ms] })),
         "No user_id limits.");
  } catch (err) {
    failed(err);
  }
}

function renderConnections(c) {
  const counters = Object.entries(c).filter(([, v]) => typeof v !== "object");
  fill($("counters"), ["Counter", "Value"], counters.map(([k, v]) => ({ cells: [k, v] })));
  fill($("connections"), ["User", "Address", "Topics", "In flight", "Queued", "Idle (s)"],
       c.open.map((x) => ({
         cells: [x.user_id || "(anonymous)", x.ip_address, x.topics.join(", "), x.inflight,
                 x.queued, x.idle_s] })),
       "No open sockets.");
}

function renderProcess(p) {
  const el = $("process");
  if (!p) { el.textContent = ""; return; }
  const mb = (b) => (b == null ? "–" : (b / 1e6).toFixed(1) + " MB");
  const ms = (v) => (v == null ? "–" : Number(v).toFixed(1));
  el.textContent = "RSS " + mb(p.rss_bytes) + " · loop lag " + ms(p.loop_lag_ms) +
    " ms (max " + ms(p.loop_lag_max_ms) + ") · " + (p.open_fds ?? "–") + " fds · " +
    (p.asyncio_tasks ?? "–") + " tasks";
}

function renderStatus(s) {
  const health = $("health");
  health.textContent = s.health.status;
  health.className = "badge " + s.health.status;
  health.title = s.health.problems.join("\n");
  renderProcess(s.health.process);
  $("version").textContent = "genapi " + s.genapi_version;
  renderFunctions(s.config_cache, s.calls);
  renderCluster(s.cluster);
  renderPools(s.pools);
  renderLimits(s.rate_limits);
  renderConnections(s.connections);
}

// -- durable calls (every STATUS_EVERY_MS, when the gateway has them) -------------------

async function pollDurable() {
  const response = await fetch("admin/jobs/counts", {
    headers: { Authorization: "Bearer " + token }, cache: "no-store", credentials: "omit",
  });
  if (response.status === 404) return false;  // no durable calls here: no panel
  if (response.status === 401) throw new Unauthorized("the gateway refused the token");
  if (!response.ok) throw new Error("admin/jobs/counts: HTTP " + response.status);
  const counts = await response.json();
  const dead = await api("admin/jobs?state=dead&limit=10");
  renderDurable(counts, dead.calls || []);
  return true;
}

function renderDurable(counts, dead) {
  $("durable").hidden = false;
  const states = Object.entries(counts.by_state);
  states.push(["retrying", counts.retrying], ["running here", counts.running_here]);
  fill($("durable-states"), ["State", "Calls"],
       states.map(([state, n]) => ({ cells: [state, n], data: { state, count: n } })));
  const wait = counts.oldest_due_age_s;
  $("durable-text").textContent = "worker " + counts.worker_id +
    (wait ? ", oldest due call waiting " + fixed(wait, 1) + " s" : "");
  const rows = fill($("durable-dead"), ["Id", "Function", "User", "Attempts", "Error",
                                        "Finished", ""],
       dead.map((c) => ({
         cells: [c.id, c.service + "." + c.request_type, c.user_id || "(anonymous)",
                 c.attempts + "/" + c.max_attempts, c.last_error,
                 c.finished_at ? new Date(c.finished_at * 1000).toLocaleString() : ""],
         data: { callId: c.id } })),
       "No dead calls.");
  for (const row of rows) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Retry";
    button.className = "retry";
    button.addEventListener("click", () => retryCall(row.dataset.callId));
    row.insertCell().appendChild(button);
  }
}

// A write: confirmed first; the gateway's admin gate must allow manage_durable.
async function retryCall(callId) {
  if (!window.confirm("Run durable call " + callId + " again?")) return;
  const response = await fetch("admin/jobs/" + encodeURIComponent(callId) + "/retry", {
    method: "POST", headers: { Authorization: "Bearer " + token }, cache: "no-store",
    credentials: "omit",
  });
  const answer = await response.json().catch(() => ({}));
  $("durable-action").textContent = response.ok
    ? "call " + callId + " is " + answer.state + " again"
    : "retry refused: " + (answer.error || "HTTP " + response.status);
  if (response.ok) await pollDurable();
}

// -- live calls (every CALLS_EVERY_MS) -----------------------------------------------

function renderCalls(c) {
  const set = (id, text, value) => {
    $(id).textContent = text;
    if (value !== undefined) $(id).dataset.value = String(value);
  };
  set("call-rate", fixed(c.rate.calls_per_s, 1), c.rate.calls_per_s);
  set("error-rate", fixed(c.rate.errors_per_s, 1), c.rate.errors_per_s);
  set("p50", fixed(c.latency_ms.p50));
  set("p95", fixed(c.latency_ms.p95));
  set("p99", fixed(c.latency_ms.p99));
  set("calls-total", String(c.total.calls), c.total.calls);
  set("calls-errors", String(c.total.errors), c.total.errors);
  drawChart(c.series);
  $("status-text").textContent = "live, " + new Date(c.now_ms).toLocaleTimeString();
}

function drawChart(series) {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 900;
  const height = canvas.clientHeight || 200;
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const left = 40, right = 48, top = 12, bottom = 22;
  const plotW = width - left - right, plotH = height - top - bottom;
  const maxCalls = Math.max(1, ...series.map((p) => p.calls));
  const latencies = series.map((p) => p.mean_ms).filter((v) => v !== null);
  const maxLatency = Math.max(0.001, ...latencies);
  const step = plotW / Math.max(1, series.length);

  g.strokeStyle = color("--line");
  g.fillStyle = color("--muted");
  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {  // grid and both axes' labels
    const y = top + plotH - (plotH * i) / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(left + plotW, y); g.stroke();
    g.textAlign = "right";
    g.fillText(((maxCalls * i) / 4).toFixed(maxCalls < 8 ? 1 : 0), left - 4, y + 4);
    g.textAlign = "left";
    g.fillText(((maxLatency * i) / 4).toFixed(maxLatency < 10 ? 2 : 0), left + plotW + 4, y + 4);
  }
  g.textAlign = "center";
  g.fillText("-" + series.length + " s", left + 12, height - 6);
  g.fillText("now", left + plotW - 12, height - 6);

  series.forEach((p, i) => {  // bars: calls, the error share on top in red
    const x = left + i * step + 1;
    const h = (p.calls / maxCalls) * plotH;
    const e = (p.errors / maxCalls) * plotH;
    const base = top + plotH;
    g.fillStyle = color("--rate");
    g.fillRect(x, base - h + e, Math.max(1, step - 2), h - e);
    g.fillStyle = color("--bad");
    g.fillRect(x, base - h, Math.max(1, step - 2), e);
  });

  g.strokeStyle = color("--latency");  // line: mean latency per second
  g.lineWidth = 2;
  g.beginPath();
  let drawing = false;
  series.forEach((p, i) => {
    if (p.mean_ms === null) { drawing = false; return; }
    const x = left + i * step + step / 2;
    const y = top + plotH - (p.mean_ms / maxLatency) * plotH;
    if (drawing) g.lineTo(x, y); else g.moveTo(x, y);
    drawing = true;
  });
  g.stroke();

  canvas.dataset.points = String(series.length);
  canvas.dataset.maxCalls = String(Math.max(0, ...series.map((p) => p.calls)));
  canvas.dataset.lastT = series.length ? String(series[series.length - 1].t) : "";
}

// -- lifecycle ------------------------------------------------------------------------

function failed(err) {
  if (err instanceof Unauthorized) {
    logout(err.message);
    return;
  }
  document.body.dataset.state = "error";
  $("status-text").textContent = String(err && err.message ? err.message : err);
}

function every(ms, task) {
  const run = async () => {
    try {
      await task();
      if (document.body.dataset.state !== "login") document.body.dataset.state = "live";
    } catch (err) {
      failed(err);
    }
  };
  run();
  timers.push(setInterval(run, ms));
}

function start() {
  document.body.dataset.state = "loading";
  $("login").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  every(CALLS_EVERY_MS, async () => renderCalls(await api("admin/calls?seconds=60")));
  every(STATUS_EVERY_MS, refreshStatus);
  let durable = true;  // until the gateway says it has none
  every(STATUS_EVERY_MS, async () => { if (durable) durable = await pollDurable(); });
}

function logout(message) {
  timers.forEach(clearInterval);
  timers = [];
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  document.body.dataset.state = "login";
  $("board").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
  $("health").textContent = "…";
  $("health").className = "badge";
  $("status-text").textContent = "";
  $("durable").hidden = true;
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    start();
  });
  $("logout").addEventListener("click", () => logout(""));
  $("rl-form").addEventListener("submit", showUsage);
  $("limit-form").addEventListener("submit", setLimit);
  if (token) start();
});
