// Inside LINE (a LIFF page): hand the form the LIFF access token; the server asks LINE whose it is.
// Outside LINE nothing happens, and the form works as it does without JavaScript.
document.addEventListener("DOMContentLoaded", function () {
  var liffId = document.body.dataset.liffId;
  if (!liffId || typeof liff === "undefined") return;
  liff.init({ liffId: liffId }).then(function () {
    if (!liff.isInClient()) return;
    if (!liff.isLoggedIn()) { liff.login(); return; }
    var token = liff.getAccessToken() || "";
    document.querySelectorAll("input[name=access_token]").forEach(function (input) { input.value = token; });
  }).catch(function () { /* the form still works; the consultation is then not linked to LINE */ });
});
