// Refreshes the live check every 5 seconds from its cheap read (the counters, not the events).
(function () {
  var live = document.getElementById("live");
  if (!live || !window.fetch) return;
  setInterval(function () {
    fetch(live.getAttribute("data-source"), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) live.innerHTML = html; });
  }, 5000);
})();
