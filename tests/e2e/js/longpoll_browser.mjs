// phoenix.js in headless Chromium over the LongPoll transport: a call, an async call, a
// stream and relay messages between two sockets, each its own page.
// Usage: node longpoll_browser.mjs <http base url> <mode: longpoll|fallback> [chromium path]
// mode "longpoll" sets transport: LongPoll; "fallback" lets phoenix.js fall back by itself
// (longPollFallbackMs) from a WebSocket the server refuses. One JSON line per observation.
import { launch, out } from "./browser.mjs";

const [, , baseUrl, mode, executablePath] = process.argv;
const browser = await launch(executablePath);

async function open(userId) {
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(20_000);
  page.on("pageerror", (err) => out({ page_error: `${userId}: ${err.message}` }));
  await page.goto(`${baseUrl}/healthz`);
  await page.addScriptTag({ url: "/demo/static/phoenix.min.js" });
  await page.evaluate(({ userId, mode }) => {
    const options = { params: { user_id: userId }, reconnectAfterMs: () => 100 };
    if (mode === "longpoll") options.transport = Phoenix.LongPoll;
    else options.longPollFallbackMs = 500;
    const socket = new Phoenix.Socket("/socket", options);
    socket.connect();
    const channel = socket.channel("api:lobby", {});
    const responses = {};
    channel.on("api", (r) => (responses[r.request_id] ||= []).push(r));
    window.genapi = { socket, channel, responses, counter: 0 };
    return new Promise((resolve, reject) =>
      channel.join().receive("ok", resolve).receive("error", reject));
  }, { userId, mode });
  return page;
}

// Push one call; resolve when its terminal Response arrived: all its Responses.
function call(page, service, request_type, args, kind = "sync") {
  return page.evaluate(({ service, request_type, args, kind }) => {
    const g = window.genapi;
    const request_id = `lp-${++g.counter}`;
    g.channel.push("api", { service, request_type, request_id, args });
    const done = (list) => list.some((r) => kind === "stream" ? !r.has_more
      : kind === "async" ? !r.async || !r.success : true);
    return new Promise((resolve) => {
      const check = () => {
        const list = g.responses[request_id] || [];
        if (done(list)) resolve(list);
        else setTimeout(check, 20);
      };
      check();
    });
  }, { service, request_type, args, kind });
}

try {
  const alice = await open("alice");
  out({ transport: await alice.evaluate(() =>
    window.genapi.socket.transport === Phoenix.LongPoll ? "LongPoll" : "WebSocket") });
  out({ call: await call(alice, "user_service", "get_user", { user_id: "1" }) });
  out({ async: await call(alice, "report_service", "generate_report",
                          { format: "csv" }, "async") });
  out({ stream: await call(alice, "event_service", "ticker",
                           { interval_ms: 10, count: 5 }, "stream") });
  const bob = await open("bob");
  await call(alice, "relay", "create_group", { group_id: "lp-room", group_type: "public" });
  await call(bob, "relay", "join_group", { group_id: "lp-room" });
  await call(alice, "relay", "send_message", { group_id: "lp-room", message: "hello bob" });
  out({ bob_heard: await bob.evaluate(() => new Promise((resolve) => {
    const check = () => {
      const all = Object.values(window.genapi.responses).flat();
      const got = all.find((r) => r.result && r.result.message === "hello bob");
      if (got) resolve(got.result); else setTimeout(check, 20);
    };
    check();
  })) });
} finally {
  await browser.close();
}
