"use strict";
// The queue's call column: each case with a running call shows the call's state and an Answer
// button that opens the case's workspace, where the call is answered at once and the case worked
// beside it (workspace.html). The states and their labels are the server's (lifecycles.js).

(() => {
const calls = new Map(); // call_id -> summary from the server

function showCall(call) {
  calls.set(call.call_id, call);
  const cell = document.querySelector(`tr[data-case="${call.case_no}"] td.call`);
  if (!cell) return;
  cell.replaceChildren();
  cell.dataset.call = call.call_id;
  cell.dataset.state = call.state;
  cell.appendChild(el("span", { class: "call-badge" }, stateLabel("call", call.state)));
  if (call.state === lifecycle.call.values.ENDED) return;
  const button = el("button", { type: "button", class: "answer", "data-answer": call.call_id }, "接听 Answer");
  button.addEventListener("click", () => {
    window.location.assign(`/workspace?id=${call.case_id}&answer=${encodeURIComponent(call.call_id)}`);
  });
  cell.appendChild(button);
}

window.addEventListener("kuaichu-queue-loaded", async () => {
  const { calls: running } = await request("/api/calls");
  for (const call of running) showCall(call);
});

window.addEventListener("kuaichu-message", (event) => {
  const { message } = event.detail;
  if (message.type === "call.state") showCall(message.call);
  else if (message.type === "case.new") {
    for (const c of calls.values()) if (c.case_no === message.case.case_no) showCall(c);
  }
});
})();
