// Proof of work for the report form (channels/proof.py): while the reporter types, find a
// number whose SHA-256 with the page's challenge starts with the asked-for zero bits, and
// put it in the form. Without Web Crypto the form is sent as it is, under the ordinary limits.
(function () {
  "use strict";
  var challenge = document.querySelector('input[name="pow_challenge"]');
  var solution = document.querySelector('input[name="pow_solution"]');
  if (!challenge || !solution || !window.crypto || !window.crypto.subtle) { return; }
  var bits = parseInt(challenge.value.split(".")[3], 10);
  var encoder = new TextEncoder();

  function zeroBits(bytes) {
    var count = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { count += 8; continue; }
      var b = bytes[i];
      while ((b & 0x80) === 0) { count += 1; b <<= 1; }
      return count;
    }
    return count;
  }

  async function search() {
    for (var n = 0; n < 1e9; n++) {
      var digest = await window.crypto.subtle.digest(
        "SHA-256", encoder.encode(challenge.value + ":" + n));
      if (zeroBits(new Uint8Array(digest)) >= bits) {
        solution.value = String(n);
        solution.dispatchEvent(new Event("change"));
        return;
      }
    }
  }
  search();
})();
