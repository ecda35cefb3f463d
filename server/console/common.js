"use strict";
// What every console page needs: building elements, Beijing time, and calling the API (a lost
// session goes to the login page; a refusal throws, its reason shown in the page's #error box
// where the page has one, and its HTTP status in the error's .status).

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

// Times are shown in Beijing time (Asia/Shanghai) whatever the console PC's own zone, with the
// date ("2026/5/3 14:05:09") or, where the date goes without saying, the time alone ("14:05:09").
const BEIJING = { timeZone: "Asia/Shanghai", hour12: false };
const beijingDateTime = (iso) => new Date(iso).toLocaleString("zh-CN", BEIJING);
const beijingTime = (iso) => new Date(iso).toLocaleTimeString("zh-CN", BEIJING);

// A refused request's message is cleared by the next request that succeeds; a page's own advice
// ("answer the call first") only by an action that succeeds (not a read), or a background refresh
// would wipe it before the operator has read it.
let errorFromRequest = false;
function showError(text, fromRequest = false) {
  const box = document.getElementById("error");
  if (!box) return;
  // A page that shows a refused request's message again (its catch) keeps it a request's.
  errorFromRequest = fromRequest || (errorFromRequest && text === box.textContent);
  box.textContent = text;
  box.hidden = !text;
}

async function request(path, options = {}) {
  const response = await fetch(path, options);
  if (response.status === 401) {
    window.location.assign("/login");
    throw Object.assign(new Error("login required"), { status: 401 });
  }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    // Every refusal is {detail, code}, a form's also {field, errors: [{field, code, message}]}
    // (docs/casework.md, "Errors"): one sentence, or each of a form's problems, as written.
    const problems = body && Array.isArray(body.errors) ? body.errors : [];
    const detail = problems.length > 1
      ? problems.map((p) => p.message).join("；")
      : body && typeof body.detail === "string" ? body.detail : `请求未能完成，请稍后再试 (${path}: ${response.status})`;
    showError(detail, true);
    // The body goes with it: a page shows each field's problem next to the field (fields.js).
    throw Object.assign(new Error(detail), { status: response.status, body });
  }
  if (errorFromRequest || (options.method || "GET") !== "GET") showError("");
  return body;
}

// A case page's live view of its own case: calls onUpdate with the case's summary whenever the
// server pushes a change (a delivery receipt, another operator's action), and onUpdate(null) once
// connected, since a change may have come before the feed did. A dropped feed is reconnected.
// The same feed carries the calls: the page's call modules (call.js and those beside it) hear of
// each connection as "kuaichu-queue-loaded" (the name they had on the queue) and of every message
// as "kuaichu-message", so a workspace holds one socket, not one per panel.
function watchCase(caseId, onUpdate, delay = 0) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${window.location.host}/api/ws`);
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") onUpdate(null);
    else if (message.type === "case.update" && String(message.case.id) === String(caseId)) onUpdate(message.case);
    if (message.type === "hello") window.dispatchEvent(new CustomEvent("kuaichu-queue-loaded", { detail: { ws } }));
    window.dispatchEvent(new CustomEvent("kuaichu-message", { detail: { message, ws } }));
  });
  ws.addEventListener("close", () => {
    const next = Math.min(Math.max(delay * 2, 500), 10000);
    const again = () => setTimeout(() => watchCase(caseId, onUpdate, next), next);
    request("/api/me").then(again, again); // a lost session goes to the login page instead
  });
}
