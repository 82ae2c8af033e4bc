// Activity Monitor's own script, served from static/ so that the Content-Security-Policy can
// refuse every inline script and event handler (script-src 'self').
(function () {
  "use strict";

  // Audit Log and Activity Log filters: dates mean the viewer's own days, so send the browser's
  // time zone unless a link fixed one.
  var tz = document.getElementById("id_tz");
  if (tz && !tz.value) {
    try {
      tz.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    } catch (e) {
      tz.value = "UTC";
    }
  }

  // Bad input answers 400 with the reasons in the fragment. A target marked
  // data-swap-on-400 (filter results, alert triage) shows them, as the full page would.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (event.detail.xhr.status === 400 && target && target.hasAttribute("data-swap-on-400")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
