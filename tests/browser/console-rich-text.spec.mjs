// Drives Debian's Chromium (playwright-core) through the agents' console on a gateway started by
// tests/test_console_rich_text_browser.py (no Rasa: a fake NLU), and prints what the page
// showed of the assistant's Markdown, of a voter's hostile message, and of « Modifier ».
// The assertions live in the Python test.
//
//   node console-rich-text.spec.mjs '{"url": "http://127.0.0.1:8080", "login": "...", ...}'
//
// The last line on stdout is {"result": {...}} or {"error": "..."}.
import { createRequire } from "node:module";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const TIMEOUT_MS = 30_000;

const config = JSON.parse(process.argv[2]);
mkdirSync(config.artifacts, { recursive: true });
function emit(message) { process.stdout.write(JSON.stringify(message) + "\n"); }

async function axe(page) {
  const ready = await page.evaluate(() => typeof window.axe !== "undefined");
  if (!ready) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async (tags) => {
    const results = await window.axe.run(document, { runOnly: { type: "tag", values: tags } });
    return results.violations.map((v) => ({
      id: v.id, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
    }));
  }, WCAG_TAGS);
}

// What a rendered text is made of: its elements (tag names), bold parts, links, list items.
async function seen(page) {
  return page.evaluate(() => {
    const describe = (node) => node && {
      text: node.textContent,
      tags: [...node.querySelectorAll("*")].map((n) => n.tagName.toLowerCase()),
      strong: [...node.querySelectorAll("strong")].map((n) => n.textContent),
      items: [...node.querySelectorAll("li")].map((n) => `${n.parentElement.tagName.toLowerCase()}:${n.textContent}`),
      paragraphs: node.querySelectorAll("p").length,
      links: [...node.querySelectorAll("a")].map((a) => ({
        text: a.textContent, href: a.getAttribute("href"), target: a.target, rel: a.rel,
      })),
    };
    const turns = [...document.querySelectorAll("#transcript .turn")].map((n) => ({
      role: [...n.classList].find((c) => c.startsWith("turn-")).slice(5),
      time: n.querySelector(".turn-time").textContent,
      nlu: n.querySelector(".turn-nlu")?.textContent.replace("Suggérer une réponse", "").trim() || null,
      body: describe(n.querySelector(".turn-text")),
    }));
    return {
      meta: document.getElementById("conversation-meta").textContent,
      queue: [...document.querySelectorAll(".queue-open")].map((n) => n.textContent),
      turns,
      suggestions: [...document.querySelectorAll("#suggestions .suggestion, #lookups .suggestion")]
        .map((n) => ({
          title: n.querySelector(".suggestion-title").textContent,
          body: describe(n.querySelector(".suggestion-text")),
        })),
      replyValue: document.getElementById("reply").value,
      injected: [...document.querySelectorAll("#desk-view img, #desk-view script, [onerror], iframe, object")]
        .map((n) => n.outerHTML),
      scriptLinks: [...document.querySelectorAll("#desk-view a")].map((a) => a.getAttribute("href") || "")
        .filter((href) => !/^(https?|mailto):/i.test(href)),
      xssFlag: window.__xss === undefined ? null : String(window.__xss),
      cspViolations: window.__cspViolations,
    };
  });
}

async function scenario(browser) {
  const out = { dialogs: [], pageErrors: [] };
  const context = await browser.newContext({
    viewport: { width: 1366, height: 900 }, locale: "fr-FR", reducedMotion: "reduce",
  });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on("dialog", (dialog) => { out.dialogs.push(dialog.message()); dialog.dismiss(); });
  page.on("pageerror", (error) => out.pageErrors.push(String(error)));
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });

  await page.goto(config.url + "/console/");
  await page.getByLabel("Identifiant").fill(config.login);
  await page.getByLabel("Mot de passe").fill(config.password);
  await page.getByRole("button", { name: "Se connecter" }).click();
  const item = page.locator(".queue-open").first();
  await item.waitFor();
  await item.click();
  await page.locator("#transcript .turn-agent").waitFor();
  // Opening a conversation asks the copilot about the last user message: wait for its cards.
  await page.locator("#lookups .suggestion").first().waitFor();
  out.opened = await seen(page);
  out.axe = await axe(page);

  await page.locator("#lookups .suggestion").first().getByRole("button", { name: /^Modifier/ }).click();
  out.edited = await seen(page);
  out.focus = await page.evaluate(() => document.activeElement.id);
  await page.mouse.move(0, 0);
  out.screenshot = join(config.artifacts, "console-rich-text.png");
  await page.screenshot({ path: out.screenshot, fullPage: true });
  const answer = page.locator("#transcript .turn-bot").filter({ hasText: "Lyon" }).first();
  await answer.scrollIntoViewIfNeeded();
  await answer.screenshot({ path: join(config.artifacts, "console-rich-text-answer.png") });
  await context.close();
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
  emit({ error: String((error && error.stack) || error) });
} finally {
  await browser.close();
}
process.exit(code);
