// The Test button queues a send on the worker; while a test is pending, fetch this page
// again every 2 s and swap in each channel's test status, so its outcome shows when it lands
// without reloading the page (and without losing what is typed in the form).
(function () {
  var deadline = Date.now() + 120000;
  function pending() { return document.querySelectorAll("[data-testid^='test-status-'][data-pending]"); }
  function poll() {
    if (!pending().length || Date.now() > deadline) { return; }
    fetch(window.location.pathname, {credentials: "same-origin"})
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        pending().forEach(function (span) {
          var update = fresh.querySelector("[data-testid='" + span.dataset.testid + "']");
          if (update) { span.replaceWith(update); }
        });
      })
      .finally(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 2000);
})();
