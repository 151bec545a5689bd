// Live SMS segment count under each <textarea data-sms-counter="ID"> (progressive
// enhancement: the server shows the same count after saving). Same rules as
// paris_avenir/messaging/sms_segments.py: GSM-7 160/153, else UCS-2 70/67.
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
    return { encoding: "UCS-2", segments: units <= 70 ? 1 : Math.ceil(units / 67) };
  }
  function wire(area) {
    var output = document.getElementById(area.getAttribute("data-sms-counter"));
    if (!output) { return; }
    var sample = area.getAttribute("data-sms-sample") || "";
    function update() {
      var size = measure(area.value.replace(/\{[a-z_]+\}/g, sample));
      output.textContent = size.segments + " SMS (" + size.encoding + ")";
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
