/* The workplace's live updates: the server says when what this page shows has changed; the page then fetches
   its live part again (rendered and escaped by the server) and puts it in place. Forms are left as they are.
   A ticket's page also tells the server, every few seconds, that it is still open, and when the agent types a
   reply, so that colleagues on the same ticket see who is there and who is answering. */
(function () {
  "use strict";
  var url = document.body.getAttribute("data-events");
  var live = document.getElementById("live");
  if (!url || !live || !window.EventSource) return;
  var loading = false, again = false;
  function refresh() {
    if (loading) { again = true; return; }
    loading = true;
    fetch(location.href, { headers: { "X-Live": "1" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null) live.innerHTML = html;
        loading = false;
        if (again) { again = false; refresh(); }
      }, function () { loading = false; });
  }
  var source = new EventSource(url); // its URL carries the state this page was rendered with
  source.onmessage = refresh;

  var ticket = /\/console\/t\/([^\/?#]+)/.exec(location.pathname);
  var csrf = document.querySelector("input[name=csrf]");
  if (!ticket || !csrf) return;
  var presence = location.pathname.replace(/\/?$/, "") + "/presence";
  var lastTyping = 0;
  function tell(typing) {
    var body = new URLSearchParams({ csrf: csrf.value, typing: typing ? "1" : "0" });
    fetch(presence, { method: "POST", body: body, credentials: "same-origin" }).catch(function () {});
  }
  setInterval(function () { if (!document.hidden) tell(false); }, 5000);
  var reply = document.querySelector(".composer:not(.note) textarea");
  if (reply) {
    reply.addEventListener("input", function () {
      var now = Date.now();
      if (now - lastTyping > 2000) { lastTyping = now; tell(true); }
    });
  }
})();
