// Checks the form as you type with the API's rules (POST /console/check), puts each error on its
// field and shows the plan. Without JavaScript the same checks run when the form is sent.
(function () {
  var form = document.getElementById("experiment-form");
  if (!form || !window.fetch) return;
  var timer = null, sent = 0;
  function show(answer) {
    form.querySelectorAll("[data-error-for]").forEach(function (line) {
      var name = line.getAttribute("data-error-for");
      var message = answer.errors[name] || "";
      line.textContent = message;
      var input = document.getElementById(name);
      if (input) { if (message) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid"); }
    });
    document.getElementById("plan").textContent = answer.plan;
  }
  function check() {
    var mine = ++sent;  // answers can cross: only the latest request's is shown
    fetch(form.getAttribute("data-check"), {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/x-www-form-urlencoded"},
      body: new URLSearchParams(new FormData(form)).toString()
    }).then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) { if (answer && mine === sent) show(answer); });
  }
  form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 250); });
})();
