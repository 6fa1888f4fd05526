/* lawful cookie banner. Include once: <script src="https://LAWFUL/banner.js" defer></script>
 * Exposes window.lawful.consent ({category: true|false}) and fires a `lawful:consent`
 * event on window whenever it changes; <script type="text/plain" data-category="X">
 * tags run only once category X is accepted. Honours navigator.globalPrivacyControl:
 * categories that sell or share personal information start refused. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || (window.lawful && window.lawful.loaded)) return;
  var base = new URL(me.src, location.href).origin;
  var api = base + "/api/v1/cookies";
  var COOKIE = "lawful_device";
  var gpc = navigator.globalPrivacyControl === true;
  var lawful = (window.lawful = window.lawful || {});
  lawful.loaded = true;
  lawful.consent = {};
  lawful.gpc = gpc;

  function deviceId() {
    var m = document.cookie.match(/(?:^|;\s*)lawful_device=([A-Za-z0-9_-]{16,64})/);
    if (m) return m[1];
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    var id = btoa(String.fromCharCode.apply(null, bytes))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    var secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = COOKIE + "=" + id + "; Path=/; Max-Age=31536000; SameSite=Lax" + secure;
    return id;
  }
  var device = deviceId();

  function getJSON(url, options) {
    return fetch(url, Object.assign({ credentials: "omit" }, options || {})).then(function (r) {
      if (!r.ok) throw new Error("lawful: " + url + " answered " + r.status);
      return r.json();
    });
  }

  // Run the blocked scripts of every accepted category, once each.
  function unblock() {
    var tags = document.querySelectorAll('script[type="text/plain"][data-category]');
    Array.prototype.forEach.call(tags, function (tag) {
      if (tag.dataset.lawfulRan || lawful.consent[tag.dataset.category] !== true) return;
      tag.dataset.lawfulRan = "1";
      var run = document.createElement("script");
      Array.prototype.forEach.call(tag.attributes, function (a) {
        if (a.name !== "type" && a.name !== "data-category") run.setAttribute(a.name, a.value);
      });
      if (!tag.src) run.textContent = tag.textContent;
      tag.parentNode.insertBefore(run, tag.nextSibling);
    });
  }

  function publish(choices, categories) {
    var consent = {};
    categories.forEach(function (c) {
      consent[c.key] = !c.optional || choices[c.key] === true;
    });
    lawful.consent = consent;
    unblock();
    window.dispatchEvent(new CustomEvent("lawful:consent", { detail: consent }));
  }

  function save(choices, categories) {
    var body = { device: device, choices: choices, gpc: gpc };
    return getJSON(api + "/choice", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(function (answer) {
      publish(answer.choices, categories);
    });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  var STYLE =
    "#lawful-banner{position:fixed;left:0;right:0;bottom:0;z-index:2147483647;background:#fff;" +
    "color:#111;border-top:2px solid #111;padding:1rem;font:16px/1.4 system-ui,sans-serif}" +
    "#lawful-banner button{font:inherit;margin:.25rem .5rem .25rem 0;padding:.4rem .9rem;" +
    "border:2px solid #111;background:#111;color:#fff;cursor:pointer}" +
    "#lawful-banner button.lawful-secondary{background:#fff;color:#111}" +
    "#lawful-banner button:focus-visible,#lawful-banner input:focus-visible{outline:3px solid #005fcc;outline-offset:2px}" +
    "#lawful-banner fieldset{border:0;padding:0;margin:.5rem 0}" +
    "#lawful-banner label{display:block;margin:.25rem 0}";

  function show(config, current) {
    var old = document.getElementById("lawful-banner");
    if (old) old.remove();
    var categories = config.categories;
    var honourGpc = gpc && config.gpc;
    var box = el("div", {
      id: "lawful-banner", role: "dialog", "aria-modal": "false",
      "aria-labelledby": "lawful-title", "aria-describedby": "lawful-text",
    });
    box.appendChild(el("style", {}, STYLE));
    box.appendChild(el("h2", { id: "lawful-title", style: "font-size:1.1rem;margin:0 0 .5rem" },
      "Cookies on this site"));
    box.appendChild(el("p", { id: "lawful-text", style: "margin:0 0 .5rem" },
      config.controller + " uses strictly necessary cookies to run this site. " +
      "With your permission it also uses the others below."));
    if (honourGpc) {
      box.appendChild(el("p", { id: "lawful-gpc" },
        "Your browser sends Global Privacy Control: cookies that sell or share your " +
        "personal information stay off unless you turn them on."));
    }
    var fields = el("fieldset", { id: "lawful-choices" });
    fields.appendChild(el("legend", {}, "Cookie categories"));
    categories.forEach(function (c) {
      var label = el("label", {});
      var box_ = el("input", { type: "checkbox", name: c.key, id: "lawful-" + c.key });
      var on = !c.optional ||
        (current && c.key in current ? current[c.key] : false);
      box_.checked = on;
      if (!c.optional) box_.disabled = true;
      label.appendChild(box_);
      label.appendChild(document.createTextNode(" " + c.name +
        (c.optional ? "" : " (always on)") + (c.description ? ": " + c.description : "")));
      fields.appendChild(label);
    });
    box.appendChild(fields);

    function pick(all) {
      var choices = {};
      categories.forEach(function (c) {
        if (!c.optional) return;
        if (all === true) choices[c.key] = !(honourGpc && c.sale_share);
        else if (all === false) choices[c.key] = false;
        else choices[c.key] = document.getElementById("lawful-" + c.key).checked;
      });
      return choices;
    }
    function button(id, text, all, secondary) {
      var b = el("button", { type: "button", id: id }, text);
      if (secondary) b.className = "lawful-secondary";
      b.addEventListener("click", function () {
        save(pick(all), categories).then(function () { box.remove(); }, function (e) {
          console.error(e);
        });
      });
      box.appendChild(b);
      return b;
    }
    var first = button("lawful-accept", "Accept all", true, false);
    button("lawful-reject", "Reject all", false, false);
    button("lawful-save", "Save my choices", undefined, true);
    box.addEventListener("keydown", function (e) {
      if (e.key === "Escape") box.remove();  // closing is not a choice: nothing optional runs
    });
    document.body.appendChild(box);
    first.focus();
  }

  function start() {
    Promise.all([
      getJSON(api + "/categories"),
      getJSON(api + "/choice?device=" + encodeURIComponent(device)),
    ]).then(function (answers) {
      var config = answers[0], mine = answers[1];
      lawful.categories = config.categories;
      lawful.open = function () { show(config, lawful.consent); };
      var honourGpc = gpc && config.gpc;
      var initial = {};
      config.categories.forEach(function (c) {
        // Until a choice is made nothing optional runs (GPC: sale/share stay refused).
        initial[c.key] = mine.decided && c.key in mine.choices ? mine.choices[c.key] : false;
        if (honourGpc && c.sale_share && !(mine.decided && c.key in mine.choices)) {
          initial[c.key] = false;
        }
      });
      publish(initial, config.categories);
      if (!mine.decided) show(config, initial);
    }).catch(function (e) {
      console.error(e);  // lawful unreachable: strictly necessary only, scripts stay blocked
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
