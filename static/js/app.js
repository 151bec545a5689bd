// Paris avenir: the little JavaScript the site uses, all of it optional. Every journey works
// without it; with it, htmx swaps parts of pages, and this file makes sure keyboard and
// screen-reader users follow: focus goes to the new heading (or the first error) and the
// status region says what changed. It also installs the offline page's service worker.
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("annonce");
    if (!region || !text) return;
    region.textContent = "";
    // A new text node after a short pause is read out even if it equals the last one.
    window.setTimeout(function () { region.textContent = text.trim(); }, 50);
  }

  function focusable(element, keepScroll) {
    if (!element.matches("a, button, input, select, textarea, [tabindex]")) {
      element.setAttribute("tabindex", "-1");
    }
    element.focus({ preventScroll: !!keepScroll });
  }

  function focusAfterSwap(container) {
    var root = container === document.body ? document.getElementById("contenu") || document.body : container;
    var alert = root.querySelector("[role='alert']");
    var invalid = root.querySelector("[aria-invalid='true']");
    if (alert || invalid) {
      focusable(alert || invalid);
      var message = alert || root.querySelector(".field-error");
      announce(message ? message.textContent : "");
      return;
    }
    var heading = root.querySelector("h1, h2, h3");
    if (heading) {
      // A new page starts at the top (its menu stays in view); a part of a page scrolls to
      // what changed.
      focusable(heading, container === document.body);
      announce(heading.textContent);
    } else {
      announce(document.title);
    }
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id === "toast") return;
    focusAfterSwap(target);
  });

  if ("serviceWorker" in navigator && window.isSecureContext) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js").catch(function () { /* the site works without it */ });
    });
  }
})();
