/* The workplace's live updates: the server says when what this page shows has changed; the page then fetches
   its live part again (rendered and escaped by the server) and puts it in place. Forms are left as they are. */
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
})();
