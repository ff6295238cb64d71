// The playbooks pages (opsloop/web/pages/playbooks.py).
//
// 1. The YAML editor (templates/playbook_editor.html): line numbers beside the text, a mark on
//    each line the last check found a problem at, and a click on "line N" selects that line.
//    The check itself is htmx's: it swaps the problem list into #problems, read back here.
// 2. A backtest report arrives through htmx after the page loaded, so static/charts.js (which
//    draws the charts present at load) has not seen its chart: draw it here, with the same
//    Vega-Embed options as charts.js (no eval, no injected styles: the page's CSP allows neither).
(function () {
  "use strict";

  var CHART_OPTIONS = {
    ast: true,
    defaultStyle: false,
    tooltip: { disableDefaultStyle: true },
    actions: false,
    renderer: "svg",
  };

  function drawCharts(root) {
    if (!window.vegaEmbed) return;
    root.querySelectorAll("[data-chart]:not([data-drawn])").forEach(function (box) {
      var source = document.getElementById(box.getAttribute("data-chart"));
      if (!source) return;
      box.setAttribute("data-drawn", "pending");
      window.vegaEmbed(box, JSON.parse(source.textContent), CHART_OPTIONS).then(
        function () { box.setAttribute("data-drawn", "true"); },
        function (error) {
          box.setAttribute("data-drawn", "error");
          box.textContent = "This chart could not be drawn: " + error.message;
          console.error(error);
        },
      );
    });
  }

  function setupEditor(editor) {
    var area = editor.querySelector("textarea");
    var gutter = editor.querySelector(".pb-gutter");
    var marked = new Set();

    function draw() {
      var count = area.value.split("\n").length;
      var spans = [];
      for (var n = 1; n <= count; n++) {
        var span = document.createElement("span");
        span.textContent = String(n);
        if (marked.has(n)) {
          span.className = "pb-bad-line";
          span.title = "a problem on this line";
        }
        spans.push(span);
      }
      gutter.replaceChildren.apply(gutter, spans);
      gutter.scrollTop = area.scrollTop;
    }

    function readProblems() {
      marked = new Set();
      document.querySelectorAll("#problems [data-line]").forEach(function (item) {
        marked.add(Number(item.getAttribute("data-line")));
      });
      draw();
    }

    function goTo(line) {
      var lines = area.value.split("\n");
      var start = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
      area.focus();
      area.setSelectionRange(start, start + (lines[line - 1] || "").length);
      var height = parseFloat(getComputedStyle(area).lineHeight) || 20;
      area.scrollTop = Math.max(0, (line - 1) * height - area.clientHeight / 2);
    }

    area.addEventListener("input", draw);
    area.addEventListener("scroll", function () { gutter.scrollTop = area.scrollTop; });
    document.body.addEventListener("htmx:afterSettle", function (event) {
      if (event.target && event.target.id === "problems") readProblems();
    });
    document.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest(".pb-goto");
      if (!link) return;
      event.preventDefault();
      goTo(Number(link.getAttribute("data-line")));
    });
    readProblems();
  }

  // 3. A refusal the page explains (409: a template that is already installed) comes back as
  //    the box it replaces, with the reason: swap it in like a success when the target says so
  //    (data-swap-refusal). htmx swaps 422 by itself.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (event.detail.xhr.status === 409 && target && target.closest && target.closest("[data-swap-refusal]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.querySelectorAll("[data-playbook-editor]").forEach(setupEditor);
  document.body.addEventListener("htmx:afterSettle", function (event) {
    drawCharts(event.target);
  });
})();
