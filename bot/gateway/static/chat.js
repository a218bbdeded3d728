/* Assistant élections professionnelles : client de discussion (vanilla JS, sans innerHTML). */
(function () {
  "use strict";

  const MAX = 2000;
  const NET_ERROR = "Le service ne répond pas. Vérifiez votre connexion ou réessayez dans un instant.";
  const GENERIC_ERROR = "Une erreur est survenue. Veuillez réessayer.";
  // URL http(s) complète, ou nom d'hôte nu (ex. webmail.ac-lyon.fr) avec un domaine de premier niveau courant.
  const LINK_SRC = "(https?:\\/\\/[^\\s<>\"']+)|((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\\.)+" +
    "(?:fr|com|org|net|eu|info|io|education)(?::\\d+)?(?:\\/[^\\s<>\"']*)?)(?![\\w@-])";

  const log = document.getElementById("messages");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("message");
  const sendBtn = document.getElementById("send");
  const counter = document.getElementById("counter");
  const payloadTitles = new Map(); // payload -> titre, pour réafficher l'historique lisiblement
  let pending = false;
  let typingEl = null;

  function el(tag, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  function safeHref(candidate) {
    try {
      const url = new URL(candidate);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) { return null; }
  }

  // Texte -> nœuds texte + liens <a>, sans jamais interpréter de HTML.
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
      const a = el("a");
      a.href = href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = raw;
      const hint = el("span", "sr-only");
      hint.textContent = " (nouvel onglet)";
      a.appendChild(hint);
      parent.appendChild(a);
      last = start + raw.length;
      re.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  // **gras** puis liens.
  function appendInline(parent, text) {
    const re = /\*\*(.+?)\*\*/g;
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) appendLinks(parent, text.slice(last, m.index));
      const strong = el("strong");
      appendLinks(strong, m[1]);
      parent.appendChild(strong);
      last = re.lastIndex;
    }
    if (last < text.length) appendLinks(parent, text.slice(last));
  }

  // Paragraphes, sauts de ligne et listes à puces (« - »).
  function formatText(container, text) {
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

  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  function append(node) {
    if (typingEl && typingEl.parentNode === log) log.insertBefore(node, typingEl);
    else log.appendChild(node);
    scrollToEnd();
    return node;
  }

  function addMessage(sender, text, buttons) {
    const item = el("div", "msg msg-" + sender);
    const who = el("span", "sr-only");
    who.textContent = sender === "user" ? "Vous : " : "Assistant : ";
    item.appendChild(who);
    if (typeof text === "string" && text !== "") {
      const body = el("div", "msg-text");
      if (sender === "bot") formatText(body, text);
      else body.textContent = text;
      item.appendChild(body);
    }
    if (Array.isArray(buttons) && buttons.length) {
      const group = el("div", "msg-buttons");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Choix proposés");
      buttons.forEach(function (b) {
        if (!b || typeof b.payload !== "string" || !b.payload) return;
        const title = typeof b.title === "string" && b.title ? b.title : b.payload;
        payloadTitles.set(b.payload, title);
        const btn = el("button", "choice");
        btn.type = "button";
        btn.textContent = title;
        btn.disabled = pending;
        btn.addEventListener("click", function () { send(b.payload, title, false); });
        group.appendChild(btn);
      });
      if (group.childNodes.length) item.appendChild(group);
    }
    if (item.childNodes.length < 2) return null; // message vide : rien à afficher
    return append(item);
  }

  function addNotice(text) {
    const item = el("div", "msg msg-system");
    item.textContent = text;
    return append(item);
  }

  function setPending(value) {
    pending = value;
    sendBtn.disabled = value;
    form.setAttribute("aria-busy", value ? "true" : "false");
    log.querySelectorAll("button.choice").forEach(function (b) { b.disabled = value; });
  }

  function showTyping() {
    typingEl = el("div", "msg msg-bot typing");
    typingEl.textContent = "L'assistant écrit…";
    log.appendChild(typingEl);
    scrollToEnd();
  }

  function hideTyping() {
    if (typingEl) { typingEl.remove(); typingEl = null; }
  }

  function updateCounter() {
    const len = input.value.length;
    counter.textContent = len + " / " + MAX + " caractères";
    counter.classList.toggle("counter-near", len >= MAX - 100);
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }

  async function readJson(res) {
    try { return await res.json(); } catch (e) { return null; }
  }

  async function send(message, display, fromInput) {
    if (pending || !message.trim()) return;
    const original = input.value;
    setPending(true);
    const bubble = addMessage("user", display);
    if (fromInput) { input.value = ""; updateCounter(); }
    showTyping();
    let res;
    try {
      res = await fetch("/api/chat", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ message: message }),
      });
    } catch (e) {
      // Le message n'est pas parti : on le retire et on rend le texte à l'utilisateur.
      hideTyping();
      if (bubble) bubble.remove();
      if (fromInput && !input.value) { input.value = original; updateCounter(); }
      addNotice(NET_ERROR);
      setPending(false);
      input.focus();
      return;
    }
    const data = await readJson(res);
    hideTyping();
    if (res.ok && data && Array.isArray(data.messages)) {
      data.messages.forEach(function (m) { if (m) addMessage("bot", m.text, m.buttons); });
    } else {
      addNotice(data && typeof data.error === "string" && data.error ? data.error : GENERIC_ERROR);
    }
    setPending(false);
    input.focus();
  }

  async function loadHistory() {
    setPending(true);
    log.setAttribute("aria-busy", "true");
    try {
      const res = await fetch("/api/history", { credentials: "same-origin", headers: { "Accept": "application/json" } });
      const data = await readJson(res);
      if (!res.ok) {
        if (data && typeof data.error === "string" && data.error) addNotice(data.error);
      } else if (data && Array.isArray(data.messages)) {
        data.messages.forEach(function (m) {
          if (!m) return;
          if (m.sender === "user") addMessage("user", payloadTitles.get(m.text) || m.text);
          else addMessage("bot", m.text, m.buttons);
        });
      }
    } catch (e) {
      addNotice(NET_ERROR);
    } finally {
      log.setAttribute("aria-busy", "false");
      setPending(false);
      scrollToEnd();
    }
  }

  function submitInput() {
    const text = input.value.trim();
    if (!text) { input.focus(); return; }
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

  updateCounter();
  loadHistory();
})();
