// The Implementation page: the token typed in goes into the snippets (here only: it is neither
// sent nor stored), and the live check refreshes every 5 seconds from its cheap read (the
// counters, not the events).
(function () {
  var token = document.getElementById("project-token");
  if (token) {
    token.addEventListener("input", function () {
      var value = token.value.trim() || token.getAttribute("placeholder");
      document.querySelectorAll("[data-token]").forEach(function (slot) { slot.textContent = value; });
    });
  }
  var live = document.getElementById("live");
  if (!live || !window.fetch) return;
  setInterval(function () {
    fetch(live.getAttribute("data-source"), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) live.innerHTML = html; });
  }, 5000);
})();
