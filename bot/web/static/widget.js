/* Zabota chat widget: <script src="https://support.example.com/widget.js" async></script>
 *
 * Optional attributes on the script tag:
 *   data-lang="ru|uk|en"   the widget's language (default: the page's <html lang>, then the browser's)
 *   data-color="#2563eb"   the accent colour        data-position="right|left"
 *   data-greeting="..."    a line shown above the conversation
 *   data-user-id, data-user-name, data-user-hash   a signed-in user of the site (hash: hex HMAC-SHA256 of the
 *                          id with WEB_IDENTITY_SECRET, computed by the site's server, never in the page's code)
 * Plain JavaScript, no dependencies. Everything shown comes from the server already escaped or sanitised.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__zabotaWidget) return;
  window.__zabotaWidget = true;
  var data = script.dataset;
  var base = script.src.replace(/\/widget\.js(\?.*)?$/, "");
  var store = "zabota:" + base + ":";
  var WORDS = {
    ru: { title: "Поддержка", open: "Открыть чат поддержки", close: "Закрыть чат", input: "Ваше сообщение",
          send: "Отправить", human: "Позвать человека", offline: "Нет связи: отправим, когда она вернётся",
          failed: "Не отправлено", typing: "Печатает…", agent: "Оператор", you: "Вы", bot: "Бот",
          attach: "Прикрепить файл" },
    uk: { title: "Підтримка", open: "Відкрити чат підтримки", close: "Закрити чат", input: "Ваше повідомлення",
          send: "Надіслати", human: "Покликати людину", offline: "Немає зв’язку: надішлемо, коли він повернеться",
          failed: "Не надіслано", typing: "Друкує…", agent: "Оператор", you: "Ви", bot: "Бот",
          attach: "Прикріпити файл" },
    en: { title: "Support", open: "Open the support chat", close: "Close the chat", input: "Your message",
          send: "Send", human: "Talk to a person", offline: "Offline: your messages go out when you are back",
          failed: "Not sent", typing: "Typing…", agent: "Agent", you: "You", bot: "Bot",
          attach: "Attach a file" }
  };
  function pickLang() {
    var wanted = [data.lang, document.documentElement.lang].concat(navigator.languages || [navigator.language]);
    for (var i = 0; i < wanted.length; i++) {
      var code = String(wanted[i] || "").slice(0, 2).toLowerCase();
      if (WORDS[code]) return code;
    }
    return "en";
  }
  var lang = pickLang();
  var t = WORDS[lang];
  var color = /^#[0-9a-fA-F]{3,8}$/.test(data.color || "") ? data.color : "#2563eb";
  var side = data.position === "left" ? "left" : "right";

  var css =
    ":host{all:initial}" +
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
    ".launcher{position:fixed;bottom:20px;" + side + ":20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "display:flex;align-items:center;justify-content:center;" +
    "background:" + color + ";color:#fff;font-size:26px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646}" +
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    ".panel{position:fixed;bottom:88px;" + side + ":20px;width:370px;max-width:calc(100vw - 24px);height:560px;" +
    "max-height:calc(100vh - 110px);background:#fff;color:#111;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.25);" +
    "display:flex;flex-direction:column;overflow:hidden;z-index:2147483647;font-size:15px}" +
    ".panel[hidden]{display:none}" +
    "header{background:" + color + ";color:#fff;padding:10px 12px;display:flex;align-items:center;gap:8px}" +
    "header h2{font-size:16px;margin:0;flex:1}" +
    "header button{background:rgba(255,255,255,.18);color:#fff;border:0;border-radius:8px;padding:6px 10px;cursor:pointer;font-size:13px}" +
    ".greeting{padding:8px 12px;background:#f3f4f6;font-size:13px;color:#374151}" +
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#fafafa}" +
    ".msg{max-width:85%;padding:8px 11px;border-radius:12px;line-height:1.4;word-wrap:break-word;overflow-wrap:anywhere}" +
    ".msg.visitor{align-self:flex-end;background:" + color + ";color:#fff;border-bottom-right-radius:4px}" +
    ".msg.bot,.msg.agent{align-self:flex-start;background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:4px}" +
    ".msg.agent{border-color:#a7f3d0;background:#ecfdf5}" +
    ".msg .who{display:block;font-size:11px;color:#6b7280;margin-bottom:2px}.msg.visitor .who{color:rgba(255,255,255,.85)}" +
    ".msg a{color:inherit}.msg.pending{opacity:.6}.msg.failed{background:#fee2e2;color:#991b1b}" +
    ".buttons{display:flex;flex-direction:column;gap:4px;margin-top:6px}.row{display:flex;gap:4px;flex-wrap:wrap}" +
    ".row button{flex:1;min-height:34px;border:1px solid " + color + ";background:#fff;color:" + color + ";" +
    "border-radius:8px;padding:5px 8px;cursor:pointer;font-size:14px}" +
    ".row button:disabled{opacity:.5;cursor:default}" +
    ".notice{align-self:center;font-size:12px;color:#6b7280;text-align:center}" +
    "form{display:flex;gap:6px;padding:8px;border-top:1px solid #e5e7eb;background:#fff}" +
    "textarea{flex:1;resize:none;border:1px solid #d1d5db;border-radius:10px;padding:8px;font-size:15px;height:42px;max-height:120px}" +
    "form button{border:0;border-radius:10px;background:" + color + ";color:#fff;padding:0 14px;cursor:pointer;font-size:14px}" +
    "form button.attach{background:#f3f4f6;color:#111;padding:0 10px;font-size:18px}" +
    ".file{display:block;color:inherit;margin-bottom:4px}.file img{display:block;max-width:100%;max-height:180px;border-radius:8px;margin-bottom:4px}" +
    ".status{font-size:12px;color:#b45309;padding:0 12px 6px;background:#fff}" +
    "@media (max-width:480px){.panel{left:0;right:0;bottom:0;top:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0}}";

  var host = document.createElement("div");
  host.id = "zabota-widget";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = document.createElement("style");
  style.textContent = css;
  root.appendChild(style);

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var name in attrs || {}) node.setAttribute(name, attrs[name]);
    if (text) node.textContent = text;
    return node;
  }
  var launcher = el("button", { "class": "launcher", type: "button", "aria-label": t.open, "aria-expanded": "false",
                                "aria-controls": "zabota-panel" });
  launcher.innerHTML = '<svg width="28" height="28" viewBox="0 0 24 24" aria-hidden="true" fill="currentColor">' +
    '<path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/></svg>';
  var panel = el("section", { "class": "panel", id: "zabota-panel", role: "dialog", "aria-label": t.title, hidden: "" });
  var header = el("header");
  header.appendChild(el("h2", {}, t.title));
  var human = el("button", { type: "button", "class": "human" }, t.human);
  var closer = el("button", { type: "button", "class": "close", "aria-label": t.close }, "✕");
  header.appendChild(human);
  header.appendChild(closer);
  panel.appendChild(header);
  if (data.greeting) panel.appendChild(el("div", { "class": "greeting" }, data.greeting));
  var log = el("div", { "class": "log", role: "log", "aria-live": "polite", "aria-label": t.title });
  panel.appendChild(log);
  var status = el("div", { "class": "status", role: "status" });
  panel.appendChild(status);
  var form = el("form");
  var input = el("textarea", { "aria-label": t.input, placeholder: t.input, rows: "1" });
  var sendButton = el("button", { type: "submit" }, t.send);
  var attach = el("button", { type: "button", "class": "attach", "aria-label": t.attach, title: t.attach }, "📎");
  var picker = el("input", { type: "file", hidden: "", accept: "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain" });
  form.appendChild(attach);
  form.appendChild(picker);
  form.appendChild(input);
  form.appendChild(sendButton);
  panel.appendChild(form);
  root.appendChild(launcher);
  root.appendChild(panel);
  (document.body || document.documentElement).appendChild(host);

  var token = localStorage.getItem(store + "token") || "";
  var started = null;
  var source = null;
  var shown = {};   // message number -> element
  var pending = {}; // widget id -> element of a message not yet confirmed

  function post(path, body) {
    return fetch(base + path, { method: "POST", headers: { "Content-Type": "application/json" },
                                body: JSON.stringify(body), credentials: "omit" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (json) {
          return { status: response.status, body: json };
        });
      });
  }
  function scroll() { log.scrollTop = log.scrollHeight; }
  function notice(text) {
    if (!text) return;
    var node = el("div", { "class": "notice", role: "status" }, text);
    log.appendChild(node);
    scroll();
  }
  function setButtons(node, rows, number) {
    var old = node.querySelector(".buttons");
    if (old) old.remove();
    if (!rows || !rows.length) return;
    var box = el("div", { "class": "buttons" });
    rows.forEach(function (row) {
      var line = el("div", { "class": "row" });
      row.forEach(function (button) {
        var b = el("button", { type: "button" }, button.label);
        b.addEventListener("click", function () { tap(number, button.data, box); });
        line.appendChild(b);
      });
      box.appendChild(line);
    });
    node.appendChild(box);
  }
  function setBody(node, html) {
    var body = node.querySelector(".body");
    body.innerHTML = html; // sanitised by the server (bot/web/render.py): an allow-list of tags, checked links
  }
  function showFile(node, file) {
    var url = base + "/api/file/" + encodeURIComponent(file.id) + "?token=" + encodeURIComponent(token);
    var link = el("a", { "class": "file", href: url, download: file.name, target: "_blank", rel: "noopener" });
    if (/^image\//.test(file.type)) link.appendChild(el("img", { src: url, alt: file.name }));
    link.appendChild(el("span", {}, "📎 " + file.name));
    node.querySelector(".body").before(link);
  }
  function upload(file) {
    var id = Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
    var node = showPending(id, "📎 " + file.name);
    start().then(function (ok) {
      if (!ok) return;
      var body = new FormData();
      body.append("token", token);
      body.append("id", id);
      body.append("file", file, file.name);
      fetch(base + "/api/upload", { method: "POST", body: body, credentials: "omit" }).then(function (response) {
        if (response.ok) return;
        node.classList.add("failed");
        return response.json().then(function (json) { notice(json.error || t.failed); });
      }, function () { node.classList.add("failed"); notice(t.offline); });
    });
  }
  function apply(event) {
    if (event.type === "message") {
      var node = (event.cid && pending[event.cid]) || el("div");
      delete pending[event.cid];
      node.className = "msg " + event.role;
      node.textContent = "";
      var who = event.role === "agent" ? (event.agent || t.agent) : event.role === "visitor" ? t.you : t.bot;
      node.appendChild(el("span", { "class": "who" }, who));
      node.appendChild(el("div", { "class": "body" }));
      node.setAttribute("data-n", String(event.n));
      setBody(node, event.html);
      if (event.file) showFile(node, event.file);
      setButtons(node, event.buttons, event.n);
      log.appendChild(node); // a message confirmed after others moves to its place in the conversation
      shown[event.n] = node;
      scroll();
    } else if (event.type === "edit" && shown[event.n]) {
      if (event.html !== undefined) setBody(shown[event.n], event.html);
      if (event.buttons !== undefined) setButtons(shown[event.n], event.buttons, event.n);
      scroll();
    }
  }
  function listen() {
    if (source) source.close();
    source = new EventSource(base + "/api/events?token=" + encodeURIComponent(token));
    source.onmessage = function (message) { apply(JSON.parse(message.data)); };
    source.onopen = function () { status.textContent = navigator.onLine === false ? t.offline : ""; flush(); };
  }
  function start() {
    if (started) return started;
    var body = { token: token, lang: lang };
    if (data.userId) body.user = { id: data.userId, name: data.userName || "", hash: data.userHash || "" };
    started = post("/api/session", body).then(function (answer) {
      if (answer.status !== 200) {
        notice(answer.body.error || t.failed);
        started = null;
        return false;
      }
      token = answer.body.token;
      localStorage.setItem(store + "token", token);
      listen();
      return true;
    }, function () {
      status.textContent = t.offline;
      started = null;
      setTimeout(start, 3000);
      return false;
    });
    return started;
  }

  // Messages wait in the browser until the server confirms them: sent once when the connection returns.
  function outbox() {
    try { return JSON.parse(localStorage.getItem(store + "outbox") || "[]"); } catch (e) { return []; }
  }
  function saveOutbox(items) { localStorage.setItem(store + "outbox", JSON.stringify(items)); }
  var flushing = false;
  function flush() {
    if (flushing || !token) return;
    var items = outbox();
    if (!items.length) return;
    flushing = true;
    var item = items[0];
    post("/api/send", { token: token, id: item.id, text: item.text }).then(function (answer) {
      flushing = false;
      if (answer.status === 409) { setTimeout(flush, 1000); return; }
      saveOutbox(outbox().filter(function (other) { return other.id !== item.id; }));
      if (answer.status !== 200) {
        var node = pending[item.id];
        if (node) { node.classList.add("failed"); node.setAttribute("title", t.failed); }
        notice(answer.body.error || t.failed);
      }
      status.textContent = "";
      flush();
    }, function () {
      flushing = false;
      status.textContent = t.offline;
      setTimeout(flush, 3000);
    });
  }
  function send(text) {
    var id = Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
    var items = outbox();
    items.push({ id: id, text: text });
    saveOutbox(items);
    showPending(id, text);
    start().then(function (ok) { if (ok) flush(); });
  }
  function showPending(id, text) {
    var node = el("div", { "class": "msg visitor pending" });
    node.appendChild(el("span", { "class": "who" }, t.you));
    var body = el("div", { "class": "body" });
    body.textContent = text;
    node.appendChild(body);
    log.appendChild(node);
    pending[id] = node;
    scroll();
    return node;
  }
  function tap(number, value, box) {
    box.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    post("/api/tap", { token: token, message: number, data: value }).then(function (answer) {
      notice(answer.body.notice || (answer.status !== 200 ? answer.body.error : ""));
    }, function () {
      box.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      status.textContent = t.offline;
    });
  }

  function open(focus) {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    sessionStorage.setItem(store + "open", "1");
    start();
    if (focus) input.focus();
  }
  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    sessionStorage.removeItem(store + "open");
    launcher.focus();
  }
  launcher.addEventListener("click", function () { panel.hidden ? open(true) : close(); });
  closer.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
  human.addEventListener("click", function () {
    start().then(function (ok) { if (ok) post("/api/human", { token: token }); });
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  attach.addEventListener("click", function () { picker.click(); });
  picker.addEventListener("change", function () {
    if (picker.files && picker.files[0]) upload(picker.files[0]);
    picker.value = "";
  });
  window.addEventListener("online", function () { status.textContent = ""; flush(); });
  window.addEventListener("offline", function () { status.textContent = t.offline; });
  outbox().forEach(function (item) { showPending(item.id, item.text); }); // written before a reload, not yet sent
  if (sessionStorage.getItem(store + "open")) open(false);
  else if (token) start();
})();
