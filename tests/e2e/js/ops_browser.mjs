// Headless Chromium uses the dashboard's admin buttons: disable and enable a function
// version, set a rate limit; each asks for confirmation first (the first is dismissed).
// Usage: node ops_browser.mjs <http base url> <admin token> [chromium path]
import { dashboard, launch, out } from "./browser.mjs";

const [, , baseUrl, token, executablePath] = process.argv;
const ROW = '#functions tbody tr[data-service="shop"][data-request-type="price"][data-version="1.0.0"]';
const browser = await launch(executablePath);
try {
  const page = await dashboard(browser, baseUrl, token);
  await page.waitForSelector(ROW + " button.disable");

  const dialogs = [];
  let accept = false;
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    if (accept) dialog.accept(); else dialog.dismiss();
  });
  const actionText = async (id, before) => {
    await page.waitForFunction(([el, old]) => {
      const text = document.getElementById(el).textContent;
      return text && text !== old;
    }, [id, before]);
    return page.textContent("#" + id);
  };

  // Dismissed: nothing is sent.
  await page.click(ROW + " button.disable");
  await page.waitForTimeout(300);
  out({ after_dismiss: await page.textContent("#functions-action") });

  accept = true;
  await page.click(ROW + " button.disable");
  const disabled = await actionText("functions-action", "");
  out({ disable: disabled });
  if (!disabled.includes("refused")) {
    await page.waitForSelector(ROW + " button.enable");
    out({ status_cell: await page.$eval(ROW, (row) => row.cells[6].textContent) });
    await page.click(ROW + " button.enable");
    out({ enable: await actionText("functions-action", disabled) });
  }

  await page.selectOption("#limit-key", "user_id");
  await page.fill("#limit-max", "7");
  await page.fill("#limit-window", "60000");
  await page.click("#limit-form button");
  const limited = await actionText("limits-action", "");
  out({ set_limit: limited });
  if (!limited.includes("refused")) {
    await page.waitForFunction(() => [...document.querySelectorAll("#limits tbody tr")]
      .some((row) => row.cells[2].textContent === "7"));
    out({ limit_rows: await page.$$eval("#limits tbody tr",
      (rows) => rows.map((r) => [...r.cells].slice(0, 4).map((c) => c.textContent))) });
  }
  out({ dialogs });
} finally {
  await browser.close();
}
