// Runs the generated TypeScript client (compiled to JS by the test) with phoenix.js.
// Usage: node callapi_runner.mjs <socket url> <compiled api.js path>
// Prints one JSON line per observation; pytest asserts on them.
import { Socket } from "phoenix";
import WebSocket from "ws";
import { pathToFileURL } from "node:url";

const [, , url, apiPath] = process.argv;
const api = await import(pathToFileURL(apiPath).href);
const out = (obj) => console.log(JSON.stringify(obj));

const socket = new Socket(url, { transport: WebSocket, timeout: 5000 });
socket.connect();
const channel = socket.channel("api:lobby", {});
await new Promise((resolve, reject) => {
  channel.join().receive("ok", resolve).receive("error", reject).receive("timeout", reject);
});

try {
  out({ sync: await api.callApi(channel, "ts", "echo", { text: "hi" }) });
  out({ version: await api.callApiVersion(channel, "ts", "echo", "2.0.0", { text: "hi" }) });
  out({ async: await api.callApi(channel, "ts", "later", { value: 7 }) });
  const chunks = [];
  out({ stream: await api.callApi(channel, "ts", "count", { n: 3 },
                                  { onChunk: (c) => chunks.push(c) }) });
  out({ chunks });
  out({ none: await api.callApi(channel, "ts", "fire", {}) });
  out({ invalid: await api.callApi(channel, "ts", "echo", {}) });
  out({ both: await Promise.all([api.callApi(channel, "ts", "echo", { text: "a" }),
                                 api.callApi(channel, "ts", "echo", { text: "b" })]) });
} finally {
  socket.disconnect();
}
