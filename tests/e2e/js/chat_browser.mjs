// Two headless Chromium pages chat through the demo page /demo/chat (phoenix.js in the page).
// Usage: node chat_browser.mjs <http base url> [chromium path]
// Prints one JSON line per observation; pytest asserts on them.
import { launch, out } from "./browser.mjs";

const [, , baseUrl, executablePath] = process.argv;

const browser = await launch(executablePath);

async function open(userId) {
  const context = await browser.newContext(); // own storage: pages do not share offsets
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on("pageerror", (err) => out({ page_error: `${userId}: ${err.message}` }));
  await page.goto(`${baseUrl}/demo/chat?user_id=${encodeURIComponent(userId)}`);
  await page.waitForSelector('body[data-state="ready"]');
  return page;
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.click("#send");
}

async function heard(page, from, text) {
  const item = page.locator("#messages li.message", { hasText: text });
  await item.waitFor();
  return { from: await item.getAttribute("data-from"),
           offset: Number(await item.getAttribute("data-offset")),
           text: await item.locator(".text").textContent() };
}

try {
  const alice = await open("alice");
  const bob = await open("bob");
  await alice.waitForSelector('#people li[data-user="bob"]');
  out({ alice_sees_count: await alice.textContent("#count") });
  out({ bob_sees_count: await bob.textContent("#count") });

  await say(alice, "hello from alice");
  out({ bob_heard: await heard(bob, "alice", "hello from alice") });
  out({ alice_shows_own: await heard(alice, "alice", "hello from alice") });

  await say(bob, "hi alice");
  out({ alice_heard: await heard(alice, "bob", "hi alice") });

  await bob.close();
  await alice.waitForSelector('#people li[data-user="bob"]', { state: "detached" });
  out({ bob_left: await alice.locator("#messages li.system", { hasText: "bob left" }).count() });
} finally {
  await browser.close();
}
