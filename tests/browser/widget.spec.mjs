// Drives Debian's Chromium (playwright-core) through one scenario of the chat widget and prints
// what it observed, for tests/test_widget_browser.py, which holds the assertions.
//
//   node widget.spec.mjs '{"scenario": "conversation", "url": "http://127.0.0.1:8080", ...}'
//
// Protocol on stdout, one JSON object a line: {"ask": "stop-gateway"} waits for a line on stdin
// (the Python side did it); the last line is {"result": {...}} or {"error": "..."}.
import { createInterface } from "node:readline";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE = require.resolve("axe-core/axe.min.js");
const WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const DESKTOP = { width: 1280, height: 800 };
const MOBILE = { width: 390, height: 844 };
const ANSWER_TIMEOUT_MS = 30_000;

const config = JSON.parse(process.argv[2]);
mkdirSync(config.artifacts, { recursive: true });

const stdin = createInterface({ input: process.stdin });
const stdinLines = stdin[Symbol.asyncIterator]();
function emit(message) { process.stdout.write(JSON.stringify(message) + "\n"); }
async function ask(what) {
  emit({ ask: what });
  const { done } = await stdinLines.next();
  if (done) throw new Error(`no answer to ${what}`);
}

// ------------------------------------------------------------------ the widget, seen from outside

function inWidget(page, selector) { return page.locator(`#assistance-elections ${selector}`); }

function widget(page) {
  return {
    launcher: page.getByRole("button", { name: "Assistance élections" }),
    panel: page.getByRole("dialog", { name: "Assistance élections" }),
    log: page.getByRole("log"),
    input: page.getByLabel("Votre question"),
    close: page.getByRole("button", { name: "Fermer l'assistance" }),
    banner: inWidget(page, ".ae-banner"),
  };
}

async function watch(page) {
  const seen = { dialogs: [], pageErrors: [] };
  page.on("dialog", (dialog) => { seen.dialogs.push(dialog.message()); dialog.dismiss(); });
  page.on("pageerror", (error) => seen.pageErrors.push(String(error)));
  return seen;
}

let lastPage = null; // screenshot of the page on a failure

async function newPage(browser, viewport, options = {}) {
  const context = await browser.newContext({
    viewport, locale: "fr-FR", reducedMotion: "reduce", ...options,
  });
  const page = await context.newPage();
  lastPage = page;
  page.setDefaultTimeout(ANSWER_TIMEOUT_MS);
  return { context, page, seen: await watch(page) };
}

// Whatever the widget shows while waiting is gone, and its log is not busy.
async function idle(page) {
  await page.waitForFunction(() => {
    const root = document.querySelector("#assistance-elections")?.shadowRoot;
    const log = root?.querySelector(".ae-log");
    return log && log.getAttribute("aria-busy") === "false" && !root.querySelector(".ae-typing");
  });
}

async function say(page, text) {
  const { input } = widget(page);
  await input.fill(text);
  await input.press("Enter");
  await idle(page);
}

async function focused(page) {
  return page.evaluate(() => {
    const host = document.activeElement;
    const inner = host?.shadowRoot?.activeElement;
    const node = inner || host;
    if (!node || node === document.body) return null;
    const style = getComputedStyle(node);
    return {
      inWidget: Boolean(inner),
      tag: node.tagName.toLowerCase(),
      className: String(node.className || ""),
      name: node.getAttribute("aria-label") || node.textContent.trim().slice(0, 60),
      outline: `${style.outlineStyle} ${style.outlineWidth}`,
    };
  });
}

// What the conversation shows: turns, links, and anything that should never be there.
async function observeLog(page) {
  return page.evaluate(() => {
    const root = document.querySelector("#assistance-elections").shadowRoot;
    const log = root.querySelector(".ae-log");
    const text = (node) => node.querySelector(".ae-text")?.textContent || "";
    return {
      text: log.innerText,
      user: [...log.querySelectorAll(".ae-msg-user")].map(text),
      bot: [...log.querySelectorAll(".ae-msg-bot")].map(text),
      errors: [...log.querySelectorAll(".ae-msg-error")].map(text),
      notices: [...log.querySelectorAll(".ae-msg-system")].map((n) => n.textContent),
      masked: [...log.querySelectorAll(".ae-masked")].map((n) => n.textContent),
      strong: [...log.querySelectorAll("strong")].map((n) => n.textContent),
      bullets: log.querySelectorAll("li").length,
      links: [...log.querySelectorAll("a")].map((a) => ({
        text: a.textContent, href: a.getAttribute("href"), target: a.target, rel: a.rel,
      })),
      buttons: [...log.querySelectorAll("button")].map((b) => ({
        text: b.textContent, type: b.type,
      })),
      // Elements that only injected HTML could have created.
      injected: [...root.querySelectorAll("img, script, iframe, object, embed, [onerror], [onclick]")]
        .map((n) => n.outerHTML),
      xssFlag: window.__xss === undefined ? null : String(window.__xss),
    };
  });
}

async function axe(page) {
  const ready = await page.evaluate(() => typeof window.axe !== "undefined");
  if (!ready) await page.evaluate(readFileSync(AXE, "utf8")); // the page's CSP forbids a script tag
  return page.evaluate(async (tags) => {
    const results = await window.axe.run(document, { runOnly: { type: "tag", values: tags } });
    return {
      violations: results.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")} :: ${n.failureSummary}`),
      })),
      passes: results.passes.length,
      incomplete: results.incomplete.map((v) => v.id),
    };
  }, WCAG_TAGS);
}

async function shot(page, name) {
  const path = join(config.artifacts, name);
  await page.screenshot({ path });
  return path;
}

async function panelBox(page) {
  return page.evaluate(() => {
    const root = document.querySelector("#assistance-elections").shadowRoot;
    const box = root.querySelector(".ae-panel").getBoundingClientRect();
    return { x: box.x, y: box.y, width: box.width, height: box.height };
  });
}

// ------------------------------------------------------------------ scenarios

const scenarios = {
  // The demo page, closed then open, at both widths; axe on each state; reduced motion.
  async demo(browser) {
    const out = { axe: {} };
    const { page, seen, context } = await newPage(browser, DESKTOP);
    await page.goto(config.url + "/");
    const w = widget(page);
    await w.launcher.waitFor();
    out.page = await page.evaluate(() => ({
      lang: document.documentElement.lang,
      title: document.title,
      scripts: [...document.scripts].map((s) => s.getAttribute("src")),
      widgetLang: document.querySelector("#assistance-elections").getAttribute("lang"),
    }));
    out.closed = { panelVisible: await w.panel.isVisible(),
      expanded: await w.launcher.getAttribute("aria-expanded") };
    out.axe.closed = await axe(page);
    await w.launcher.click();
    await idle(page);
    out.open = {
      panelVisible: await w.panel.isVisible(),
      expanded: await w.launcher.getAttribute("aria-expanded"),
      focus: await focused(page),
      log: await observeLog(page),
      logAttributes: await w.log.evaluate((n) => ({
        live: n.getAttribute("aria-live"), label: n.getAttribute("aria-label"),
      })),
      panel: await panelBox(page),
      hint: await inWidget(page, ".ae-hint").innerText(),
      animation: await inWidget(page, ".ae-panel").evaluate((n) => getComputedStyle(n).animationName),
    };
    out.axe.openDesktop = await axe(page);
    out.screenshots = [await shot(page, "demo-desktop.png")];
    out.seen = seen;
    await context.close();

    const moving = await newPage(browser, DESKTOP, { reducedMotion: "no-preference" });
    await moving.page.goto(config.url + "/");
    await widget(moving.page).launcher.click();
    out.animationWithMotion = await inWidget(moving.page, ".ae-panel")
      .evaluate((n) => getComputedStyle(n).animationName);
    await moving.context.close();

    const mobile = await newPage(browser, MOBILE, { isMobile: true, hasTouch: true });
    const m = widget(mobile.page);
    await mobile.page.goto(config.url + "/");
    await m.launcher.click();
    await idle(mobile.page);
    out.mobile = {
      panel: await panelBox(mobile.page),
      launcherVisible: await m.launcher.isVisible(),
      hint: await inWidget(mobile.page, ".ae-hint").innerText(),
    };
    out.axe.openMobile = await axe(mobile.page);
    out.screenshots.push(await shot(mobile.page, "demo-mobile.png"));
    await m.close.click();
    out.mobile.afterClose = {
      panelVisible: await m.panel.isVisible(),
      launcherVisible: await m.launcher.isVisible(),
      focus: await focused(mobile.page),
    };
    await mobile.context.close();
    return out;
  },

  // A voter asks for the webmail, picks Lyon with a button, gives a NUMEN; reload: history.
  async conversation(browser) {
    const out = { axe: {} };
    const { page, seen, context } = await newPage(browser, DESKTOP);
    const w = widget(page);
    await page.goto(config.url + "/");
    await w.launcher.click();
    await idle(page);
    await say(page, "webmail");
    out.afterWebmail = await observeLog(page);
    await w.log.getByRole("button", { name: "Lyon", exact: true }).click();
    await idle(page);
    out.afterLyon = await observeLog(page);
    out.focusAfterButton = await focused(page);
    await say(page, "mon NUMEN est 01E9501234ABC");
    out.afterNumen = await observeLog(page);
    await say(page, "je suis AESH, je vote pour quoi ?");
    out.axe.conversationDesktop = await axe(page);
    out.screenshots = [await shot(page, "widget-desktop.png")];

    await page.reload();
    await w.panel.waitFor(); // the widget remembers it was open
    await idle(page);
    await w.log.getByText("webmail.ac-lyon.fr").first().waitFor();
    out.afterReload = await observeLog(page);

    await page.setViewportSize(MOBILE);
    await idle(page);
    out.mobilePanel = await panelBox(page);
    out.axe.conversationMobile = await axe(page);
    out.screenshots.push(await shot(page, "widget-mobile.png"));
    out.seen = seen;
    await context.close();
    return out;
  },

  // A shared computer: the voter clears the conversation with the keyboard, after a NUMEN.
  async clear(browser) {
    const out = { axe: {}, screenshots: [] };
    const { page, seen, context } = await newPage(browser, DESKTOP);
    const w = widget(page);
    const clear = page.getByRole("button", { name: "Effacer la conversation" });
    const question = page.getByRole("alertdialog", { name: "Effacer cette conversation ?" });
    await page.goto(config.url + "/");
    await w.launcher.click();
    await idle(page);
    await say(page, "webmail Lyon");
    await say(page, "mon NUMEN est 01E9501234ABC");
    out.before = await observeLog(page);
    out.cookie = (await context.cookies()).find((c) => c.name === "sid")?.value ?? null;
    out.screenshots.push(await shot(page, "clear-before-desktop.png"));

    await clear.focus();
    out.clearFocus = await focused(page);
    await page.keyboard.press("Enter");
    await question.waitFor();
    out.asked = { focus: await focused(page), expanded: await clear.getAttribute("aria-expanded") };
    out.axe.confirmDesktop = await axe(page);
    out.screenshots.push(await shot(page, "clear-confirm-desktop.png"));
    await page.keyboard.press("Escape"); // first Escape: the question only
    out.escaped = {
      questionVisible: await question.isVisible(),
      panelVisible: await w.panel.isVisible(),
      focus: await focused(page),
      log: await observeLog(page),
    };

    await page.setViewportSize(MOBILE);
    await page.keyboard.press("Enter");
    await question.waitFor();
    out.axe.confirmMobile = await axe(page);
    out.screenshots.push(await shot(page, "clear-confirm-mobile.png"));
    await page.keyboard.press("Shift+Tab"); // from « Annuler » to « Oui, effacer »
    out.yesFocus = await focused(page);
    await page.keyboard.press("Enter");
    await idle(page);
    await w.log.getByText("Conversation effacée").waitFor();
    out.after = { log: await observeLog(page), focus: await focused(page),
      questionVisible: await question.isVisible() };
    out.screenshots.push(await shot(page, "clear-after-mobile.png"));
    await page.setViewportSize(DESKTOP);
    out.screenshots.push(await shot(page, "clear-after-desktop.png"));
    out.cookieAfter = (await context.cookies()).find((c) => c.name === "sid")?.value ?? null;

    await page.reload();
    await w.panel.waitFor();
    await idle(page);
    await page.waitForTimeout(300);
    out.afterReload = await observeLog(page);
    out.seen = seen;
    await context.close();
    return out;
  },

  // Typed HTML, and a bot answer full of HTML, are text; nothing runs.
  async xss(browser) {
    const { page, seen, context } = await newPage(browser, DESKTOP);
    const w = widget(page);
    await page.goto(config.url + "/");
    await w.launcher.click();
    await idle(page);
    for (const attempt of config.typed) await say(page, attempt);
    await page.route("**/api/chat", (route) => route.fulfill({
      status: 200, contentType: "application/json", body: JSON.stringify(config.botAnswer),
    }), { times: 1 });
    await say(page, "montre-moi une réponse piégée");
    await page.waitForTimeout(500); // an onerror handler would have fired by now
    const live = await observeLog(page);
    const htmlTitle = config.botAnswer.messages[0].buttons[0].title;
    await w.log.getByRole("button", { name: htmlTitle }).click();
    await idle(page);
    const afterButton = await observeLog(page);
    await page.reload();
    await w.panel.waitFor();
    await idle(page);
    await w.log.getByText(config.typed[0]).first().waitFor();
    await page.waitForTimeout(500);
    const afterReload = await observeLog(page);
    await context.close();
    return { live, afterButton, afterReload, seen };
  },

  // The gateway's French error sentences (413, 429, 400, 503) are the bot's explanation.
  async errors(browser) {
    const { page, seen, context } = await newPage(browser, DESKTOP);
    const w = widget(page);
    await page.goto(config.url + "/");
    await w.launcher.click();
    await idle(page);
    const cases = [];
    for (const { status, error } of config.errors) {
      await page.route("**/api/chat", (route) => route.fulfill({
        status, contentType: "application/json", body: JSON.stringify({ error }),
      }), { times: 1 });
      await say(page, `question refusée ${status}`);
      const log = await observeLog(page);
      cases.push({ status, lastError: log.errors.at(-1), user: log.user,
        input: await w.input.inputValue() });
      await w.input.fill("");
    }
    await context.close();
    return { cases, seen };
  },

  // Keyboard only: Tab to the launcher, Enter opens, a suggestion, type, Enter, Escape.
  async keyboard(browser) {
    const out = {};
    const { page, seen, context } = await newPage(browser, DESKTOP);
    const w = widget(page);
    await page.goto(config.url + "/");
    await w.launcher.waitFor();
    let focus = null;
    for (let tabs = 1; tabs <= 20; tabs++) {
      await page.keyboard.press("Tab");
      focus = await focused(page);
      if (focus?.className.includes("ae-launcher")) { out.tabsToLauncher = tabs; break; }
    }
    out.launcherFocus = focus;
    await page.keyboard.press("Enter");
    await idle(page);
    out.afterOpen = { panelVisible: await w.panel.isVisible(), focus: await focused(page) };
    await page.keyboard.press("Shift+Tab");
    out.suggestionFocus = await focused(page);
    await page.keyboard.press("Enter");
    await idle(page);
    out.afterSuggestion = { log: await observeLog(page), focus: await focused(page) };
    for (let tabs = 1; tabs <= 20; tabs++) {
      await page.keyboard.press("Tab");
      if ((await focused(page))?.className.includes("ae-input")) break;
    }
    await page.keyboard.type("je suis AESH, je vote pour quoi ?");
    await page.keyboard.press("Enter");
    await idle(page);
    out.afterTyping = { log: await observeLog(page), focus: await focused(page) };
    await page.keyboard.press("Escape");
    out.afterEscape = { panelVisible: await w.panel.isVisible(), focus: await focused(page),
      expanded: await w.launcher.getAttribute("aria-expanded") };
    await page.keyboard.press("Enter");
    out.reopened = { panelVisible: await w.panel.isVisible(), focus: await focused(page) };
    await page.keyboard.press("Escape");
    out.seen = seen;
    await context.close();
    return out;
  },

  // The gateway stops: a French banner, the message kept, the input usable; it comes back.
  async offline(browser) {
    const out = {};
    const { page, seen, context } = await newPage(browser, DESKTOP);
    const w = widget(page);
    await page.goto(config.url + "/");
    await w.launcher.click();
    await idle(page);
    await say(page, "bonjour");
    out.before = await observeLog(page);

    await ask("stop-gateway");
    await say(page, "webmail Lyon");
    await w.banner.waitFor();
    out.down = {
      banner: await w.banner.innerText(),
      bannerRole: await w.banner.getAttribute("role"),
      input: await w.input.inputValue(),
      inputEditable: await w.input.isEditable(),
      log: await observeLog(page),
    };
    await w.banner.getByRole("button", { name: "Réessayer maintenant" }).click();
    await page.waitForFunction(() => document.querySelector("#assistance-elections").shadowRoot
      .querySelector(".ae-banner-next")?.textContent.includes("Toujours"));
    out.down.afterRetry = await w.banner.innerText();
    out.axe = await axe(page);
    out.screenshots = [await shot(page, "widget-offline.png")];

    await ask("start-gateway");
    const started = Date.now();
    await w.banner.waitFor({ state: "detached", timeout: 60_000 });
    out.back = { seconds: (Date.now() - started) / 1000, log: await observeLog(page),
      input: await w.input.inputValue() };
    await w.input.press("Enter");
    await idle(page);
    out.afterResend = await observeLog(page);
    out.seen = seen;
    await context.close();
    return out;
  },

  // Another site embeds the widget with its one script tag: CORS with the session cookie.
  async embedded(browser) {
    const { page, seen, context } = await newPage(browser, DESKTOP);
    const w = widget(page);
    await page.goto(config.hostPage);
    await w.launcher.click();
    await idle(page);
    await say(page, "webmail");
    await w.log.getByRole("button", { name: "Lyon", exact: true }).click();
    await idle(page);
    const live = await observeLog(page);
    const launcher = await inWidget(page, ".ae-launcher").evaluate((n) => ({
      background: getComputedStyle(n).backgroundColor, fontSize: getComputedStyle(n).fontSize,
    }));
    const scripts = await page.evaluate(() => [...document.scripts].map((s) => s.src));
    await shot(page, "widget-embedded.png");
    await page.reload();
    await w.panel.waitFor();
    await idle(page);
    await w.log.getByText("webmail.ac-lyon.fr").first().waitFor();
    const afterReload = await observeLog(page);
    await context.close();
    return { live, afterReload, launcher, scripts, seen };
  },
};

// ------------------------------------------------------------------ main

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let code = 0;
try {
  const run = scenarios[config.scenario];
  if (!run) throw new Error(`unknown scenario ${config.scenario}`);
  emit({ result: await run(browser) });
} catch (error) {
  code = 1;
  const failure = join(config.artifacts, `${config.scenario}-failure.png`);
  const saved = await lastPage?.screenshot({ path: failure }).then(() => failure, () => null);
  emit({ error: String(error && error.stack || error), screenshot: saved ?? null });
} finally {
  await browser.close();
  stdin.close();
}
process.exit(code);
