// End-to-end scenarios run by pytest with the official phoenix client (Node 20: `ws` is the
// transport). Usage: node scenarios.mjs <scenario> <socket url> [json options]
// Each scenario prints one JSON line per observation; pytest asserts on them. Lines that
// start with "WAIT" ask the test to do something and answer on stdin.
import { Socket } from "phoenix";
import WebSocket from "ws";
import readline from "node:readline";

const [, , scenario, url, rawOptions] = process.argv;
const options = rawOptions ? JSON.parse(rawOptions) : {};
const out = (obj) => console.log(JSON.stringify(obj));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const stdin = readline.createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
async function waitFor(step) {
  out({ wait: step });
  await lines.next();
}

function connect(params = {}, extra = {}) {
  const socket = new Socket(url, {
    transport: WebSocket,
    params,
    timeout: 5000,
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
    ...extra,
  });
  socket.connect();
  return socket;
}

function join(channel) {
  return new Promise((resolve, reject) => {
    channel
      .join()
      .receive("ok", (resp) => resolve(resp))
      .receive("error", (resp) => reject(new Error(JSON.stringify(resp))))
      .receive("timeout", () => reject(new Error("join timeout")));
  });
}

// Push one api call; resolve with the api Response for its request_id and the reply status.
let counter = 0;
function call(channel, service, request_type, args = {}, extra = {}) {
  const request_id = `js-${++counter}`;
  return new Promise((resolve) => {
    const result = { request_id };
    let pending = 2;
    const done = () => --pending === 0 && resolve(result);
    const ref = channel.on("api", (payload) => {
      if (payload.request_id !== request_id || result.response) return;
      result.response = payload;
      channel.off("api", ref);
      done();
    });
    channel
      .push("api", { service, request_type, request_id, args, ...extra })
      .receive("ok", (resp) => { result.reply = { status: "ok", response: resp }; done(); })
      .receive("error", (resp) => { result.reply = { status: "error", response: resp }; done(); })
      .receive("timeout", () => { result.reply = { status: "timeout" }; resolve(result); });
  });
}

// Push one call and collect every api push for it until its terminal Response.
function collect(channel, service, request_type, args = {}, opts = {}) {
  const request_id = `js-${++counter}`;
  return new Promise((resolve) => {
    const pushes = [];
    let reply = null;
    let sawInit = false;
    const ref = channel.on("api", (payload) => {
      if (payload.request_id !== request_id) return;
      pushes.push(payload);
      if (payload.result === "init" && payload.has_more) sawInit = true;
      else if (payload.has_more) {
        if (opts.onChunk) opts.onChunk(request_id, pushes.length);
      } else if (!sawInit && payload.async && payload.success && payload.result === null) {
        // an async ack: the result follows
      } else {
        channel.off("api", ref);
        setTimeout(() => resolve({ request_id, pushes, reply }), opts.settleMs ?? 300);
      }
    });
    channel
      .push("api", { service, request_type, request_id, args })
      .receive("ok", (resp) => { reply = { status: "ok", response: resp }; })
      .receive("error", (resp) => { reply = { status: "error", response: resp }; });
  });
}

const scenarios = {
  async basic() {
    const socket = connect({ user_id: "1", roles: "viewer" });
    const channel = socket.channel("api:lobby", {});
    out({ join: await join(channel) });
    out({ list_users: await call(channel, "user_service", "list_users") });
    out({ get_user: await call(channel, "user_service", "get_user", { user_id: "1" }) });
    out({ validation: await call(channel, "user_service", "get_user", {}) });
    out({ own_profile: await call(channel, "user_service", "get_user_profile", { user_id: "1" }) });
    out({ denied: await call(channel, "user_service", "get_user_profile", { user_id: "2" }) });
    out({ not_admin: await call(channel, "user_service", "delete_user", { user_id: "2" }) });
    socket.disconnect();
  },

  async anonymous() {
    const socket = connect({});
    const channel = socket.channel("api:lobby", {});
    await join(channel);
    out({ public: await call(channel, "user_service", "get_user", { user_id: "1" }) });
    out({ protected: await call(channel, "user_service", "get_user_profile", { user_id: "1" }) });
    socket.disconnect();
  },

  async refused() {
    let errors = 0;
    let joined = false;
    const socket = connect(options.params || {}, { reconnectAfterMs: () => 20 });
    socket.onError(() => errors++);
    const channel = socket.channel("api:lobby", {});
    channel.join().receive("ok", () => { joined = true; });
    await sleep(options.wait_ms || 600);
    out({ errors, joined, connected: socket.isConnected() });
    socket.disconnect();
  },

  async heartbeat() {
    const socket = connect({ user_id: "1" }, { heartbeatIntervalMs: 100 });
    let heartbeatReplies = 0;
    socket.onMessage((msg) => {
      if (msg.topic === "phoenix" && msg.event === "phx_reply" && msg.payload.status === "ok") {
        heartbeatReplies++;
      }
    });
    const channel = socket.channel("api:lobby", {});
    await join(channel);
    await sleep(650);
    out({ heartbeat_replies: heartbeatReplies, connected: socket.isConnected() });
    out({ after: await call(channel, "user_service", "list_users") });
    socket.disconnect();
  },

  async leave() {
    const socket = connect({ user_id: "1" });
    const first = socket.channel("api:lobby", {});
    await join(first);
    const left = await new Promise((resolve) => {
      first.leave().receive("ok", () => resolve("ok")).receive("timeout", () => resolve("timeout"));
    });
    out({ left, state: first.state });
    const second = socket.channel("api:lobby", {});
    await join(second);
    out({ after_rejoin: await call(second, "user_service", "list_users") });
    socket.disconnect();
  },

  async reconnect() {
    const socket = connect({ user_id: "1" });
    const closes = [];
    socket.onClose((event) => closes.push(event.code));
    const channel = socket.channel("api:lobby", {});
    let joins = 0;
    channel.join().receive("ok", () => joins++);
    while (joins < 1) await sleep(10);
    out({ before: await call(channel, "user_service", "list_users") });
    await waitFor("drain");
    const deadline = Date.now() + 10000;
    while (joins < 2 && Date.now() < deadline) await sleep(20);
    out({ closes, joins });
    out({ after: await call(channel, "user_service", "get_user", { user_id: "2" }) });
    socket.disconnect();
  },

  async modes() {
    const socket = connect({ user_id: "1" });
    const channel = socket.channel("api:lobby", {});
    await join(channel);
    let extra = 0;
    channel.on("api", () => { extra++; });
    out({ async: await collect(channel, "report_service", "generate_report", { delay_ms: 100 }) });
    out({ stream: await collect(channel, "event_service", "stream_events", { interval_ms: 10 }) });
    let cancelled = false;
    out({
      cancel: await collect(channel, "event_service", "ticker", { interval_ms: 20 }, {
        onChunk: (request_id, count) => {
          if (count >= 4 && !cancelled) {
            cancelled = true;
            channel.push("cancel", { request_id });
          }
        },
      }),
    });
    if (options.timeout_service) {
      out({ timeout: await collect(channel, options.timeout_service, options.timeout_function) });
    }
    socket.disconnect();
  },

  async stale() {
    const socket = connect({ user_id: "1" });
    const first = socket.channel("api:lobby", {});
    await join(first);
    const oldJoinRef = first.joinRef();
    await new Promise((resolve) => first.leave().receive("ok", resolve));
    const second = socket.channel("api:lobby", {});
    await join(second);
    const staleRef = socket.makeRef();
    let answered = false;
    socket.onMessage((msg) => {
      if (msg.ref === staleRef) answered = true;
    });
    socket.push({
      topic: "api:lobby",
      event: "api",
      payload: { service: "user_service", request_type: "list_users", request_id: "stale-1" },
      ref: staleRef,
      join_ref: oldJoinRef,
    });
    await sleep(300);
    out({ stale_answered: answered, old: oldJoinRef, current: second.joinRef() });
    out({ still_works: await call(second, "user_service", "list_users") });
    socket.disconnect();
  },
};

const run = scenarios[scenario];
if (!run) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
run()
  .then(() => process.exit(0))
  .catch((error) => {
    out({ error: String(error) });
    process.exit(1);
  });
