// The review app's few behaviours, without inline scripts (the CSP forbids them).
"use strict";

// A button with data-confirm asks before its form is sent (approving a deletion cannot be undone).
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});
