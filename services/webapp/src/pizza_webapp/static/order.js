// Live order status: polls the shop's JSON API and updates the page in place.
// Everything from the server goes in through textContent, never as HTML.
(function () {
  "use strict";

  // Status code -> short name, the CSS class; the page carries kafka_common.shop.status's table.
  var orderSection = document.getElementById("order");
  var STATUS_CLASSES = orderSection ? JSON.parse(orderSection.getAttribute("data-status-names") || "{}") : {};
  var POLL_MS = 1000;
  var MAX_BACKOFF_MS = 8000;

  function localTime(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) { return "—"; }
    return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function localiseTimes(root) {
    var times = root.querySelectorAll("time.js-local-time");
    for (var i = 0; i < times.length; i++) {
      var iso = times[i].getAttribute("datetime");
      if (iso) { times[i].textContent = localTime(iso); }
    }
  }

  function statusClass(status) {
    if (typeof status !== "number") { return "unknown"; }
    if (status < 0) { return "error"; }
    return STATUS_CLASSES[status] || "unknown";
  }

  function isFinal(status) {
    return typeof status === "number" && (status >= 400 || status < 0);
  }

  function render(section, order) {
    var text = document.getElementById("status-text");
    text.textContent = order.status_text;
    text.className = "status-now status-" + statusClass(order.status);
    section.setAttribute("data-status", String(order.status));

    var steps = document.querySelectorAll("#progress li");
    for (var i = 0; i < steps.length; i++) {
      var step = Number(steps[i].getAttribute("data-step"));
      steps[i].classList.toggle("done", typeof order.status === "number" && order.status >= step);
    }

    var pizza = order.order || {};
    var fields = section.querySelectorAll("[data-field]");
    for (var j = 0; j < fields.length; j++) {
      var name = fields[j].getAttribute("data-field");
      var value = pizza[name];
      if (name === "extra_toppings") {
        value = value && value.length ? value.join(", ") : "none";
      }
      if (value !== undefined) { fields[j].textContent = value; }
    }

    var timeline = document.getElementById("timeline");
    var items = document.createDocumentFragment();
    (order.events || []).forEach(function (event) {
      var li = document.createElement("li");
      var time = document.createElement("time");
      time.setAttribute("datetime", event.at);
      time.textContent = localTime(event.at);
      var label = document.createElement("span");
      label.textContent = event.status_text;
      li.appendChild(time);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(label);
      items.appendChild(li);
    });
    timeline.replaceChildren(items);
  }

  function follow(section) {
    var url = section.getAttribute("data-order-url");
    var banner = document.getElementById("status-unavailable");
    var delay = POLL_MS;

    function schedule(ms) { window.setTimeout(poll, ms); }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (response.status === 200) {
            return response.json().then(function (order) {
              banner.hidden = true;
              render(section, order);
              delay = POLL_MS;
              if (!isFinal(order.status)) { schedule(delay); }
            });
          }
          if (response.status === 401 || response.status === 404) {
            banner.textContent = response.status === 401
              ? "Your session has ended. Please log in again to follow this order."
              : "We could not find this order.";
            banner.hidden = false;
            return null;
          }
          throw new Error("status " + response.status);
        })
        .catch(function () {
          banner.hidden = false;
          delay = Math.min(delay * 2, MAX_BACKOFF_MS);
          schedule(delay);
        });
    }

    var current = section.getAttribute("data-status");
    if (current === "" || !isFinal(Number(current))) { schedule(POLL_MS); }
  }

  localiseTimes(document);
  var section = document.getElementById("order");
  if (section && section.getAttribute("data-order-url") && window.fetch) { follow(section); }
})();
