// fixit console: the little the pages need besides htmx. No inline scripts: the
// Content-Security-Policy allows only same-origin files.
(function () {
  "use strict";
  // Keep the conversation scrolled to its newest message, on load and after
  // every live update.
  function toNewest() {
    ["thread", "trace"].forEach(function (id) {
      var t = document.getElementById(id);
      if (t) { t.scrollTop = t.scrollHeight; }
    });
  }
  document.addEventListener("DOMContentLoaded", toNewest);
  document.addEventListener("htmx:afterSettle", toNewest);
  // A control's details element opened: put the cursor in its first field.
  document.addEventListener("toggle", function (e) {
    var d = e.target;
    if (d.tagName === "DETAILS" && d.open && d.closest(".controls")) {
      var f = d.querySelector("input:not([type=hidden]), select, textarea");
      if (f) { f.focus(); }
    }
  }, true);
})();
