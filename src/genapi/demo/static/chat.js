// The demo chat page: the official phoenix client calling genapi's built-in relay functions.
//
//   /demo/chat?user_id=alice&group=lobby
//
// Calls are pushed as "api" events on the "api:chat" topic; answers, relayed messages and
// presence notices all come back as "api" pushes carrying a Response. Relayed messages have
// {group_id, from_user_id, message, timestamp, offset}; notices come with request_id
// "relay:presence". The last offset seen is kept in sessionStorage, so after a reconnect (or
// a reload) join_group asks for what was missed.
(() => {
  "use strict";
  const params = new URLSearchParams(window.location.search);
  const userId = params.get("user_id") || `guest-${Math.random().toString(36).slice(2, 8)}`;
  const groupId = params.get("group") || "lobby";
  const byId = (id) => document.getElementById(id);
  const list = byId("messages");
  const people = new Map();
  const seen = new Set();
  const offsetKey = `genapi-chat:${groupId}:${userId}`;
  let lastOffset = sessionStorage.getItem(offsetKey);
  lastOffset = lastOffset === null ? null : Number(lastOffset);
  let counter = 0;
  const pending = new Map();

  byId("me").textContent = userId;
  byId("room").textContent = groupId;
  const setStatus = (text, state) => {
    byId("status").textContent = text;
    if (state) document.body.dataset.state = state;
  };

  // "../socket" relative to /demo/chat: also right when the gateway is mounted under a prefix
  const socketPath = new URL("../socket", window.location.href).pathname;
  const socket = new Phoenix.Socket(socketPath, { params: { user_id: userId } });
  const channel = socket.channel("api:chat", {});

  function call(requestType, args) {
    const requestId = `${userId}-${Date.now().toString(36)}-${++counter}`;
    return new Promise((resolve, reject) => {
      pending.set(requestId, { resolve, reject });
      channel
        .push("api", { request_id: requestId, service: "relay", request_type: requestType, args })
        .receive("timeout", () => {
          pending.delete(requestId);
          reject(new Error("timeout"));
        });
    });
  }

  function line(className) {
    const item = document.createElement("li");
    if (className) item.className = className;
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
    return item;
  }

  function showSystem(text) {
    line("system").textContent = text;
  }

  function showMessage(msg) {
    if (seen.has(msg.offset)) return; // a recovered message may also have arrived live
    seen.add(msg.offset);
    const item = line("message");
    item.dataset.offset = String(msg.offset);
    item.dataset.from = msg.from_user_id;
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = msg.from_user_id;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = typeof msg.message === "string" ? msg.message : JSON.stringify(msg.message);
    const time = document.createElement("time");
    time.textContent = new Date(msg.timestamp).toLocaleTimeString();
    item.append(from, text, time);
    if (lastOffset === null || msg.offset > lastOffset) {
      lastOffset = msg.offset;
      sessionStorage.setItem(offsetKey, String(lastOffset));
    }
  }

  function renderPeople() {
    const ul = byId("people");
    ul.replaceChildren();
    for (const [user, status] of [...people.entries()].sort()) {
      const item = document.createElement("li");
      item.dataset.user = user;
      item.textContent = status === "active" ? user : `${user} (${status})`;
      ul.appendChild(item);
    }
    byId("count").textContent = String(people.size);
  }

  function onNotice(notice) {
    if (notice.group_id !== groupId) return;
    if (notice.presence === "diff") {
      // joins and leaves batched per interval; a user is in one of the two only
      for (const user of Object.keys(notice.leaves)) {
        if (people.delete(user)) showSystem(`${user} left`);
      }
      for (const [user, meta] of Object.entries(notice.joins)) {
        if (!people.has(user) && user !== userId) showSystem(`${user} joined`);
        people.set(user, meta.status);
      }
    } else if (notice.presence === "status") {
      people.set(notice.user_id, notice.status);
    } else if (notice.presence === "leave") {
      showSystem(`${notice.user_id} left`);
      people.delete(notice.user_id);
    } else if (notice.presence === "deleted") {
      showSystem("the group was deleted");
      people.clear();
    }
    renderPeople();
  }

  channel.on("api", (response) => {
    const result = response.result;
    if (response.success && result && result.presence && response.request_id === "relay:presence") {
      onNotice(result);
      return;
    }
    if (response.success && result && result.from_user_id !== undefined && result.offset !== undefined) {
      if (result.group_id === groupId) showMessage(result);
      return;
    }
    const waiter = pending.get(response.request_id);
    if (!waiter) return;
    pending.delete(response.request_id);
    if (response.success) waiter.resolve(result);
    else waiter.reject(new Error(response.error));
  });

  async function enter() {
    setStatus("joining…", "joining");
    const joined = await call("join_group", { group_id: groupId, last_offset: lastOffset });
    for (const msg of joined.messages || []) showMessage(msg);
    if (joined.recovered === false) showSystem("some earlier messages are no longer available");
    if (lastOffset === null && joined.offset !== undefined) {
      lastOffset = joined.offset; // start from here: older messages are not ours to replay
      sessionStorage.setItem(offsetKey, String(lastOffset));
    }
    const here = await call("presence", { group_id: groupId });
    people.clear();
    for (const member of here.members) people.set(member.user_id, member.status);
    renderPeople();
    byId("text").disabled = false;
    byId("send").disabled = false;
    setStatus(`joined (${joined.status})`, "ready");
  }

  // The "ok" hook runs on every (re)join, so a reconnect recovers what was missed.
  channel
    .join()
    .receive("ok", () => enter().catch((err) => setStatus(`error: ${err.message}`, "error")))
    .receive("error", (resp) => setStatus(`join refused: ${JSON.stringify(resp)}`, "error"));
  socket.onError(() => setStatus("disconnected, retrying…", "disconnected"));
  socket.connect();

  byId("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = byId("text");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    try {
      const sent = await call("send_message", { group_id: groupId, message: text });
      // the sending connection gets the answer, not a copy: show our own message from it
      showMessage({ group_id: groupId, from_user_id: userId, message: text,
                    timestamp: sent.timestamp, offset: sent.offset });
    } catch (err) {
      showSystem(`not sent: ${err.message}`);
    }
  });
})();
