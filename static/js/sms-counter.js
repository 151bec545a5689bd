// Live SMS segment count under each <textarea data-sms-counter="ID"> (progressive
// enhancement: the server shows the same count after saving). Same rules as
// paris_avenir/messaging/sms_segments.py: GSM-7 160/153, else UCS-2 70/67; an empty box
// counts the built-in text (data-sms-default), which is what is sent.
(function () {
  "use strict";
  var basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var extension = "^{}\\[~]|€\f";
  function measure(text) {
    var septets = 0, gsm = true;
    for (var i = 0; i < text.length; i++) {
      var c = text.charAt(i);
      if (basic.indexOf(c) >= 0) { septets += 1; }
      else if (extension.indexOf(c) >= 0) { septets += 2; }
      else { gsm = false; break; }
    }
    if (gsm) { return { encoding: "GSM-7", segments: septets <= 160 ? 1 : Math.ceil(septets / 153) }; }
    var units = text.length; // JavaScript strings count UTF-16 code units, as UCS-2 does
    // (Arabic, Dari, Pashto, Tigrinya: 70 characters, 67 per part when longer)
    return { encoding: "UCS-2", segments: units <= 70 ? 1 : Math.ceil(units / 67) };
  }
  // As sms_segments.fit_gsm7 does when an SMS is queued: accents and typographic signs are
  // folded to GSM-7 ("bientôt" → "bientot") when that is all that stands in the way.
  var lookalikes = { "\u2019": "'", "\u2018": "'", "\u00ab": '"', "\u00bb": '"', "\u201c": '"',
    "\u201d": '"', "\u00a0": " ", "\u202f": " ", "\u2013": "-", "\u2014": "-",
    "\u2026": "...", "\u0153": "oe", "\u0152": "OE", "\u00e7": "c" };
  function isGsm(text) {
    for (var i = 0; i < text.length; i++) {
      var c = text.charAt(i);
      if (basic.indexOf(c) < 0 && extension.indexOf(c) < 0) { return false; }
    }
    return true;
  }
  function fold(text) {
    if (isGsm(text)) { return text; }
    var out = "";
    for (var i = 0; i < text.length; i++) {
      var c = text.charAt(i);
      var d = Object.prototype.hasOwnProperty.call(lookalikes, c) ? lookalikes[c] : c;
      out += (isGsm(d) || !d.normalize) ? d : d.normalize("NFD").charAt(0);
    }
    return isGsm(out) ? out : text;
  }
  function wire(area) {
    var output = document.getElementById(area.getAttribute("data-sms-counter"));
    if (!output) { return; }
    var sample = area.getAttribute("data-sms-sample") || "";
    // An empty box sends the built-in text: count that one, and say so.
    var fallback = area.getAttribute("data-sms-default") || "";
    var defaultNote = output.getAttribute("data-default-note") || "";
    function update() {
      var empty = area.value.trim() === "";
      var text = empty ? fallback : area.value.trim();
      var size = measure(fold(text.replace(/\{[a-z_]+\}/g, sample)));
      output.textContent = size.segments + " SMS (" + size.encoding + ")" +
        (empty && defaultNote ? " — " + defaultNote : "");
    }
    area.addEventListener("input", update);
    update();
  }
  function init() {
    var areas = document.querySelectorAll("textarea[data-sms-counter]");
    for (var i = 0; i < areas.length; i++) { wire(areas[i]); }
  }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);
})();
