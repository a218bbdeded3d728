// Drives Debian's Chromium (playwright-core) through the agents' console with a voter's widget
// open beside it, and prints what both pages showed, for tests/test_console_browser.py, which
// holds the assertions.
//
//   node console.spec.mjs '{"url": "http://127.0.0.1:8080", "login": "...", "password": "...", ...}'
//
// The last line on stdout is {"result": {...}} or {"error": "..."}.
import { createRequire } from "node:module";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
// Evaluated through the DevTools protocol: the console's CSP forbids adding a script tag.
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const LAPTOP = { width: 1366, height: 768 };
const WIDGET = { width: 1280, height: 800 };
const TIMEOUT_MS = 30_000;

const config = JSON.parse(process.argv[2]);
mkdirSync(config.artifacts, { recursive: true });
function emit(message) { process.stdout.write(JSON.stringify(message) + "\n"); }

const pages = [];

async function newPage(browser, viewport) {
  const context = await browser.newContext({ viewport, locale: "fr-FR", reducedMotion: "reduce" });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  const seen = { dialogs: [], pageErrors: [], console: [] };
  page.on("dialog", (dialog) => { seen.dialogs.push(dialog.message()); dialog.dismiss(); });
  page.on("pageerror", (error) => seen.pageErrors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") seen.console.push(message.text());
  });
  // What the page's Content Security Policy blocked (inline code, a foreign resource...).
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  pages.push(page);
  return { context, page, seen };
}

async function axe(page) {
  const ready = await page.evaluate(() => typeof window.axe !== "undefined");
  if (!ready) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (tags) => {
    const results = await window.axe.run(document, { runOnly: { type: "tag", values: tags } });
    return {
      violations: results.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")} :: ${n.failureSummary}`),
      })),
      passes: results.passes.length,
    };
  }, WCAG_TAGS);
}

// ------------------------------------------------------------------ the voter's widget

async function widgetIdle(page) {
  await page.waitForFunction(() => {
    const root = document.querySelector("#assistance-elections")?.shadowRoot;
    const log = root?.querySelector(".ae-log");
    return log && log.getAttribute("aria-busy") === "false" && !root.querySelector(".ae-typing");
  });
}

async function voterSays(page, text) {
  const input = page.getByLabel("Votre question");
  await input.fill(text);
  await input.press("Enter");
  await widgetIdle(page);
}

async function widgetLog(page) {
  return page.evaluate(() => {
    const log = document.querySelector("#assistance-elections").shadowRoot.querySelector(".ae-log");
    const text = (node) => node.querySelector(".ae-text")?.textContent || node.textContent;
    return {
      user: [...log.querySelectorAll(".ae-msg-user")].map(text),
      bot: [...log.querySelectorAll(".ae-msg-bot")].map(text),
      agent: [...log.querySelectorAll(".ae-msg-agent")].map(text),
    };
  });
}

// `kind`: "user", "bot", "agent", or "any" (the desk's notices are shown like the bot's).
function widgetMessage(page, kind, text) {
  const selector = kind === "any" ? ".ae-msg" : `.ae-msg-${kind}`;
  return page.locator(`#assistance-elections ${selector}`).filter({ hasText: text }).first();
}

// ------------------------------------------------------------------ the console

async function consoleView(page) {
  return page.evaluate(() => {
    const texts = (selector) => [...document.querySelectorAll(selector)].map((n) => n.textContent.trim());
    const visible = (id) => { const n = document.getElementById(id); return Boolean(n && !n.hidden && n.offsetParent !== null); };
    return {
      who: document.getElementById("who-name").textContent,
      live: document.getElementById("live").textContent,
      queueSummary: document.getElementById("queue-summary").textContent,
      queue: [...document.querySelectorAll(".queue-open")].map((n) => ({
        text: n.textContent, current: n.getAttribute("aria-current"),
      })),
      handoffState: document.getElementById("handoff-state").textContent,
      take: visible("take"),
      release: visible("release"),
      replyEnabled: !document.getElementById("reply").disabled,
      replyValue: document.getElementById("reply").value,
      error: document.getElementById("conversation-error").textContent,
      turns: [...document.querySelectorAll("#transcript .turn")].map((n) => ({
        role: [...n.classList].find((c) => c.startsWith("turn-") && c !== "turn-head").slice(5),
        text: n.querySelector(".turn-text").textContent,
        nlu: n.querySelector(".turn-nlu")?.textContent.replace("Suggérer une réponse", "").trim() || null,
      })),
      transcriptRole: document.getElementById("transcript-log").getAttribute("role"),
      transcriptLive: document.getElementById("transcript-log").getAttribute("aria-live"),
      suggestions: [...document.querySelectorAll("#suggestions .suggestion")].map((n) => ({
        title: n.querySelector(".suggestion-title").textContent,
        detail: n.querySelector(".suggestion-detail").textContent,
        text: n.querySelector(".suggestion-text").textContent,
        buttons: [...n.querySelectorAll("button")].map((b) => b.textContent),
      })),
      copilotStatus: document.getElementById("copilot-status").textContent,
      injected: [...document.querySelectorAll("#transcript img, #queue-list img, #transcript script, [onerror]")]
        .map((n) => n.outerHTML),
      xssFlag: window.__xss === undefined ? null : String(window.__xss),
      sameDocument: window.__sameDocument === true,
      cspViolations: window.__cspViolations,
      stats: texts(".stats-table tr"),
      loginVisible: visible("login-view"),
      deskVisible: visible("desk-view"),
    };
  });
}

// ------------------------------------------------------------------ the scenario

async function scenario(browser) {
  const out = { axe: {} };
  const agent = await newPage(browser, LAPTOP);
  const console_ = agent.page;
  await console_.goto(config.url + "/console/");
  await console_.getByRole("heading", { name: "Connexion" }).waitFor();
  out.axe.login = await axe(console_);
  await console_.getByLabel("Identifiant").fill(config.login);
  await console_.getByLabel("Mot de passe").fill("pas le bon mot de passe");
  await console_.getByRole("button", { name: "Se connecter" }).click();
  const loginError = console_.locator("#login-error");
  await loginError.filter({ hasText: /./ }).waitFor();
  out.wrongPassword = await loginError.textContent();
  await console_.getByLabel("Mot de passe").fill(config.password);
  await console_.getByRole("button", { name: "Se connecter" }).click();
  await console_.locator("#live").filter({ hasText: "Mises à jour en direct" }).waitFor();
  await console_.evaluate(() => { window.__sameDocument = true; }); // gone if the page reloads
  out.afterLogin = await consoleView(console_);

  // The voter asks for a person in the widget, then writes to the agent.
  const voter = await newPage(browser, WIDGET);
  await voter.page.goto(config.url + "/");
  await voter.page.getByRole("button", { name: "Assistance élections" }).click();
  await widgetIdle(voter.page);
  await voterSays(voter.page, "je veux parler à un conseiller");
  await voterSays(voter.page, config.voterMessage);
  out.voterWaiting = await widgetLog(voter.page);

  // It appears in the console's queue by itself, through the server-sent events: well before
  // the page's periodic refresh (30 s), which would otherwise hide a broken event stream.
  const item = console_.locator(".queue-open").filter({ hasText: config.marker });
  await item.waitFor({ timeout: 10_000 });
  out.queued = await consoleView(console_);
  await item.click();
  await console_.locator("#transcript .turn-user").filter({ hasText: config.marker }).waitFor();
  out.opened = await consoleView(console_);

  await console_.getByRole("button", { name: "Prendre la main" }).click();
  await console_.locator("#handoff-state").filter({ hasText: "Vous avez la main" }).waitFor();
  await widgetMessage(voter.page, "any", "a repris la conversation").waitFor();
  out.voterTaken = await widgetLog(voter.page);

  // The copilot: a question, its suggestions, « Modifier » puts one in the reply box.
  await console_.getByLabel("Question", { exact: true }).fill("webmail Lyon");
  await console_.getByRole("button", { name: "Suggérer", exact: true }).click();
  await console_.locator("#suggestions .suggestion").first().waitFor();
  await console_.locator("#suggestions .suggestion").first()
    .getByRole("button", { name: /^Modifier/ }).click();
  out.suggested = await consoleView(console_);
  out.focusAfterEdit = await console_.evaluate(() => document.activeElement.id);

  await console_.getByLabel("Votre réponse à l'usager").fill(config.agentReply);
  await console_.getByRole("button", { name: "Envoyer", exact: true }).click();
  await console_.locator("#transcript .turn-agent").filter({ hasText: config.agentReply }).waitFor();
  out.replied = await consoleView(console_);
  // The voter's widget shows it (it polls while an agent answers).
  await widgetMessage(voter.page, "agent", config.agentReply).waitFor();
  out.voterReplied = await widgetLog(voter.page);

  out.axe.conversation = await axe(console_);
  await console_.mouse.move(0, 0); // no hover colour on the screenshot
  const screenshot = join(config.artifacts, "console.png");
  await console_.screenshot({ path: screenshot });
  if (config.docs) copyFileSync(screenshot, config.docs);
  out.screenshot = screenshot;

  await console_.getByRole("button", { name: "Rendre au bot" }).click();
  await console_.locator("#handoff-state").filter({ hasText: "pas de demande ouverte" }).waitFor();
  out.released = await consoleView(console_);
  await widgetMessage(voter.page, "any", "Le conseiller a terminé").waitFor();
  await voterSays(voter.page, config.botQuestion);
  out.voterAfter = await widgetLog(voter.page);

  await console_.getByRole("button", { name: "Statistiques" }).click();
  await console_.locator(".stats-table").waitFor();
  await console_.waitForFunction(() => document.getElementById("plot-daily").complete
    && document.getElementById("plot-daily").naturalWidth > 0);
  out.axe.stats = await axe(console_);
  out.stats = await consoleView(console_);
  out.plotWidth = await console_.evaluate(() => document.getElementById("plot-daily").naturalWidth);

  await console_.getByRole("button", { name: "Se déconnecter" }).click();
  await console_.getByRole("heading", { name: "Connexion" }).waitFor();
  out.loggedOut = await consoleView(console_);
  out.seen = { agent: agent.seen, voter: voter.seen };
  return out;
}

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let code = 0;
try {
  emit({ result: await scenario(browser) });
} catch (error) {
  code = 1;
  const saved = [];
  for (const [index, page] of pages.entries()) {
    const path = join(config.artifacts, `console-failure-${index}.png`);
    if (await page.screenshot({ path }).then(() => true, () => false)) saved.push(path);
  }
  emit({ error: String((error && error.stack) || error), screenshots: saved });
} finally {
  await browser.close();
}
process.exit(code);
