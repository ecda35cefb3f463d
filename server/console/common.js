"use strict";
// What every console page needs: building elements, and calling the API the way the case pages
// do (a lost session goes to the login page; a refusal shows its reason in the page's #error box).
// The queue and fleet pages keep their own api(): they have no #error box.

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function showError(text) {
  const box = document.getElementById("error");
  box.textContent = text;
  box.hidden = !text;
}

async function request(path, options = {}) {
  const response = await fetch(path, options);
  if (response.status === 401) {
    window.location.assign("/login");
    throw new Error("login required");
  }
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    // FastAPI's validation errors are a list; our own refusals a string.
    const detail = Array.isArray(body.detail)
      ? body.detail.map((d) => `${d.loc.slice(1).join(".")}: ${d.msg.replace(/^Value error, /, "")}`).join("; ")
      : body.detail;
    showError(detail);
    throw new Error(detail);
  }
  showError("");
  return body;
}
