// Draws every chart on the page: an element with data-chart="ID" gets the Vega-Lite spec in
// <script type="application/json" id="ID"> (made on the server by Altair,
// opsloop/web/pages/charts.py).
// Vega, Vega-Lite and Vega-Embed are vendored in static/vendor/; nothing is fetched from elsewhere.
(function () {
  "use strict";

  var OPTIONS = {
    // Evaluate Vega expressions with the bundled interpreter instead of `new Function`:
    // the page's Content-Security-Policy has no 'unsafe-eval'.
    ast: true,
    // No injected <style> elements either: their replacements are in opsloop.css.
    defaultStyle: false,
    tooltip: { disableDefaultStyle: true },
    // No export menu and no "open in the Vega editor" link (that one is a remote site).
    actions: false,
    renderer: "svg",
  };

  function draw(box) {
    var source = document.getElementById(box.getAttribute("data-chart"));
    if (!source) {
      return Promise.resolve();
    }
    var spec = JSON.parse(source.textContent);
    return window.vegaEmbed(box, spec, OPTIONS).then(
      function () {
        box.setAttribute("data-drawn", "true");
      },
      function (error) {
        box.setAttribute("data-drawn", "error");
        box.textContent = "This chart could not be drawn: " + error.message;
        console.error(error);
      },
    );
  }

  function drawAll() {
    var boxes = document.querySelectorAll("[data-chart]");
    if (!window.vegaEmbed) {
      boxes.forEach(function (box) {
        box.textContent = "The chart library did not load; reload the page.";
      });
      return;
    }
    boxes.forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
