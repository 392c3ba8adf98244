// Headless Chromium reads the dashboard's durable-calls panel.
// Usage: node durable_browser.mjs <http base url> <admin token> [chromium path]
import { dashboard, launch, out } from "./browser.mjs";

const [, , baseUrl, token, executablePath] = process.argv;
const browser = await launch(executablePath);
try {
  const page = await dashboard(browser, baseUrl, token);
  await page.waitForSelector("#durable:not([hidden]) #durable-dead tbody tr");
  out({ states: await page.$$eval("#durable-states tbody tr",
    (rows) => Object.fromEntries(rows.map((r) => [r.dataset.state, Number(r.dataset.count)]))) });
  out({ dead: await page.$$eval("#durable-dead tbody tr",
    (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))) });
  // Retry the dead call: confirmed in a dialog, refused or done as the gate says.
  page.on("dialog", (dialog) => { out({ dialog: dialog.message() }); dialog.accept(); });
  await page.click("#durable-dead tbody tr button.retry");
  await page.waitForFunction(() => document.getElementById("durable-action").textContent);
  out({ action: await page.textContent("#durable-action") });
} finally {
  await browser.close();
}
