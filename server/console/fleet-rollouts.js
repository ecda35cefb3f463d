"use strict";
// The fleet page's rollouts (fleet.html, docs/updates.md): an admin offers a signed, published
// firmware or plate models release to a group of units (a share of the fleet, a district, or a list), a batch at a time;
// each rollout shows how many units are where and every unit's step, with the reason of a rollback
// or a refusal as the unit gave it, in Beijing time. A rollout the server paused by itself says why
// and can be resumed or cancelled here. A unit told that said nothing for a day (the server's
// [updates] no_answer_h) shows as "no answer": it no longer holds up the rollout.

const ROLLOUT_REFRESH_MS = 5000;
const ROLLOUT_STATE = { active: "进行中 active", paused: "已暂停 paused", cancelled: "已取消 cancelled", done: "已完成 done" };
const UNIT_STEP = {
  waiting: "待通知 not told yet",
  told: "已通知 told",
  downloaded: "已下载 downloaded",
  installed: "已安装，试运行中 installed, on trial",
  healthy: "正常 healthy",
  rolled_back: "已回退 rolled back",
  refused: "已拒绝 refused",
  failed: "安装失败 install failed",
  no_answer: "无应答 no answer",
};
const RELEASE_KIND = { firmware: "固件 firmware", models: "车牌模型 plate models" };
const GROUP_KIND = { percent: (v) => `${v}% 的设备 of the fleet`, district: (v) => `辖区 district ${v}`, devices: (v) => `${v} 台指定设备 listed units` };

function rolloutError(text) {
  const box = document.getElementById("rollout-error");
  box.textContent = text;
  box.hidden = !text;
}

function unitRow(u) {
  const step = u.step || (u.told_at ? "told" : "waiting");
  const tr = el("tr", { "data-device": u.device_id, "data-step": step });
  tr.appendChild(el("td", {}, u.device_id));
  tr.appendChild(el("td", { class: `step step-${step}` }, UNIT_STEP[step] || step));
  const at = u.step_at || u.told_at;
  tr.appendChild(el("td", {}, at ? beijingDateTime(at) : "—"));
  // The unit's reason is for a person; its code (e.g. "expired") is for whoever reads the logs,
  // so it is only a tooltip.
  tr.appendChild(el("td", u.code ? { class: "why", title: u.code } : { class: "why" }, u.reason || ""));
  return tr;
}

function rolloutBlock(r) {
  const box = el("article", { class: "rollout", "data-rollout": String(r.id), "data-state": r.state });
  const head = el("h3", {}, `第 ${r.id} 号推送 Rollout ${r.id} · ${RELEASE_KIND[r.kind] || r.kind} ${r.release} · ${GROUP_KIND[r.group.kind](r.group.value)}`);
  head.appendChild(el("span", { class: "rollout-state" }, ROLLOUT_STATE[r.state] || r.state));
  box.appendChild(head);
  box.appendChild(el("p", { class: "sub" },
    `${r.created_by} 发起于 started ${beijingDateTime(r.created_at)} · 每批 batch ${r.batch} 台 · 回退上限 pause above ${r.max_rollback_pct}% rolled back`));
  if (r.state === "paused" && r.paused_reason) {
    box.appendChild(el("p", { class: "paused-reason" }, `已暂停：${r.paused_reason}`));
  }
  const counts = el("ul", { class: "rollout-counts" });
  for (const [key, label] of Object.entries(UNIT_STEP)) {
    if (!r.counts[key]) continue;
    counts.appendChild(el("li", { "data-count": key }, `${label} ${r.counts[key]}`));
  }
  box.appendChild(counts);
  if (r.state === "active" || r.state === "paused") {
    const actions = el("p", { class: "rollout-actions" });
    if (r.state === "paused") actions.appendChild(actionButton(r.id, "resume", "恢复推送 Resume"));
    actions.appendChild(actionButton(r.id, "cancel", "取消推送 Cancel"));
    box.appendChild(actions);
  }
  const details = el("details", r.state === "done" || r.state === "cancelled" ? {} : { open: "" });
  details.appendChild(el("summary", {}, `逐台 per unit (${r.units.length})`));
  const table = el("table", { class: "rollout-units" });
  const header = el("tr");
  for (const name of ["设备 Unit", "状态 Step", "时间 At (北京时间)", "原因 Why"]) header.appendChild(el("th", {}, name));
  table.appendChild(el("thead")).appendChild(header);
  const body = el("tbody");
  for (const u of r.units) body.appendChild(unitRow(u));
  table.appendChild(body);
  details.appendChild(table);
  box.appendChild(details);
  return box;
}

function actionButton(id, action, label) {
  const button = el("button", { type: "button", class: `rollout-${action}` }, label);
  button.addEventListener("click", async () => {
    try {
      await request(`/api/updates/rollouts/${id}/${action}`, { method: "POST" });
      rolloutError("");
    } catch (error) {
      rolloutError(error.message);
    }
    loadRollouts();
  });
  return button;
}

async function loadRollouts() {
  try {
    const { rollouts } = await request("/api/updates/rollouts");
    document.getElementById("rollout-list").replaceChildren(...rollouts.map(rolloutBlock));
    document.getElementById("no-rollouts").hidden = rollouts.length > 0;
  } catch (error) {
    if (error.status === 403 || error.status === 401) return false;
  }
  return true;
}

async function rolloutLoop() {
  if (await loadRollouts()) setTimeout(rolloutLoop, ROLLOUT_REFRESH_MS);
}

document.getElementById("rollout-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const kind = form.elements.group.value;
  const value = form.elements.value.value.trim();
  const body = {
    release: form.elements.release.value.trim(),
    kind: form.elements.kind.value,
    max_rollback_pct: Number(form.elements.max_rollback_pct.value),
    batch: Number(form.elements.batch.value),
  };
  if (kind === "percent") body.percent = Number(value);
  else if (kind === "district") body.district = value;
  else body.devices = value.split(/[\s,，]+/).filter(Boolean);
  try {
    await request("/api/updates/rollouts", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    rolloutError("");
    form.reset();
  } catch (error) {
    rolloutError(error.message);
  }
  loadRollouts();
});

rolloutLoop();
