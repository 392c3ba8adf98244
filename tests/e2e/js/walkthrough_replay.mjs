// Replays the walkthrough's requests (docs of the original, ../shared/reference/walkthrough.md)
// with the official phoenix client, as its JavaScript sections do: connect, join a topic,
// push "api" with the request's payload, listen to "api" pushes.
//
// Usage: node walkthrough_replay.mjs <socket url> < cases.json
// stdin: a JSON list of cases (tests/e2e/test_walkthrough_replay.py writes it):
//   {name, params, topic, payload}            one request; every "api" push for its
//                                             request_id until the final one, and the reply
//   {name, kind: "relay", members: [{params, topic}], setup, payload}
//                                             members run `setup` (join the group), then
//                                             the first sends `payload`; what each got
// Output: one JSON line per case: {name, request_id, reply, pushes} (relay: also received,
// one list of pushes per other member). "{now}" in a request_id becomes Date.now(), like
// the walkthrough's "req_" + Date.now().
import { Socket } from "phoenix";
import WebSocket from "ws";

const [, , url] = process.argv;
const out = (obj) => console.log(JSON.stringify(obj));
const CASE_TIMEOUT_MS = 20000;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

// One socket per identity (the walkthrough's callers differ only by who they are) and
// one joined channel per socket and topic.
const sockets = new Map();
function socketFor(params) {
  const key = JSON.stringify(params || {});
  if (!sockets.has(key)) {
    const socket = new Socket(url, { transport: WebSocket, params: params || {}, timeout: 10000 });
    socket.connect();
    sockets.set(key, { socket, channels: new Map() });
  }
  return sockets.get(key);
}

function joined(params, topic) {
  const entry = socketFor(params);
  if (!entry.channels.has(topic)) {
    const channel = entry.socket.channel(topic, {});
    entry.channels.set(topic, new Promise((resolve, reject) => {
      channel
        .join()
        .receive("ok", () => resolve(channel))
        .receive("error", (resp) => reject(new Error(`join ${topic}: ${JSON.stringify(resp)}`)))
        .receive("timeout", () => reject(new Error(`join ${topic}: timeout`)));
    }));
  }
  return entry.channels.get(topic);
}

// A push is final unless more follows: stream chunks (has_more), the stream's init and
// the async ack (async, success, no result yet).
function isFinal(payload) {
  if (payload.has_more) return false;
  return !(payload.async && payload.success && payload.result === null);
}

function withRequestId(payload) {
  const request_id = String(payload.request_id).replace("{now}", String(Date.now()));
  return { ...payload, request_id };
}

// Every "api" push on `channel` for `request_id` until the final one.
function pushesFor(channel, request_id) {
  const pushes = [];
  let ref;
  const done = new Promise((resolve) => {
    ref = channel.on("api", (payload) => {
      if (payload.request_id !== request_id) return;
      pushes.push(payload);
      if (isFinal(payload)) resolve();
    });
  });
  const timeout = new Promise((resolve) => setTimeout(resolve, CASE_TIMEOUT_MS));
  return Promise.race([done, timeout]).then(() => { channel.off("api", ref); return pushes; });
}

function push(channel, payload) {
  return new Promise((resolve) => {
    channel
      .push("api", payload)
      .receive("ok", (response) => resolve({ status: "ok", response }))
      .receive("error", (response) => resolve({ status: "error", response }))
      .receive("timeout", () => resolve({ status: "timeout" }));
  });
}

async function call(params, topic, rawPayload) {
  const channel = await joined(params, topic);
  const payload = withRequestId(rawPayload);
  const pushes = pushesFor(channel, payload.request_id);
  const reply = await push(channel, payload);
  return { request_id: payload.request_id, reply, pushes: await pushes };
}

async function relay(spec) {
  const channels = [];
  for (const member of spec.members) {
    const channel = await joined(member.params, member.topic);
    const setup = await call(member.params, member.topic, spec.setup);
    if (!setup.pushes.length || !setup.pushes[0].success) {
      throw new Error(`relay setup failed: ${JSON.stringify(setup)}`);
    }
    channels.push(channel);
  }
  const payload = withRequestId(spec.payload);
  const received = channels.slice(1).map((channel) => pushesFor(channel, payload.request_id));
  const sent = pushesFor(channels[0], payload.request_id);
  const reply = await push(channels[0], payload);
  return { request_id: payload.request_id, reply, pushes: await sent,
           received: await Promise.all(received) };
}

const cases = await readStdin();
for (const spec of cases) {
  const result = spec.kind === "relay"
    ? await relay(spec)
    : await call(spec.params, spec.topic, spec.payload);
  out({ name: spec.name, ...result });
}
for (const { socket } of sockets.values()) socket.disconnect();
process.exit(0);
