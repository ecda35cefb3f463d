"use strict";
// One key for each of the frequent actions: a button with data-key="a" is pressed by the A key,
// and shows its key on itself (<kbd>A</kbd>). Keys do nothing while the person is typing in a
// field, with Ctrl, Alt or Meta held (the browser's own shortcuts), or while a viewer or dialog is
// open over the page; a disabled or hidden button is not pressed.

(() => {
const TYPING = new Set(["INPUT", "TEXTAREA", "SELECT"]);

function typing(target) {
  return target instanceof Element && (TYPING.has(target.tagName) || target.isContentEditable);
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.altKey || event.metaKey || event.repeat || typing(event.target)) return;
  if (document.querySelector("dialog[open]")) return;
  const button = document.querySelector(`button[data-key="${CSS.escape(event.key.toLowerCase())}"]`);
  if (!button || button.disabled || button.offsetParent === null) return;
  event.preventDefault();
  button.click();
});
})();
