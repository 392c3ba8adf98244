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
