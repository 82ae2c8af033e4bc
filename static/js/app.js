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

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      return "";
    }
  }

  // The sign-in form carries the browser's time zone: a person who has none stored gets it
  // with the sign-in, so the first page after it already shows their times.
  Array.prototype.forEach.call(document.querySelectorAll("[data-browser-time-zone]"), function (input) {
    input.value = browserZone();
  });

  // A person still without a zone (signed in before zones were kept): base.html marks the zone
  // label; store the browser's, which the next page shows. No reload: it would pull the page
  // from under whatever the person (or a test) is doing.
  var zoneLabel = document.querySelector("[data-time-zone-detect]");
  var zone = zoneLabel ? browserZone() : "";
  if (zone && window.fetch && window.FormData) {
    var body = new FormData();
    body.append("time_zone", zone);
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    fetch(zoneLabel.getAttribute("data-time-zone-detect"), {
      method: "POST",
      body: body,
      headers: headers,
      credentials: "same-origin",
    }).catch(function () {});
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

  // After an HTMX swap the page holds one element per id: a response whose only element has the
  // target's own id (the Activity Log's #results) replaces the target instead of nesting in it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.id || !event.detail.shouldSwap) return;
    var parsed = document.createElement("template");
    parsed.innerHTML = event.detail.serverResponse;
    var root = parsed.content.firstElementChild;
    if (root && parsed.content.childElementCount === 1 && root.id === target.id) {
      event.detail.swapOverride = "outerHTML";
    }
  });

  // The menu: each group is a disclosure button (Enter and Space click a button already), one
  // open at a time; Escape, a click elsewhere or Tab out of the group closes it. On narrow
  // screens the whole menu is behind the toggle. Without scripts, app.css shows every link.
  function buttons() {
    return document.querySelectorAll(".menu-button[aria-expanded=true]");
  }
  function closeGroups(except) {
    buttons().forEach(function (button) {
      if (button !== except) button.setAttribute("aria-expanded", "false");
    });
  }
  function toggle(button) {
    var open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    return open;
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest(".menu-button, .menu-toggle");
    if (button) {
      if (button.classList.contains("menu-button")) closeGroups(button);
      toggle(button);
      return;
    }
    if (!event.target.closest(".menu-group")) closeGroups(null);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = buttons();
    if (open.length) {
      closeGroups(null);
      open[0].focus();
      return;
    }
    var menuToggle = document.querySelector(".menu-toggle[aria-expanded=true]");
    if (menuToggle) {
      menuToggle.setAttribute("aria-expanded", "false");
      menuToggle.focus();
    }
  });
  document.addEventListener("focusout", function (event) {
    var group = event.target.closest && event.target.closest(".menu-group");
    if (group && event.relatedTarget && !group.contains(event.relatedTarget)) {
      var button = group.querySelector(".menu-button");
      if (button) button.setAttribute("aria-expanded", "false");
    }
  });
})();
