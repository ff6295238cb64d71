/* OpsLoop's inbox: keyboard review and focus after htmx swaps (templates/inbox*.html).
   A file of ours rather than an inline script: the Content-Security-Policy allows scripts from
   OpsLoop's own origin only. Also loaded on a decision's page, for its review form.

   j/k move · a approve · o override · r reject · e edit the reply · Enter/Space/click open ·
   Esc close the form · ? help */
(function () {
  "use strict";

  var list = document.querySelector("[data-inbox]");
  var help = document.getElementById("inbox-help");
  var selected = null;

  // htmx swaps only 2xx answers by default. A review that was refused (422: a reason is
  // missing) or came too late (409: someone else reviewed it) answers with the row or form
  // showing the error: swap those in too.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status === 422 || status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function rows() {
    return list ? Array.prototype.slice.call(list.querySelectorAll(".inbox-item")) : [];
  }

  function waiting() {
    return rows().filter(function (row) {
      return !row.hasAttribute("data-done");
    });
  }

  function select(row, focus) {
    if (selected) {
      selected.classList.remove("selected");
      selected.removeAttribute("aria-current");
    }
    selected = row;
    if (!row) return;
    row.classList.add("selected");
    row.setAttribute("aria-current", "true");
    if (focus !== false) {
      row.focus({ preventScroll: true });
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function move(step) {
    var open = waiting();
    if (!open.length) return;
    var at = open.indexOf(selected);
    var next = at < 0 ? 0 : Math.min(open.length - 1, Math.max(0, at + step));
    select(open[next]);
  }

  // Where a/o/r/e act: the selected row, or the review form of a decision's page.
  function scope() {
    if (list) return selected && selected.isConnected ? selected : null;
    return document.getElementById("review");
  }

  function busy(area) {
    return area.querySelector(".htmx-request") !== null;
  }

  function approve() {
    var area = scope();
    var form = area && area.querySelector("form.review-approve");
    if (form && !busy(area)) form.requestSubmit();
  }

  function openPanel(kind) {
    var area = scope();
    if (!area || busy(area)) return;
    var panel = area.querySelector('details[data-panel="' + kind + '"]');
    if (!panel) return;
    area.querySelectorAll("details[data-panel]").forEach(function (other) {
      if (other !== panel) other.open = false;
    });
    panel.open = true;
    var field = panel.querySelector("select, input[type=text]");
    if (field) field.focus();
  }

  function editDraft() {
    var area = scope();
    var draft = area && area.querySelector("textarea[data-draft]");
    if (!draft) return;
    var details = draft.closest("details");
    if (details) details.open = true;
    draft.focus();
  }

  function closePanels() {
    var area = scope();
    if (!area) return;
    area.querySelectorAll("details[data-panel]").forEach(function (panel) {
      panel.open = false;
    });
    if (list && selected) select(selected);
    else if (document.activeElement) document.activeElement.blur();
  }

  function openDetail(row) {
    if (row && row.dataset.detail) window.location.href = row.dataset.detail;
  }

  function refreshAfter() {
    var after = document.getElementById("inbox-after");
    if (after && list) after.hidden = waiting().length > 0;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (event.key === "Escape") {
      if (help && help.open) return; // the dialog closes itself
      if (target.closest && target.closest(".review")) {
        event.preventDefault();
        closePanels();
      }
      return;
    }
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) {
      // In the override form, Enter on the option list submits as Enter on the reason does.
      if (event.key === "Enter" && target.tagName === "SELECT" && target.form) {
        event.preventDefault();
        target.form.requestSubmit();
      }
      return;
    }
    if (help && help.open) {
      if (event.key === "?") help.close();
      return;
    }
    switch (event.key) {
      case "j":
        move(1);
        break;
      case "k":
        move(-1);
        break;
      case "a":
        approve();
        break;
      case "o":
        openPanel("override");
        break;
      case "r":
        openPanel("reject");
        break;
      case "e":
        editDraft();
        break;
      case "?":
        if (!help) return;
        help.showModal();
        break;
      case "Enter":
      case " ":
        // Only on the row itself: links, buttons and summaries keep their own meaning.
        if (!list || !selected || (target !== selected && target !== document.body)) return;
        openDetail(selected);
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  if (list) {
    list.addEventListener("click", function (event) {
      var row = event.target.closest(".inbox-item");
      if (!row) return;
      if (event.target.closest(".review, a, button, summary, input, textarea, select, pre")) {
        if (row !== selected && !row.hasAttribute("data-done")) select(row, false);
        return;
      }
      if (String(window.getSelection ? window.getSelection() : "")) return; // selecting text
      openDetail(row);
    });

    list.addEventListener("focusin", function (event) {
      var row = event.target.closest(".inbox-item");
      if (row && row !== selected && !row.hasAttribute("data-done")) select(row, false);
    });

    // After a review: a confirmed row hands the selection to the next waiting one; a row
    // that came back with an error keeps it, with the focus on the field to fix.
    document.body.addEventListener("htmx:afterSettle", function (event) {
      var path = (event.detail.pathInfo && event.detail.pathInfo.requestPath) || "";
      var found = /\/decisions\/(\d+)\/review/.exec(path);
      if (!found) return;
      var row = document.getElementById("decision-" + found[1]);
      if (!row) return;
      if (row.hasAttribute("data-done")) {
        var all = rows();
        var at = all.indexOf(row);
        var after = all.slice(at + 1).concat(all.slice(0, at).reverse());
        var next = after.filter(function (other) {
          return !other.hasAttribute("data-done");
        })[0];
        if (next) select(next);
        else {
          select(null);
          var note = document.getElementById("inbox-after");
          if (note) note.focus({ preventScroll: false });
        }
      } else {
        select(row, false);
        var field = row.querySelector("[aria-invalid=true]") || row.querySelector("details[open] select, details[open] input[type=text]");
        (field || row).focus();
      }
      refreshAfter();
    });

    var first = waiting()[0];
    if (first) select(first);
    refreshAfter();
  } else {
    // A decision's page: after an error, focus the field to fix.
    document.body.addEventListener("htmx:afterSettle", function () {
      var review = document.getElementById("review");
      var field = review && review.querySelector("[aria-invalid=true]");
      if (field) field.focus();
    });
  }

  document.querySelectorAll("[data-help-open]").forEach(function (button) {
    button.addEventListener("click", function () {
      if (help) help.showModal();
    });
  });
})();
