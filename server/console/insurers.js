"use strict";
// The insurers' events for administrators: the directory with each insurer's events by status,
// and the events waiting for their next try or given up on (dead letters), each with the last
// error and a resend that sends it again now with its webhook id.

const EVENT_NAMES = {
  "determination.delivered": "认定书送达 delivered",
  "determination.corrected": "认定书更正 corrected",
  "review.concluded": "复核结论 review concluded",
  "claim.requested": "理赔申请 claim requested",
};
let showing = "dead";

function cell(text, attrs = {}) {
  return el("td", attrs, text === null || text === undefined ? "" : String(text));
}

async function loadInsurers() {
  const rows = await request("/api/admin/insurers");
  const body = document.querySelector("#insurers tbody");
  body.replaceChildren();
  for (const i of rows) {
    const tr = el("tr", { "data-code": i.code });
    const counts = i.events || {};
    for (const text of [i.code, i.name, i.status === "active" ? "启用 active" : "停用 disabled", i.endpoint, i.contact,
      counts.pending || 0, counts.delivered || 0, counts.dead || 0]) tr.appendChild(cell(text));
    body.appendChild(tr);
  }
}

async function resend(id, button) {
  button.disabled = true;
  try {
    await request(`/api/admin/insurers/deliveries/${id}/resend`, { method: "POST" });
    await refresh();
  } catch {
    button.disabled = false;
  }
}

async function loadDeliveries() {
  const rows = await request(`/api/admin/insurers/deliveries?status=${showing}`);
  const body = document.querySelector("#deliveries tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = el("tr", {});
    tr.appendChild(cell(showing === "dead" ? "没有失败的推送 No dead letters" : "没有待发的推送 Nothing waiting", { colspan: "7" }));
    body.appendChild(tr);
  }
  for (const d of rows) {
    const tr = el("tr", { "data-id": String(d.id) });
    tr.appendChild(cell(d.case_no));
    tr.appendChild(cell(d.insurer));
    tr.appendChild(cell(`${EVENT_NAMES[d.type] || d.type} · 第${d.version}版`));
    tr.appendChild(cell(d.attempts));
    tr.appendChild(cell(d.last_error, { class: "error-text" }));
    const when = d.status === "dead" ? `放弃于 ${beijingDateTime(d.dead_at)}` : `下次 next ${beijingDateTime(d.next_attempt_at)}`;
    tr.appendChild(cell(when));
    const action = el("td", {});
    const button = el("button", { type: "button", class: "resend" }, "重发 Resend");
    button.addEventListener("click", () => resend(d.id, button));
    action.appendChild(button);
    tr.appendChild(action);
    body.appendChild(tr);
  }
}

async function refresh() {
  await Promise.all([loadInsurers(), loadDeliveries()]);
}

async function main() {
  const me = await request("/api/me");
  document.getElementById("operator").textContent = `${me.display_name}（${me.role}）`;
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => {
      showing = button.dataset.status;
      for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-pressed", String(b === button));
      loadDeliveries().catch(() => {});
    });
  }
  await refresh();
  setInterval(() => refresh().catch(() => {}), 10000);
}

main().catch(() => {});
