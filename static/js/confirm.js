// Every destructive action links to its confirmation page (GET shows what will happen, its form
// POSTs the action), which works without JavaScript. Where the browser has <dialog>, the same
// page's confirmation opens in a modal dialog over the current page instead; its form still
// POSTs normally, so the answer is the same redirect and message.
(function () {
  "use strict";
  if (typeof HTMLDialogElement !== "function" || !window.fetch || !window.DOMParser) {
    return;
  }

  function open(link, html) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var section = page.querySelector("[data-confirm-page]");
    if (!section) {
      throw new Error("not a confirmation page");
    }
    var dialog = document.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-heading");
    dialog.appendChild(document.importNode(section, true));
    var cancel = dialog.querySelector("[data-confirm-cancel]");
    if (cancel) {
      cancel.addEventListener("click", function (event) {
        event.preventDefault();
        dialog.close();
      });
    }
    dialog.addEventListener("close", function () {
      dialog.remove();
      link.focus();
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[data-confirm]") : null;
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    fetch(link.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.text();
      })
      .then(function (html) {
        open(link, html);
      })
      .catch(function () {
        // Refused, gone or not a confirmation: the page itself says why.
        window.location.assign(link.href);
      });
  });
})();
