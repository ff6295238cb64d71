/* OpsLoop tracking snippet (docs/sources.md#the-snippet). Sends a page view on load; offers
   opsloop.track(name, properties), opsloop.page(properties), opsloop.identify(userId, traits)
   and opsloop.reset(). Talks only to the OpsLoop that served it, with no cookies; sends nothing
   when the browser asks not to be tracked (Do-Not-Track, Global Privacy Control). */
(function (w, d) {
  "use strict";
  var me = d.currentScript, n = w.navigator, queued = w.opsloop;
  if (!me) return;
  var key = me.getAttribute("data-key"), origin = new URL(me.src, d.baseURI).origin;
  var off = !key || n.doNotTrack === "1" || w.doNotTrack === "1" || n.globalPrivacyControl === true;
  var ANON = "opsloop_aid", USER = "opsloop_uid";

  function kept(name, value) {
    try {
      if (value === undefined) return w.localStorage.getItem(name);
      if (off) return null; // leave nothing behind either
      if (value === null) w.localStorage.removeItem(name);
      else w.localStorage.setItem(name, value);
    } catch (e) { /* storage blocked: ids last for this page only */ }
    return null;
  }
  function id() {
    if (w.crypto && w.crypto.randomUUID) return w.crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  var anonymousId = kept(ANON) || id();
  var userId = kept(USER);
  kept(ANON, anonymousId);

  function page() {
    var l = w.location;
    return {url: l.href, path: l.pathname, search: l.search, title: d.title, referrer: d.referrer};
  }
  function campaign() {
    var out = {}, found = false;
    new URLSearchParams(w.location.search).forEach(function (value, name) {
      if (name.indexOf("utm_") === 0) {
        out[name === "utm_campaign" ? "name" : name.slice(4)] = value;
        found = true;
      }
    });
    return found ? out : undefined;
  }
  function send(type, call) {
    if (off) return;
    var now = new Date().toISOString();
    call.type = type;
    call.anonymousId = anonymousId;
    if (userId && !call.userId) call.userId = userId;
    call.messageId = id();
    call.originalTimestamp = call.sentAt = now;
    call.writeKey = key;
    call.context = {
      page: page(), campaign: campaign(), userAgent: n.userAgent, locale: n.language,
      library: {name: "opsloop-t.js", version: "1"}
    };
    // text/plain keeps this a simple CORS request (no preflight); keepalive lets it finish
    // while the page unloads.
    w.fetch(origin + "/v1/" + type, {
      method: "POST", body: JSON.stringify(call), keepalive: true, credentials: "omit",
      headers: {"Content-Type": "text/plain"}
    }).catch(function () { /* offline or refused: a page view is not worth a retry loop */ });
  }

  var api = {
    track: function (event, properties) {
      send("track", {event: String(event), properties: properties || {}});
    },
    page: function (properties) {
      var p = page(), k;
      for (k in properties || {}) p[k] = properties[k];
      send("page", {properties: p});
    },
    identify: function (user, traits) {
      if (user !== undefined && user !== null) { userId = String(user); kept(USER, userId); }
      send("identify", {userId: userId || undefined, traits: traits || {}});
    },
    reset: function () {
      userId = null; anonymousId = id(); kept(USER, null); kept(ANON, anonymousId);
    }
  };
  w.opsloop = api;
  api.page();
  // Calls made before this script loaded: window.opsloop = window.opsloop || [];
  // opsloop.push(["track", "Signed Up", {plan: "pro"}]);
  if (queued && queued.length) {
    for (var i = 0; i < queued.length; i++) api[queued[i][0]].apply(api, queued[i].slice(1));
  }
})(window, document);
