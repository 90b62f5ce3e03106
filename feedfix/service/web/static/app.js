// feedfix pages: copy buttons, and rule toggles that apply themselves. Pages work without it.
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest(".copy-button");
  if (!button) return;
  const text = button.dataset.copy;
  const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => {});
  } else {
    const input = button.previousElementSibling;
    input.select();
    try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
  }
});
document.addEventListener("change", (event) => {
  const box = event.target.closest(".rules-form .rule-toggle");
  if (box) box.form.requestSubmit();
});
