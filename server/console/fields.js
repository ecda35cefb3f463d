"use strict";
// A refusal's problems shown next to the fields they are about. The server names each problem's
// field ({"errors": [{"field", "code", "message"}]}, docs/casework.md); inputs say which field
// they hold with data-field. The problems go next to the inputs of the form or panel the person
// last acted in, and the #error box (common.js) is cleared once every problem has its place; one
// without a field there stays in the box. Acting in that form again clears them. Pages load it
// after common.js; the handlers that send need not know it exists: a refusal they do not catch
// arrives here as an unhandled rejection carrying the body (request()).

(() => {
let scope = document; // where the person last acted

function clearIn(root) {
  for (const note of root.querySelectorAll(".field-error")) note.remove();
  for (const input of root.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

function problemsOf(body) {
  if (!body) return [];
  if (Array.isArray(body.errors)) return body.errors.map((e) => ({ field: e.field, message: e.message }));
  return body.field ? [{ field: body.field, message: body.detail }] : [];
}

// "liabilities.0.liability" is the first party's liability: the exact name first, then its head.
function inputFor(field) {
  if (!field) return null;
  const named = (name) => scope.querySelector(`[data-field="${CSS.escape(name)}"]`);
  return named(field) || named(field.split(".")[0]);
}

function show(error) {
  const problems = problemsOf(error.body);
  let placed = 0;
  for (const { field, message } of problems) {
    const input = inputFor(field);
    if (!input) continue;
    input.setAttribute("aria-invalid", "true");
    const holder = input.closest("label") || input.parentNode;
    holder.appendChild(el("span", { class: "field-error", role: "alert", "data-field": field }, message));
    placed += 1;
  }
  if (placed > 0 && placed === problems.length) showError("");
}

function actIn(target) {
  scope = target.closest("form, section") || document;
  clearIn(scope);
}

document.addEventListener("submit", (event) => actIn(event.target), true);
document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (button) actIn(button);
}, true);
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason && event.reason.body) show(event.reason);
});
})();
