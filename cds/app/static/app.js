// Live recompute for the Operator-CTO review page (no framework, no CDN).
// Sends every input's current value to /app/api/score and swaps in the server-rendered result.
// A changed value is marked "entered"; the page stays readable without this script.
(function () {
  "use strict";
  var form = document.getElementById("inputs");
  if (!form) { return; }
  var pending = null;

  function values() {
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && el.id !== "operator-choice" && el.type !== "hidden") { out[el.name] = el.value; }
    });
    return out;
  }

  function mark(el) {
    var row = el.closest(".input");
    if (!row) { return; }
    var entered = el.value !== el.getAttribute("data-initial");
    var state = entered ? "entered" : (el.value === "" ? "unknown" : row.getAttribute("data-source-state"));
    row.setAttribute("data-state", state);
    row.querySelector(".mark").textContent = state;
  }

  function recompute() {
    fetch("/app/api/score", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ inputs: values() })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (answer) {
      var status = document.getElementById("status");
      if (!answer.ok) {
        var text = answer.body.issues ? answer.body.issues.map(function (i) { return i.message; }).join("; ")
          : (answer.body.detail || answer.body.error);
        status.textContent = text;
        return;
      }
      status.textContent = "";
      document.getElementById("result").innerHTML = answer.body.result;
      document.getElementById("comparators").innerHTML = answer.body.comparators;
    });
  }

  // Operator what-if: a registry operator fills the three experience inputs.
  var choice = document.getElementById("operator-choice");
  if (choice) {
    choice.addEventListener("change", function (e) {
      e.stopPropagation();
      var option = choice.options[choice.selectedIndex];
      ["operator_annual_cto_volume", "operator_cto_years", "operator_last_year_success_rate"]
        .forEach(function (name) {
          var el = document.getElementById("in-" + name);
          var value = option.value === "" ? el.getAttribute("data-initial")
            : (option.getAttribute("data-" + name) || "");
          el.value = value;
          mark(el);
        });
      recompute();
    });
  }

  var status = document.createElement("p");
  status.id = "status";
  status.setAttribute("role", "status");
  form.parentNode.insertBefore(status, form);
  // Save is a plain form POST (works without this script); here the button is disabled while the
  // save is in flight, so a second click cannot submit twice (the server also refuses: 409).
  var saveButton = document.getElementById("save");
  var saving = false;
  form.addEventListener("submit", function (e) {
    if (saveButton && e.submitter === saveButton) {
      if (saving) { e.preventDefault(); return; }
      saving = true;
      status.textContent = "Saving…";
      setTimeout(function () { saveButton.disabled = true; }, 0);
      return;
    }
    e.preventDefault();
    recompute();
  });
  // Enter in a field recomputes; only the Save button saves.
  form.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && e.target.tagName === "INPUT") { e.preventDefault(); recompute(); }
  });
  form.addEventListener("change", function (e) {
    mark(e.target);
    clearTimeout(pending);
    pending = setTimeout(recompute, 50);
  });
})();
