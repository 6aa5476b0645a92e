"use strict";
// Copy the feed URL; older browsers and plain-http pages have no async clipboard, so fall back to execCommand.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  const status = button.closest("section").querySelector(".copy-status");
  field.select();
  let copied = false;
  try {
    await navigator.clipboard.writeText(field.value);
    copied = true;
  } catch (error) {
    copied = document.execCommand("copy");
  }
  status.textContent = copied ? "コピーしました。" : "コピーできませんでした。選択された文字をコピーしてください。";
});
