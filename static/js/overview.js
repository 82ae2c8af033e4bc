// Settings → Security's chart of sign-ins per day, drawn with uPlot (static/vendor/) from the
// page's json_script data: no inline script, so the Content-Security-Policy stays script-src
// 'self'. The table beside it carries the same numbers for readers without the picture.
(function () {
  "use strict";

  function draw() {
    var source = document.getElementById("sign-in-chart-data");
    var target = document.getElementById("sign-in-chart");
    if (!source || !target || typeof window.uPlot === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    // Each day is the viewer's own (the server counted them in the page's zone); drawn as UTC
    // midnights so the browser's zone moves no point to the day before.
    var x = data.days.map(function (day) {
      return Date.parse(day + "T00:00:00Z") / 1000;
    });
    var style = getComputedStyle(document.documentElement);
    var colour = function (name, fallback) {
      return style.getPropertyValue(name).trim() || fallback;
    };
    var width = function () {
      return Math.max(240, target.clientWidth);
    };
    var chart = new window.uPlot(
      {
        width: width(),
        height: 220,
        tzDate: function (ts) {
          return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");
        },
        scales: { y: { range: function (u, min, max) { return [0, Math.max(4, max)]; } } },
        axes: [{}, { size: 40 }],
        series: [
          { label: "Day", value: "{YYYY}-{MM}-{DD}" },
          { label: "Sign-ins", stroke: colour("--accent", "#2454c5"), width: 2, points: { show: true } },
          { label: "Failed", stroke: colour("--bad", "#b42318"), width: 2, points: { show: true } },
        ],
      },
      [x, data.succeeded, data.failed],
      target
    );
    if (typeof window.ResizeObserver !== "undefined") {
      new window.ResizeObserver(function () {
        if (Math.abs(chart.width - width()) > 4) {
          chart.setSize({ width: width(), height: 220 });
        }
      }).observe(target);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
