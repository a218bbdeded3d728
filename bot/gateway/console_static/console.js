// The support agents' console: log in, the queue (live, server-sent events), a conversation's
// transcript with the topic and confidence the assistant saw in each user message, take over,
// reply, hand back to the assistant, the copilot's suggestions, and the statistics.
// Texts typed by users are untrusted: every node is built with textContent, never as HTML.
// The assistant's Markdown (bold, lists, links) comes from the server already split into
// paragraphs, lists and runs (`blocks`, bot/gateway/rich_text.py); it is built the same way,
// each run a text node, a link only to an http(s) or mailto address.
"use strict";

(() => {
  const API = "/console/api/";
  const QUEUE_REFRESH_MS = 30_000; // ages and presence, besides the live events
  const T = {
    reasons: { demande: "a demandé un conseiller", incompris: "incompris" },
    channels: { web: "Site web", telegram: "Telegram", slack: "Slack" },
    roles: { user: "Usager", bot: "Assistant", agent: "Conseiller", system: "Message automatique" },
    accountRoles: { agent: "conseiller", analyst: "analyste" },
    waiting: "En attente",
    mine: "Vous avez la main",
    takenBy: (name) => `Pris par ${name}`,
    closed: "Close",
    generic: "Une erreur inattendue s'est produite : réessayez, ou rechargez la page.",
    offline: "Serveur injoignable : vérifiez la connexion, puis réessayez.",
    live: "Mises à jour en direct",
    reconnecting: "Connexion perdue : reconnexion en cours…",
    topic: "Sujet détecté : ",
    confidence: " · confiance ",
    noTopic: "Sujet non détecté",
    suggestFor: "Suggérer une réponse",
    send: "Envoyer",
    edit: "Modifier",
    asking: "Recherche de suggestions…",
    noSuggestion: "Aucune suggestion pour ce message.",
    withoutNlu: "Compréhension automatique indisponible : suggestions par recherche seulement.",
    suggestionsFor: (text) => `Suggestions pour « ${text} »`,
    takeFirst: "Prenez la main pour répondre.",
    newHandoff: "Nouvelle conversation en attente.",
    chars: (n, max) => `${n} / ${max} caractères`,
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    agent: null,
    csrf: "",
    maxReply: 2000,
    queue: [],
    queueFetchedAt: 0,
    queueLoaded: false, // a new waiting conversation is announced after the first load
    online: null,
    selected: null, // conversation id
    day: null, // the day it started (« 8 novembre 2026 »): a turn of another day shows its date
    handoff: null,
    last: 0,
    lastUserTurn: null,
    suggestions: 0, // number of the latest copilot request
    events: null,
    refreshing: Promise.resolve(),
  };

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function button(text, className, onClick) {
    const node = el("button", className, text);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function announce(text) { $("status").textContent = text; }

  function percent(confidence) {
    return `${Math.round(confidence * 100)} %`;
  }

  function age(seconds) {
    if (seconds < 60) return "depuis moins d'une minute";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `depuis ${minutes} min`;
    const hours = Math.floor(minutes / 60);
    return `depuis ${hours} h ${String(minutes % 60).padStart(2, "0")}`;
  }

  // ------------------------------------------------------------------ the assistant's Markdown

  function safeHref(address) {
    try {
      const url = new URL(address);
      return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  // One line's runs: text, bold, or a link (opened in a new tab, the console stays open).
  function appendRuns(parent, runs) {
    for (const run of runs) {
      let node = document.createTextNode(run.text);
      const href = run.href ? safeHref(run.href) : null;
      if (href) {
        node = el("a", "", run.text);
        node.href = href;
        node.target = "_blank";
        node.rel = "noopener noreferrer";
      }
      if (run.bold) {
        const strong = el("strong");
        strong.append(node);
        node = strong;
      }
      parent.append(node);
    }
  }

  function appendLines(parent, lines) {
    lines.forEach((runs, index) => {
      if (index) parent.append(el("br"));
      appendRuns(parent, runs);
    });
    return parent;
  }

  // An answer's paragraphs and lists.
  function richText(className, blocks) {
    const box = el("div", `${className} rich`);
    for (const block of blocks) {
      if (block.type === "list") {
        const list = el(block.ordered ? "ol" : "ul");
        if (block.ordered && Number.isInteger(block.start) && block.start !== 1) list.start = block.start;
        for (const item of block.items) list.append(appendLines(el("li"), item));
        box.append(list);
      } else {
        box.append(appendLines(el("p"), block.lines));
      }
    }
    return box;
  }

  // ------------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = state.csrf;
    let response;
    try {
      response = await fetch(API + path, {
        method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError(0, T.offline);
    }
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    if (response.status === 401 && path !== "login" && state.agent) signedOut(data && data.error);
    if (!response.ok) throw new ApiError(response.status, (data && data.error) || T.generic);
    return data;
  }

  // ------------------------------------------------------------------ signing in and out

  function show(view) {
    $("login-view").hidden = view !== "login";
    $("desk-view").hidden = view !== "desk";
    $("stats-view").hidden = view !== "stats";
    $("tab-desk").setAttribute("aria-pressed", String(view === "desk"));
    $("tab-stats").setAttribute("aria-pressed", String(view === "stats"));
  }

  function signedOut(message) {
    if (state.events) state.events.close();
    state.events = null;
    state.agent = null;
    state.csrf = "";
    state.selected = null;
    state.queue = [];
    state.queueLoaded = false;
    window.clearInterval(queueTimer);
    $("who").hidden = true;
    $("tabs").hidden = true;
    show("login");
    $("login-error").textContent = message || "";
    $("login").focus();
  }

  function signedIn(data) {
    state.agent = data.agent;
    state.csrf = data.csrf;
    if (data.max_reply_chars) state.maxReply = data.max_reply_chars;
    $("who-name").textContent =
      `${data.agent.name} (${T.accountRoles[data.agent.role] || data.agent.role})`;
    $("who").hidden = false;
    $("tabs").hidden = false;
    const isAgent = data.agent.role === "agent";
    $("tab-desk").hidden = !isAgent;
    if (isAgent) {
      show("desk");
      loadQueue();
      listen();
    } else {
      openStats();
    }
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const login = $("login").value.trim();
    const password = $("password").value;
    $("login-error").textContent = "";
    if (!login || !password) {
      $("login-error").textContent = "Saisissez votre identifiant et votre mot de passe.";
      return;
    }
    try {
      const data = await api("POST", "login", { login, password });
      $("password").value = "";
      signedIn(data);
      announce(`Connecté(e) : ${data.agent.name}.`);
    } catch (error) {
      $("password").value = "";
      $("login-error").textContent = error.message;
      $("password").focus();
    }
  });

  $("logout").addEventListener("click", async () => {
    try { await api("POST", "logout", {}); } catch (error) { /* the session is gone anyway */ }
    signedOut("");
    announce("Vous êtes déconnecté(e).");
  });

  $("tab-desk").addEventListener("click", () => show("desk"));
  $("tab-stats").addEventListener("click", openStats);

  // ------------------------------------------------------------------ the queue, live

  let queueTimer = null;

  async function loadQueue() {
    if (!state.agent) return;
    try {
      const data = await api("GET", "queue");
      const before = new Set(state.queue.filter((h) => h.state === "waiting").map((h) => h.id));
      state.queue = data.handoffs;
      state.queueFetchedAt = Date.now();
      renderQueue(data.agents_online);
      if (state.queueLoaded && state.queue.some((h) => h.state === "waiting" && !before.has(h.id))) {
        announce(T.newHandoff);
      }
      state.queueLoaded = true;
    } catch (error) {
      $("queue-summary").textContent = error.message;
    }
  }

  // Several events in a row cost one reload.
  let queueReload = null;
  function reloadQueueSoon() {
    if (queueReload) return;
    queueReload = window.setTimeout(() => { queueReload = null; loadQueue(); }, 150);
  }

  function renderQueue(online) {
    const list = $("queue-list");
    const elapsed = (Date.now() - state.queueFetchedAt) / 1000;
    const waiting = state.queue.filter((h) => h.state === "waiting").length;
    const taken = state.queue.length - waiting;
    if (online !== undefined) state.online = online;
    $("queue-summary").textContent =
      `${waiting} en attente · ${taken} en cours · ${state.online ?? "?"} conseiller(s) en ligne`;
    list.replaceChildren();
    for (const handoff of state.queue) {
      const item = el("li", "queue-item");
      const open = el("button", `queue-open state-${handoff.state}${handoff.mine ? " mine" : ""}`);
      open.type = "button";
      open.dataset.conversation = handoff.conversation;
      if (handoff.conversation === state.selected) open.setAttribute("aria-current", "true");
      const head = el("span", "queue-head");
      head.append(
        el("span", "badge", handoff.state === "waiting" ? T.waiting
          : handoff.mine ? T.mine : T.takenBy(handoff.taken_by_name || "un collègue")),
        el("span", "age", age(handoff.age_seconds + elapsed)),
      );
      const facts = el("span", "queue-facts",
        `${T.channels[handoff.channel] || handoff.channel} · ${T.reasons[handoff.reason] || handoff.reason}`
        + (handoff.last_topic ? ` · ${handoff.last_topic}` : ""));
      const preview = el("span", "preview", handoff.last_user_text || "(pas encore de message)");
      open.append(head, facts, preview);
      open.addEventListener("click", () => select(handoff.conversation));
      item.append(open);
      list.append(item);
    }
    $("queue-empty").hidden = state.queue.length > 0;
  }

  function listen() {
    if (state.events) state.events.close();
    const source = new EventSource(API + "events");
    state.events = source;
    source.onopen = () => {
      $("live").textContent = T.live;
      $("live").className = "live on";
      loadQueue(); // whatever happened while disconnected
      if (state.selected) refreshConversation();
    };
    source.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch (error) { return; }
      if (event.type === "turn" || event.type === "handoff" || event.type === "taken"
          || event.type === "released" || event.type === "resync") {
        reloadQueueSoon();
      }
      if (state.selected && (event.type === "resync" || event.conversation === state.selected)) {
        refreshConversation();
      }
    };
    source.addEventListener("logout", () => signedOut("Votre session a expiré : reconnectez-vous."));
    source.onerror = async () => {
      $("live").textContent = T.reconnecting;
      $("live").className = "live off";
      if (source.readyState === EventSource.CLOSED && state.agent) {
        // Refused (e.g. the session ended): api() shows the login form on a 401.
        try { await api("GET", "me"); window.setTimeout(listen, 3000); } catch (error) { /* shown */ }
      }
    };
    window.clearInterval(queueTimer);
    queueTimer = window.setInterval(loadQueue, QUEUE_REFRESH_MS);
  }

  // ------------------------------------------------------------------ a conversation

  async function select(conversation) {
    state.selected = conversation;
    state.day = null;
    state.last = 0;
    state.handoff = null;
    state.lastUserTurn = null;
    $("transcript").replaceChildren();
    $("conversation-error").textContent = "";
    $("conversation-none").hidden = true;
    $("conversation-view").hidden = false;
    $("suggestions").replaceChildren();
    $("lookups").replaceChildren();
    $("lookups-title").hidden = true;
    for (const node of $("queue-list").querySelectorAll(".queue-open")) {
      if (node.dataset.conversation === conversation) node.setAttribute("aria-current", "true");
      else node.removeAttribute("aria-current");
    }
    await refreshConversation();
    if (state.lastUserTurn) suggestForTurn(state.lastUserTurn);
  }

  // One refresh at a time, in order: each fetches the turns after the last shown.
  function refreshConversation() {
    state.refreshing = state.refreshing.then(fetchConversation, fetchConversation);
    return state.refreshing;
  }

  async function fetchConversation() {
    const conversation = state.selected;
    if (!conversation) return;
    let data;
    try {
      data = await api("GET", `conversations/${encodeURIComponent(conversation)}?after=${state.last}`);
    } catch (error) {
      if (conversation === state.selected) $("conversation-error").textContent = error.message;
      return;
    }
    if (conversation !== state.selected) return;
    const channel = T.channels[data.conversation.channel] || data.conversation.channel;
    const started = data.conversation;
    state.day = started.started_day;
    $("conversation-meta").textContent = `${channel} · commencée le ${started.started_day} à `
      + `${started.started_time} · réf. ${conversation.slice(0, 16)}…`;
    for (const turn of data.turns) $("transcript").append(renderTurn(turn));
    if (data.turns.length) {
      const log = $("transcript-log");
      log.scrollTop = log.scrollHeight;
    }
    state.last = data.last;
    state.handoff = data.handoff;
    renderHandoff();
  }

  function renderTurn(turn) {
    const item = el("li", `turn turn-${turn.role}`);
    item.dataset.turn = turn.id;
    const head = el("p", "turn-head");
    const who = turn.role === "agent" && turn.agent ? `${T.roles.agent} (${turn.agent})` : (T.roles[turn.role] || turn.role);
    const when = turn.day === state.day ? turn.time : `${turn.day} à ${turn.time}`;
    head.append(el("span", "turn-who", who), el("span", "turn-time", when));
    // What a user typed stays text; the assistant's, an agent's and the desk's are Markdown.
    item.append(head, turn.role === "user" || !turn.blocks
      ? el("p", "turn-text", turn.text) : richText("turn-text", turn.blocks));
    if (turn.buttons && turn.buttons.length) {
      item.append(el("p", "turn-buttons", `Boutons proposés : ${turn.buttons.join(" · ")}`));
    }
    if (turn.role === "user") {
      const nlu = el("p", "turn-nlu");
      if (turn.intent) {
        nlu.append(el("span", "topic", T.topic + (turn.topic || turn.intent)));
        if (typeof turn.confidence === "number") {
          nlu.append(el("span", "confidence", T.confidence + percent(turn.confidence)));
        }
      } else {
        nlu.append(el("span", "topic", T.noTopic));
      }
      nlu.append(button(T.suggestFor, "quiet small", () => suggestForTurn(turn)));
      item.append(nlu);
      if (!turn.text.startsWith("/")) state.lastUserTurn = turn;
    }
    return item;
  }

  function renderHandoff() {
    const handoff = state.handoff;
    const mine = Boolean(handoff && handoff.mine);
    $("take").hidden = !(handoff && handoff.state === "waiting");
    $("release").hidden = !(handoff && (handoff.state === "waiting" || mine));
    let text = "Conversation avec l'assistant (pas de demande ouverte).";
    if (handoff && handoff.state === "waiting") {
      text = `${T.waiting} ${age(handoff.age_seconds)} : ${T.reasons[handoff.reason] || handoff.reason}.`;
    } else if (mine) {
      text = `${T.mine}.`;
    } else if (handoff) {
      text = `${T.takenBy(handoff.taken_by_name || "un collègue")}.`;
    }
    $("handoff-state").textContent = text;
    $("reply").disabled = !mine;
    $("send").disabled = !mine;
    $("reply-help").hidden = !mine;
    $("reply-count").textContent = mine ? T.chars($("reply").value.length, state.maxReply) : T.takeFirst;
  }

  async function handoffAction(action, successText) {
    if (!state.handoff) return;
    $("conversation-error").textContent = "";
    try {
      await api("POST", `handoffs/${state.handoff.id}/${action}`, {});
      announce(successText);
    } catch (error) {
      $("conversation-error").textContent = error.message;
    }
    await refreshConversation();
    loadQueue();
  }

  $("take").addEventListener("click", async () => {
    await handoffAction("take", "Vous avez pris la main : l'assistant est en pause pour cet usager.");
    if (state.handoff && state.handoff.mine) $("reply").focus();
  });
  $("release").addEventListener("click", async () => {
    await handoffAction("release", "Conversation rendue à l'assistant.");
    $("conversation-title").focus(); // the buttons just clicked are gone
  });

  async function sendReply(text) {
    $("conversation-error").textContent = "";
    try {
      await api("POST", `conversations/${encodeURIComponent(state.selected)}/reply`, { text });
      $("reply").value = "";
      renderHandoff();
      announce("Réponse envoyée.");
      await refreshConversation();
      return true;
    } catch (error) {
      $("conversation-error").textContent = error.message;
      return false;
    }
  }

  $("reply-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("reply").value.trim();
    if (!text) {
      $("conversation-error").textContent = "Votre réponse est vide : écrivez un message avant de l'envoyer.";
      $("reply").focus();
      return;
    }
    sendReply(text);
  });
  $("reply").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("reply-form").requestSubmit();
    }
  });
  $("reply").addEventListener("input", () => {
    $("reply-count").textContent = T.chars($("reply").value.length, state.maxReply);
  });

  // ------------------------------------------------------------------ the copilot

  function suggestForTurn(turn) {
    $("copilot-text").value = turn.text;
    suggest({ conversation: state.selected, turn: turn.id }, turn.text);
  }

  $("copilot-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("copilot-text").value.trim();
    if (text) suggest({ text }, text);
  });

  async function suggest(body, text) {
    const list = $("suggestions");
    list.replaceChildren();
    $("lookups").replaceChildren();
    $("lookups-title").hidden = true;
    $("copilot-status").textContent = T.asking;
    const ticket = ++state.suggestions; // only the latest request's answer is shown
    let data;
    try {
      data = await api("POST", "suggest", body);
    } catch (error) {
      if (ticket === state.suggestions) $("copilot-status").textContent = error.message;
      return;
    }
    if (ticket !== state.suggestions) return;
    const notes = [T.suggestionsFor(text.length > 80 ? text.slice(0, 80) + "…" : text)];
    if (!data.nlu) notes.push(T.withoutNlu);
    if (!data.suggestions.length && !data.lookups.length) notes.push(T.noSuggestion);
    $("copilot-status").textContent = notes.join(" ");
    for (const suggestion of data.suggestions.slice(0, 3)) {
      list.append(renderSuggestion(suggestion.source, suggestion,
        `${percent(suggestion.confidence)}${suggestion.kind === "search" ? " (recherche)" : ""}`));
    }
    for (const lookup of data.lookups) {
      $("lookups").append(renderSuggestion(lookup.title, lookup, `section « ${lookup.source} »`));
    }
    $("lookups-title").hidden = data.lookups.length === 0;
  }

  // `answer`: its Markdown `text` (sent as is: the user's channel formats it), its `blocks`
  // (shown) and its `plain` text (put in the reply box, to edit).
  function renderSuggestion(title, answer, detail) {
    const item = el("li", "suggestion");
    const head = el("p", "suggestion-head");
    head.append(el("span", "suggestion-title", title), el("span", "suggestion-detail", detail));
    const actions = el("p", "suggestion-actions");
    const send = button(T.send, "primary small", async () => {
      if (!state.handoff || !state.handoff.mine) {
        $("conversation-error").textContent = T.takeFirst;
        return;
      }
      await sendReply(answer.text);
    });
    send.setAttribute("aria-label", `${T.send} : ${title}`);
    const edit = button(T.edit, "small", () => {
      $("reply").value = answer.plain;
      $("reply").dispatchEvent(new Event("input"));
      if (!$("reply").disabled) $("reply").focus();
      else $("conversation-error").textContent = T.takeFirst;
    });
    edit.setAttribute("aria-label", `${T.edit} : ${title}`);
    actions.append(send, edit);
    item.append(head, richText("suggestion-text", answer.blocks), actions);
    return item;
  }

  // ------------------------------------------------------------------ the statistics

  const STAT_ROWS = [
    ["conversations", "Conversations", "count"],
    ["messages", "Messages des usagers", "count"],
    ["containment", "Conversations sans conseiller", "rate"],
    ["fallback_rate", "Messages incompris", "rate"],
    ["out_of_scope_rate", "Questions hors périmètre", "rate"],
    ["handoffs", "Demandes de conseiller", "count"],
  ];

  function openStats() {
    show("stats");
    loadStats();
  }

  $("stats-form").addEventListener("submit", (event) => { event.preventDefault(); loadStats(); });

  async function loadStats() {
    const days = $("stats-days").value;
    $("stats-error").textContent = "";
    let data;
    try {
      data = await api("GET", `insights?days=${days}`);
    } catch (error) {
      $("stats-error").textContent = error.message;
      return;
    }
    const table = el("table", "stats-table");
    table.append(el("caption", "", data.period.label));
    const body = el("tbody");
    for (const [key, label, kind] of STAT_ROWS) {
      const row = el("tr");
      const value = data.totals[key];
      row.append(el("th", "", label), el("td", "",
        value === null || value === undefined ? "—" : kind === "rate" ? percent(value) : value));
      row.firstChild.scope = "row";
      body.append(row);
    }
    table.append(body);
    $("stats-summary").replaceChildren(table);
    const stamp = Date.now();
    $("plot-daily").src = `${API}insights/daily.png?days=${days}&t=${stamp}`;
    $("plot-topics").src = `${API}insights/topics.png?days=${days}&t=${stamp}`;
    $("candidates").href = `${API}insights/candidates.yml?days=${days}`;
    const list = $("stats-misunderstood");
    list.replaceChildren();
    for (const group of data.not_understood.slice(0, 10)) {
      list.append(el("li", "", `${group.representative} (${group.count} fois)`));
    }
    if (!data.not_understood.length) list.append(el("li", "", "Aucune sur la période."));
  }

  // ------------------------------------------------------------------ start

  window.setInterval(() => { if (state.agent && state.queue.length) renderQueue(); }, QUEUE_REFRESH_MS / 2);

  (async () => {
    try {
      signedIn(await api("GET", "me"));
    } catch (error) {
      signedOut(error.status === 401 ? "" : error.message);
    }
  })();
})();
