// What the headless-Chromium scripts share: JSON-line output and the browser launch.
import { chromium } from "playwright-core";

/** Print one observation as a JSON line (pytest reads them). */
export const out = (obj) => console.log(JSON.stringify(obj));

/** Debian's Chromium, headless, with no background traffic. */
export function launch(executablePath = "/usr/bin/chromium") {
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/** A new page on the dashboard, signed in with the admin token; page errors are printed. */
export async function dashboard(browser, baseUrl, token) {
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (err) => out({ page_error: err.message }));
  await page.goto(`${baseUrl}/dashboard`);
  await page.fill("#token", token);
  await page.click("#connect");
  return page;
}
