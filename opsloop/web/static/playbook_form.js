// The playbook form (templates/playbook_form.html, opsloop/web/pages/playbook_form.py).
//
// 1. Add and Remove without a round trip: a row is copied from its <template>, numbered after
//    the last one of its list (`features-7-name`), or taken out. Without this script the
//    buttons post the form and the server answers it with the row added or removed.
// 2. The check is htmx's: on each change (debounced) it swaps the problems and the YAML into
//    #pf-check. Each problem it names a field for is then written next to that field.
// 3. Enter in a one-line field does not submit the form, and the option names rules offer
//    follow the options as they are renamed, added and removed.
(function () {
  "use strict";

  var form = document.getElementById("pf-form");
  if (!form) return;

  function changed() {
    form.dispatchEvent(new Event("pf-changed", { bubbles: true }));
  }

  function addRow(button) {
    var prefix = button.getAttribute("data-add");
    var rows = form.querySelector('[data-rows="' + prefix + '"]');
    var template = document.getElementById(button.getAttribute("data-template"));
    if (!rows || !template) return false;
    var next = Number(rows.getAttribute("data-next") || "0");
    rows.setAttribute("data-next", String(next + 1));
    rows.insertAdjacentHTML("beforeend", template.innerHTML.split("__row__").join(prefix + "-" + next));
    var first = rows.lastElementChild.querySelector("input[type=text], textarea");
    if (first) first.focus();
    return true;
  }

  function removeRow(button) {
    var row = button.closest("[data-row]");
    if (!row) return false;
    var rows = row.parentElement;
    row.remove();
    var add = form.querySelector('[data-add="' + rows.getAttribute("data-rows") + '"]');
    if (add) add.focus();
    return true;
  }

  function offerOptionNames() {
    var list = document.getElementById("pf-option-names");
    if (!list) return;
    var options = [];
    form.querySelectorAll(".pf-option-name input").forEach(function (input) {
      var name = input.value.trim();
      if (!name) return;
      var option = document.createElement("option");
      option.value = name;
      options.push(option);
    });
    list.replaceChildren.apply(list, options);
  }

  function placeProblems() {
    form.querySelectorAll("[data-error-for]").forEach(function (slot) {
      slot.textContent = "";
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (field) {
      field.removeAttribute("aria-invalid");
    });
    document.querySelectorAll("#pf-check [data-for]").forEach(function (item) {
      var id = item.getAttribute("data-for");
      var slot = document.getElementById("e-" + id);
      var message = item.querySelector(".pf-message");
      if (!slot || !message) return;
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + message.textContent;
      var field = document.getElementById("f-" + id);
      if (field && field.matches("input, select, textarea")) field.setAttribute("aria-invalid", "true");
    });
  }

  form.addEventListener("click", function (event) {
    var target = event.target;
    var goTo = target.closest && target.closest(".pf-goto");
    if (goTo) {
      var field = document.getElementById(goTo.getAttribute("href").slice(1));
      if (field) {
        event.preventDefault();
        field.scrollIntoView({ block: "center" });
        (field.matches("input, select, textarea") ? field : field.querySelector("input, select, textarea") || field).focus();
      }
      return;
    }
    var button = target.closest && target.closest("[data-add], [data-remove]");
    if (!button) return;
    var done = button.hasAttribute("data-add") ? addRow(button) : removeRow(button);
    if (!done) return;
    event.preventDefault();
    offerOptionNames();
    changed();
  });
  form.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches("input[type=text]")) event.preventDefault();
  });
  form.addEventListener("input", function (event) {
    if (event.target.closest(".pf-option-name")) offerOptionNames();
  });
  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "pf-check") placeProblems();
  });
})();
