// Headless Chromium opens the admin dashboard, types the token and watches live data.
// Usage: node dashboard_browser.mjs <http base url> <admin token> [chromium path]
// Prints one JSON line per observation; pytest asserts on them.
import { launch, out } from "./browser.mjs";

const [, , baseUrl, token, executablePath] = process.argv;

const browser = await launch(executablePath);

async function open(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (err) => out({ page_error: err.message }));
  page.on("console", (msg) => {
    if (/Content.Security.Policy/i.test(msg.text())) out({ csp_violation: msg.text() });
  });
  await page.goto(`${baseUrl}/dashboard`);
  return page;
}

async function login(page, value) {
  await page.fill("#token", value);
  await page.click("#connect");
}

const number = async (page, selector, attribute) =>
  Number(await page.getAttribute(selector, attribute));

try {
  // A wrong token brings the login form back with the gateway's refusal.
  const wrong = await open(await browser.newContext());
  out({ first_state: await wrong.getAttribute("body", "data-state") });
  out({ board_visible_before_login: await wrong.isVisible("#board") });
  await login(wrong, "not-the-token");
  await wrong.waitForSelector("#login-error:not([hidden])");
  out({ wrong_token: await wrong.textContent("#login-error") });
  out({ stored_after_wrong: await wrong.evaluate(() => sessionStorage.length) });

  const context = await browser.newContext();
  const page = await open(context);
  await login(page, token);
  await page.waitForSelector('body[data-state="live"]');
  await page.waitForSelector('#functions tbody tr[data-service="user_service"]');
  out({ services: await page.$$eval("#functions tbody tr",
    (rows) => [...new Set(rows.map((r) => r.dataset.service))]) });
  out({ health: await page.textContent("#health") });
  out({ process: await page.textContent("#process") });

  // The live figures: the test keeps calling the gateway while we watch.
  await page.waitForFunction(() => Number(document.getElementById("call-rate").dataset.value) > 0);
  out({ call_rate: await number(page, "#call-rate", "data-value") });
  await page.waitForFunction(() => Number(document.getElementById("chart").dataset.maxCalls) > 0);
  out({ chart_max_calls: await number(page, "#chart", "data-max-calls") });
  out({ chart_points: await number(page, "#chart", "data-points") });
  const firstT = await page.getAttribute("#chart", "data-last-t");
  const firstTotal = await number(page, "#calls-total", "data-value");
  await page.waitForFunction(
    ([t, total]) => document.getElementById("chart").dataset.lastT !== t &&
      Number(document.getElementById("calls-total").dataset.value) > total,
    [firstT, firstTotal]);
  out({ chart_advanced: true,
        total_grew: (await number(page, "#calls-total", "data-value")) > firstTotal });
  const painted = await page.$eval("#chart", (canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let inked = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked += 1;
    return inked;
  });
  out({ chart_inked_pixels: painted });

  // A function's call flow, from a click on its row.
  await page.click('#functions tbody tr[data-service="user_service"][data-request-type="get_user"][data-version="2.0.0"]');
  await page.waitForSelector("#flow:not([hidden]) #flow-steps li");
  out({ flow_title: await page.textContent("#flow-title") });
  out({ flow_phases: await page.$$eval("#flow-steps li b", (els) => els.map((e) => e.textContent)) });

  // A user's rate-limit usage.
  await page.fill("#rl-user", "alice");
  await page.click("#rl-form button");
  await page.waitForSelector("#rl-usage tbody tr");
  out({ usage_rows: await page.$$eval("#rl-usage tbody tr",
    (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))) });

  // A gateway without durable calls shows no durable panel.
  out({ durable_panel: await page.isVisible("#durable") });

  // The token stays for the tab: a reload goes straight to the board.
  await page.reload();
  await page.waitForSelector('body[data-state="live"]');
  out({ after_reload: await page.getAttribute("body", "data-state") });
  out({ token_in_page: (await page.content()).includes(token) });
  await page.click("#logout");
  out({ after_logout: await page.evaluate(() => sessionStorage.length) });
} finally {
  await browser.close();
}
