/*
 * Assistance élections : le widget de discussion, à intégrer sur n'importe quelle page avec
 * une seule balise :
 *
 *   <script src="https://passerelle.example/static/widget.js" defer></script>
 *
 * Il parle à la passerelle d'où il a été chargé (origine déduite de l'adresse du script) ;
 * une page d'une autre origine doit figurer dans GATEWAY_ALLOWED_ORIGINS.
 * Options (attributs de la balise) : data-open="true" ouvre la fenêtre au chargement.
 *
 * Sécurité : aucun innerHTML. Tout texte (bot ou utilisateur) devient des nœuds texte ; le
 * sous-ensemble Markdown (**gras**, puces « - », sauts de ligne, liens http/https) est
 * construit avec l'API DOM.
 */
(function () {
  "use strict";

  if (window.AssistanceElections) return; // script inclus deux fois : un seul widget

  const script = document.currentScript ||
    document.querySelector('script[src*="/static/widget.js"]');
  if (!script || !script.src) return;

  // La passerelle : le dossier parent de /static/, pour fonctionner aussi derrière un préfixe.
  const GATEWAY = new URL("../", script.src);
  const url = function (path) { return new URL(path, GATEWAY).href; };

  const MAX = 2000; // MAX_MESSAGE_CHARS de bot/gateway/relay.py (vérifié par les tests)
  const REQUEST_TIMEOUT_MS = 30000;
  const HEALTH_TIMEOUT_MS = 5000;
  const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
  const OPEN_KEY = "assistance-elections:ouvert";
  // Pendant une prise en charge par un conseiller, ses réponses arrivent par l'historique.
  const POLL_MS = 3000;

  const T = {
    name: "Assistance élections",
    subtitle: "Assistant automatique des élections professionnelles",
    open: "Assistance élections",
    close: "Fermer l'assistance",
    clear: "Effacer",
    clearLabel: "Effacer la conversation",
    clearQuestion: "Effacer cette conversation ?",
    clearExplain: "Elle disparaîtra de cet écran et l'assistant oubliera ce que vous avez " +
      "saisi (NUMEN, date de naissance…). Conseillé sur un ordinateur partagé.",
    clearYes: "Oui, effacer",
    clearNo: "Annuler",
    cleared: "Conversation effacée. Vous pouvez poser une nouvelle question.",
    logLabel: "Conversation avec l'assistant",
    inputLabel: "Votre question",
    send: "Envoyer",
    keysHint: "Entrée pour envoyer, Maj + Entrée pour aller à la ligne. ",
    hint: "Ne donnez jamais votre mot de passe.",
    counter: function (n) { return n + " / " + MAX + " caractères"; },
    you: "Vous : ",
    bot: "Assistant : ",
    agent: "Conseiller : ",
    agentLabel: "Conseiller",
    waiting: "En attente d'un conseiller : il vous répondra ici. Vous pouvez déjà écrire.",
    withAgent: "Vous échangez avec un conseiller.",
    newTab: " (nouvel onglet)",
    typing: "L'assistant écrit…",
    choices: "Réponses proposées",
    welcome: "Bonjour ! Je réponds à vos questions sur les élections professionnelles : " +
      "mot de passe électeur, identifiant perdu, messagerie de votre académie, scrutins, " +
      "dates du vote.",
    suggestions: ["Mot de passe oublié", "Identifiant électeur perdu",
      "Messagerie de mon académie", "Dates du vote"],
    offline: "Le service d'assistance est injoignable. Vérifiez votre connexion.",
    offlineKept: "Votre message n'a pas été envoyé : il reste dans la zone de saisie.",
    offlineRetry: "Nouvelle tentative automatique dans quelques secondes.",
    offlineStill: "Toujours injoignable. Nouvelle tentative automatique dans quelques secondes.",
    retry: "Réessayer maintenant",
    timeout: "Le service met trop de temps à répondre.",
    back: "Connexion rétablie.",
    backResend: "Connexion rétablie : vous pouvez renvoyer votre message.",
    generic: "Une erreur est survenue. Veuillez réessayer dans un instant.",
  };

  // Valeurs masquées par la passerelle (bot/personal_data/redaction.py) -> texte lisible.
  const MASKED = [
    [/NUMEN_MASQUE/g, "[NUMEN masqué]"],
    [/TELEPHONE_MASQUE/g, "[téléphone masqué]"],
    [/DATE_MASQUEE/g, "[date masquée]"],
    [/adresse_masquee(?=@)/g, "[adresse masquée]"],
  ];

  // URL http(s) complète, ou nom d'hôte nu (ex. webmail.ac-lyon.fr) d'un domaine courant.
  const LINK_SRC = "(https?:\\/\\/[^\\s<>\"']+)|((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\\.)+" +
    "(?:fr|com|org|net|eu|info|io|education)(?::\\d+)?(?:\\/[^\\s<>\"']*)?)(?![\\w@-])";

  // ---------------------------------------------------------------- construction du DOM

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function icon(paths, className) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", className);
    paths.forEach(function (d) {
      const path = document.createElementNS(NS, "path");
      path.setAttribute("d", d);
      svg.appendChild(path);
    });
    return svg;
  }

  // Un élément à nous (pas un <div>) : les règles de la page hôte ne le visent pas.
  const host = el("assistance-elections");
  host.id = "assistance-elections";
  host.setAttribute("lang", "fr");
  host.style.display = "none"; // montré quand sa feuille de style est chargée
  const root = host.attachShadow({ mode: "open" });

  const stylesheet = el("link");
  stylesheet.rel = "stylesheet";
  stylesheet.href = url("static/widget.css");
  const reveal = function () { host.style.display = ""; };
  stylesheet.addEventListener("load", reveal);
  stylesheet.addEventListener("error", reveal);
  root.appendChild(stylesheet);

  const frame = root.appendChild(el("div", "ae"));

  const launcher = frame.appendChild(el("button", "ae-launcher"));
  launcher.type = "button";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "ae-panel");
  launcher.appendChild(icon([
    "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
  ], "ae-icon"));
  launcher.appendChild(el("span", "ae-launcher-text", T.open));

  const panel = frame.appendChild(el("div", "ae-panel"));
  panel.id = "ae-panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-labelledby", "ae-title");
  panel.setAttribute("aria-describedby", "ae-subtitle");

  const header = panel.appendChild(el("div", "ae-header"));
  const heading = header.appendChild(el("div", "ae-heading"));
  heading.appendChild(el("h2", "ae-title", T.name)).id = "ae-title";
  heading.appendChild(el("p", "ae-subtitle", T.subtitle)).id = "ae-subtitle";
  const clearBtn = header.appendChild(el("button", "ae-clear"));
  clearBtn.type = "button";
  clearBtn.setAttribute("aria-label", T.clearLabel); // le nom contient le texte visible
  clearBtn.setAttribute("aria-controls", "ae-confirm");
  clearBtn.setAttribute("aria-expanded", "false");
  clearBtn.appendChild(icon(["M5 7h14M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3"],
    "ae-icon ae-icon-stroke"));
  clearBtn.appendChild(el("span", "ae-clear-text", T.clear));
  const closeBtn = header.appendChild(el("button", "ae-close"));
  closeBtn.type = "button";
  closeBtn.setAttribute("aria-label", T.close);
  closeBtn.appendChild(icon(["M6 6l12 12M18 6L6 18"], "ae-icon ae-icon-stroke"));

  // Confirmation de l'effacement (ordinateur partagé) : une question, deux vrais boutons.
  const confirmBox = panel.appendChild(el("div", "ae-confirm"));
  confirmBox.id = "ae-confirm";
  confirmBox.hidden = true;
  confirmBox.setAttribute("role", "alertdialog");
  confirmBox.setAttribute("aria-labelledby", "ae-confirm-title");
  confirmBox.setAttribute("aria-describedby", "ae-confirm-text");
  confirmBox.appendChild(el("p", "ae-confirm-title", T.clearQuestion)).id = "ae-confirm-title";
  confirmBox.appendChild(el("p", "ae-confirm-text", T.clearExplain)).id = "ae-confirm-text";
  const confirmRow = confirmBox.appendChild(el("div", "ae-confirm-row"));
  const clearYes = confirmRow.appendChild(el("button", "ae-confirm-yes", T.clearYes));
  clearYes.type = "button";
  const clearNo = confirmRow.appendChild(el("button", "ae-confirm-no", T.clearNo));
  clearNo.type = "button";

  const bannerSlot = panel.appendChild(el("div", "ae-banner-slot"));
  const handoffStatus = panel.appendChild(el("p", "ae-handoff"));
  handoffStatus.setAttribute("role", "status");
  handoffStatus.hidden = true;

  const log = panel.appendChild(el("div", "ae-log"));
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-relevant", "additions");
  log.setAttribute("aria-label", T.logLabel);
  log.tabIndex = 0; // zone défilante : atteignable au clavier

  const form = panel.appendChild(el("form", "ae-composer"));
  form.noValidate = true;
  const label = form.appendChild(el("label", "ae-label", T.inputLabel));
  label.htmlFor = "ae-input";
  const row = form.appendChild(el("div", "ae-row"));
  const input = row.appendChild(el("textarea", "ae-input"));
  input.id = "ae-input";
  input.rows = 1;
  input.maxLength = MAX;
  input.autocomplete = "off";
  input.setAttribute("aria-describedby", "ae-hint ae-counter");
  const sendBtn = row.appendChild(el("button", "ae-send", T.send));
  sendBtn.type = "submit";
  const meta = form.appendChild(el("p", "ae-meta"));
  const hint = meta.appendChild(el("span", "ae-hint"));
  hint.id = "ae-hint";
  // Les touches n'ont pas de sens sur un écran tactile : widget.css les y masque.
  hint.appendChild(el("span", "ae-keys", T.keysHint));
  hint.appendChild(document.createTextNode(T.hint));
  const counter = meta.appendChild(el("span", "ae-counter"));
  counter.id = "ae-counter";

  // ---------------------------------------------------------------- texte sûr

  function safeHref(candidate) {
    try {
      const link = new URL(candidate);
      return link.protocol === "http:" || link.protocol === "https:" ? link.href : null;
    } catch (e) { return null; }
  }

  // Texte -> nœuds texte et liens <a>, sans jamais interpréter de HTML.
  function appendLinks(parent, text) {
    const re = new RegExp(LINK_SRC, "gi");
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      const start = m.index;
      // Un nom d'hôte collé à un mot, un @ (adresse e-mail) ou un chemin n'est pas un lien.
      if (m[2] && start > 0 && /[\w@.\/-]/.test(text.charAt(start - 1))) continue;
      let raw = m[0];
      const trail = /[.,;:!?)\]]+$/.exec(raw);
      if (trail) raw = raw.slice(0, raw.length - trail[0].length);
      const href = safeHref(m[1] ? raw : "https://" + raw);
      if (!href) continue;
      if (start > last) parent.appendChild(document.createTextNode(text.slice(last, start)));
      const a = el("a", "ae-link", raw);
      a.href = href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.appendChild(el("span", "ae-sr", T.newTab));
      parent.appendChild(a);
      last = start + raw.length;
      re.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  // **gras**, puis liens.
  function appendInline(parent, text) {
    const re = /\*\*(.+?)\*\*/g;
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) appendLinks(parent, text.slice(last, m.index));
      appendLinks(parent.appendChild(el("strong")), m[1]);
      last = re.lastIndex;
    }
    if (last < text.length) appendLinks(parent, text.slice(last));
  }

  // Paragraphes, sauts de ligne et listes à puces (« - » ou « • »).
  function formatBotText(container, text) {
    const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
    let list = null;
    let para = null;
    lines.forEach(function (line) {
      const bullet = /^\s*[-•]\s+(.*)$/.exec(line);
      if (bullet) {
        para = null;
        if (!list) list = container.appendChild(el("ul"));
        appendInline(list.appendChild(el("li")), bullet[1]);
        return;
      }
      list = null;
      if (!line.trim()) { para = null; return; }
      if (para) para.appendChild(el("br"));
      else para = container.appendChild(el("p"));
      appendInline(para, line);
    });
  }

  // Texte de l'utilisateur : tel quel, les valeurs masquées par la passerelle mises en évidence.
  function formatUserText(container, text) {
    let marked = String(text);
    MASKED.forEach(function (pair) { marked = marked.replace(pair[0], "\u0000" + pair[1] + "\u0000"); });
    marked.split("\u0000").forEach(function (part, i) {
      if (!part) return;
      if (i % 2) container.appendChild(el("span", "ae-masked", part));
      else container.appendChild(document.createTextNode(part));
    });
  }

  // ---------------------------------------------------------------- messages

  let pending = false;
  let typingEl = null;

  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  // Qui lit la fin de la conversation y reste quand la fenêtre change de taille.
  let stickToEnd = true;
  log.addEventListener("scroll", function () {
    stickToEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  });
  if (window.ResizeObserver) {
    new ResizeObserver(function () { if (stickToEnd) scrollToEnd(); }).observe(log);
  }

  function append(node) {
    if (typingEl && typingEl.parentNode === log) log.insertBefore(node, typingEl);
    else log.appendChild(node);
    scrollToEnd();
    return node;
  }

  function choiceButton(title, onChoose) {
    const btn = el("button", "ae-choice", title);
    btn.type = "button";
    btn.addEventListener("click", function () {
      if (btn.getAttribute("aria-disabled") !== "true") onChoose();
    });
    return btn;
  }

  function addMessage(sender, text, buttons, extraClass) {
    const item = el("div", "ae-msg ae-msg-" + sender + (extraClass ? " " + extraClass : ""));
    item.appendChild(el("span", "ae-sr", sender === "user" ? T.you :
      sender === "agent" ? T.agent : T.bot));
    if (sender === "agent") item.appendChild(el("span", "ae-from", T.agentLabel)).setAttribute("aria-hidden", "true");
    if (typeof text === "string" && text !== "") {
      const body = item.appendChild(el("div", "ae-text"));
      if (sender === "user") formatUserText(body, text);
      else formatBotText(body, text);
    }
    if (Array.isArray(buttons) && buttons.length) {
      const group = el("div", "ae-choices");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", T.choices);
      buttons.forEach(function (b) {
        if (!b || typeof b.payload !== "string" || !b.payload) return;
        const title = typeof b.title === "string" && b.title ? b.title : b.payload;
        group.appendChild(choiceButton(title, function () { send(b.payload, title, false); }));
      });
      if (group.childNodes.length) item.appendChild(group);
    }
    if (!item.querySelector(".ae-text, .ae-choices")) return null; // message vide
    return append(item);
  }

  function addNotice(text) {
    return append(el("div", "ae-msg ae-msg-system", text));
  }

  function addWelcome() {
    const item = addMessage("bot", T.welcome, null, "ae-welcome");
    const group = item.appendChild(el("div", "ae-choices"));
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", T.choices);
    T.suggestions.forEach(function (text) {
      group.appendChild(choiceButton(text, function () { send(text, text, false); }));
    });
  }

  function setPending(value) {
    pending = value;
    log.setAttribute("aria-busy", value ? "true" : "false");
    sendBtn.setAttribute("aria-disabled", value ? "true" : "false");
    root.querySelectorAll(".ae-choice").forEach(function (b) {
      b.setAttribute("aria-disabled", value ? "true" : "false");
    });
    if (value) {
      typingEl = el("div", "ae-typing");
      typingEl.setAttribute("aria-hidden", "true"); // l'attente est signalée par aria-busy
      typingEl.appendChild(el("span", "ae-dots"));
      typingEl.appendChild(document.createTextNode(T.typing));
      log.appendChild(typingEl);
      scrollToEnd();
    } else if (typingEl) {
      typingEl.remove();
      typingEl = null;
    }
  }

  function updateCounter() {
    const length = input.value.length;
    counter.textContent = T.counter(length);
    counter.classList.toggle("ae-counter-near", length >= MAX - 100);
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 160) + "px";
  }

  // ---------------------------------------------------------------- réseau

  async function request(path, options, timeoutMs) {
    const controller = new AbortController();
    const timer = setTimeout(function () { controller.abort(); }, timeoutMs);
    try {
      return await fetch(url(path), Object.assign({ signal: controller.signal }, options));
    } finally {
      clearTimeout(timer);
    }
  }

  async function readJson(response) {
    try { return await response.json(); } catch (e) { return null; }
  }

  // ---------------------------------------------------------------- hors ligne

  let offline = false;
  let retryTimer = null;
  let retryIndex = 0;
  let banner = null;
  let reloadHistoryWhenBack = false;

  function showOffline(detail, kept) {
    if (!banner) {
      banner = el("div", "ae-banner");
      banner.setAttribute("role", "alert");
      banner.appendChild(icon(["M12 3l10 18H2z", "M12 10v5", "M12 17.5v.5"], "ae-icon ae-icon-stroke"));
      const body = banner.appendChild(el("div", "ae-banner-body"));
      body.appendChild(el("p", "ae-banner-title"));
      body.appendChild(el("p", "ae-banner-kept"));
      body.appendChild(el("p", "ae-banner-next"));
      const retry = body.appendChild(el("button", "ae-retry", T.retry));
      retry.type = "button";
      retry.addEventListener("click", function () { checkHealth(true); });
      bannerSlot.appendChild(banner);
    }
    banner.querySelector(".ae-banner-title").textContent = detail || T.offline;
    banner.querySelector(".ae-banner-kept").textContent = kept ? T.offlineKept : "";
    banner.querySelector(".ae-banner-next").textContent = T.offlineRetry;
    if (!offline) {
      offline = true;
      retryIndex = 0;
      scheduleHealthCheck();
    }
  }

  function scheduleHealthCheck() {
    clearTimeout(retryTimer);
    const delay = RETRY_DELAYS_MS[Math.min(retryIndex, RETRY_DELAYS_MS.length - 1)];
    retryIndex += 1;
    retryTimer = setTimeout(function () { checkHealth(false); }, delay);
  }

  async function checkHealth(byUser) {
    if (!offline) return;
    let reachable = false;
    try {
      const response = await request("health", { credentials: "omit", cache: "no-store" },
        HEALTH_TIMEOUT_MS);
      reachable = response.ok;
    } catch (e) { reachable = false; }
    if (!offline) return;
    if (!reachable) {
      if (byUser) {
        banner.querySelector(".ae-banner-next").textContent = T.offlineStill;
        retryIndex = 0;
      }
      scheduleHealthCheck();
      return;
    }
    backOnline();
  }

  function backOnline() {
    offline = false;
    clearTimeout(retryTimer);
    const hadFocus = banner && banner.contains(root.activeElement);
    if (banner) { banner.remove(); banner = null; }
    addNotice(input.value.trim() ? T.backResend : T.back);
    if (hadFocus) input.focus();
    if (reloadHistoryWhenBack) loadHistory();
  }

  window.addEventListener("online", function () { checkHealth(false); });

  // ---------------------------------------------------------------- échanges

  async function send(message, display, fromInput) {
    if (pending || !message.trim()) return;
    const typed = input.value;
    const bubble = addMessage("user", display);
    if (fromInput) { input.value = ""; updateCounter(); }
    setPending(true);
    let response = null;
    let failure = null;
    try {
      response = await request("api/chat", {
        method: "POST",
        credentials: "include",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ message: message }),
      }, REQUEST_TIMEOUT_MS);
    } catch (e) {
      failure = e && e.name === "AbortError" ? T.timeout : T.offline;
    }
    const data = response ? await readJson(response) : null;
    setPending(false);
    if (response && response.ok && data && Array.isArray(data.messages)) {
      if (offline) backOnline();
      data.messages.forEach(function (m) { if (m) addMessage("bot", m.text, m.buttons); });
      followState(data);
    } else {
      // Le message n'a pas été traité : on le retire et on rend le texte à l'utilisateur.
      if (bubble) bubble.remove();
      if (fromInput && !input.value) { input.value = typed; updateCounter(); }
      if (failure) {
        showOffline(failure, fromInput && input.value === typed);
      } else {
        if (offline) backOnline();
        const explained = data && typeof data.error === "string" && data.error;
        addMessage("bot", explained || T.generic, null, "ae-msg-error");
      }
    }
    // Le focus reste où il est (bouton cliqué, lien…), sauf s'il s'est perdu.
    const lost = !root.activeElement &&
      (!document.activeElement || document.activeElement === document.body);
    if (lost && !panel.hidden) input.focus();
  }

  async function loadHistory() {
    reloadHistoryWhenBack = false;
    setPending(true);
    let data = null;
    let failed = false;
    try {
      const response = await request("api/history", {
        credentials: "include",
        headers: { "Accept": "application/json" },
      }, REQUEST_TIMEOUT_MS);
      data = await readJson(response);
      if (!response.ok) {
        failed = true;
        if (data && typeof data.error === "string") addNotice(data.error);
      }
    } catch (e) {
      failed = true;
      reloadHistoryWhenBack = true;
    }
    setPending(false);
    if (reloadHistoryWhenBack) { showOffline(T.offline, false); return; }
    if (failed) return;
    if (data && Array.isArray(data.messages)) {
      data.messages.forEach(function (m) { if (m) showStored(m); });
      followState(data);
    }
    scrollToEnd();
  }

  function showStored(m) {
    if (m.sender === "user") addMessage("user", m.text);
    else if (m.sender === "agent") addMessage("agent", m.text);
    else addMessage("bot", m.text, m.buttons);
  }

  // ---------------------------------------------------------------- conseiller

  let lastTurn = 0;
  let state = "bot";
  let pollTimer = null;

  // Réponse de /api/chat ou /api/history : état de la conversation et dernier message connu.
  function followState(data) {
    if (typeof data.last === "number" && data.last > lastTurn) lastTurn = data.last;
    if (typeof data.state === "string") state = data.state;
    const paused = state === "waiting" || state === "agent";
    const status = state === "agent" ? T.withAgent : state === "waiting" ? T.waiting : "";
    if (handoffStatus.textContent !== status) handoffStatus.textContent = status;
    handoffStatus.hidden = !paused;
    if (paused && pollTimer === null) pollTimer = window.setTimeout(poll, POLL_MS);
  }

  async function poll() {
    pollTimer = null;
    let data = null;
    try {
      const response = await request("api/history?after=" + lastTurn, {
        credentials: "include",
        headers: { "Accept": "application/json" },
      }, REQUEST_TIMEOUT_MS);
      data = response.ok ? await readJson(response) : null;
    } catch (e) { data = null; }
    if (data && Array.isArray(data.messages)) {
      // Les messages de l'utilisateur sont déjà affichés (envoyés depuis cette page ou
      // rechargés avec l'historique).
      data.messages.forEach(function (m) {
        if (m && m.sender !== "user" && (typeof m.id !== "number" || m.id > lastTurn)) {
          showStored(m);
        }
      });
      followState(data);
    }
    if ((state === "waiting" || state === "agent") && pollTimer === null) {
      pollTimer = window.setTimeout(poll, POLL_MS);
    }
  }

  // ---------------------------------------------------------------- effacer (ordinateur partagé)

  function askToClear() {
    confirmBox.hidden = false;
    clearBtn.setAttribute("aria-expanded", "true");
    clearNo.focus(); // le choix sans conséquence d'abord
  }

  function cancelClear() {
    confirmBox.hidden = true;
    clearBtn.setAttribute("aria-expanded", "false");
    clearBtn.focus();
  }

  // La passerelle termine la conversation, oublie les valeurs saisies et le cookie ; la page
  // oublie ce qu'elle affichait.
  async function clearConversation() {
    if (pending) return;
    setPending(true);
    let response = null;
    try {
      response = await request("api/forget", {
        method: "POST",
        credentials: "include",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: "{}",
      }, REQUEST_TIMEOUT_MS);
    } catch (e) { response = null; }
    const data = response ? await readJson(response) : null;
    setPending(false);
    confirmBox.hidden = true;
    clearBtn.setAttribute("aria-expanded", "false");
    if (!response) { showOffline(T.offline, false); clearBtn.focus(); return; }
    if (!response.ok) {
      addNotice(data && typeof data.error === "string" ? data.error : T.generic);
      clearBtn.focus();
      return;
    }
    if (pollTimer !== null) { window.clearTimeout(pollTimer); pollTimer = null; }
    lastTurn = 0;
    log.replaceChildren();
    input.value = "";
    updateCounter();
    followState({ state: "bot" });
    addWelcome();
    addNotice(T.cleared);
    input.focus();
  }

  clearBtn.addEventListener("click", function () {
    if (confirmBox.hidden) askToClear();
    else cancelClear();
  });
  clearNo.addEventListener("click", cancelClear);
  clearYes.addEventListener("click", clearConversation);

  // ---------------------------------------------------------------- ouverture et clavier

  function remember(open) {
    try { window.sessionStorage.setItem(OPEN_KEY, open ? "1" : "0"); } catch (e) { /* bloqué */ }
  }

  function wasOpen() {
    try { return window.sessionStorage.getItem(OPEN_KEY) === "1"; } catch (e) { return false; }
  }

  let started = false;

  function openPanel(moveFocus) {
    panel.hidden = false;
    frame.classList.add("ae-open");
    launcher.setAttribute("aria-expanded", "true");
    remember(true);
    if (!started) {
      started = true;
      addWelcome();
      loadHistory();
    }
    scrollToEnd();
    if (moveFocus) input.focus();
  }

  function closePanel() {
    panel.hidden = true;
    frame.classList.remove("ae-open");
    launcher.setAttribute("aria-expanded", "false");
    remember(false);
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) openPanel(true);
    else closePanel();
  });
  closeBtn.addEventListener("click", closePanel);
  frame.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && !confirmBox.hidden) {
      e.preventDefault();
      cancelClear(); // Échap referme d'abord la question
    } else if (e.key === "Escape" && !panel.hidden) {
      e.preventDefault();
      closePanel();
    }
  });

  function submitInput() {
    const text = input.value.trim();
    if (!text || pending) { input.focus(); return; }
    send(text, text, true);
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); submitInput(); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submitInput();
    }
  });
  input.addEventListener("input", updateCounter);

  function mount() {
    document.body.appendChild(host);
    updateCounter();
    if (script.dataset.open === "true" || wasOpen()) openPanel(false);
  }

  window.AssistanceElections = {
    open: function () { openPanel(true); },
    close: closePanel,
  };

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
