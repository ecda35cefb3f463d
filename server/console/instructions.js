"use strict";
// The dispatcher's instructions to the parties at the scene: a common one picked, or one typed,
// goes to the reporting unit (POST /api/cases/{id}/instruct). A kiosk shows it large under the case
// number; an in-car unit has no screen and beeps, so the dispatcher also says it on the call. What
// was sent is read back from the case's log, the one record of every word to the parties.

const instructionCaseId = new URLSearchParams(window.location.search).get("id");

// The few things a dispatcher tells people at nearly every scene, in the order of a call.
const COMMON_INSTRUCTIONS = [
  "请开启危险报警闪光灯，在来车方向放置三角警告牌。",
  "请所有人员站到护栏外或路边安全处，不要站在车道内。",
  "请先拍下两车碰撞部位和车辆全貌，再把车辆移到路边。",
  "请把驾驶证和行驶证对准摄像头，保持不动。",
  "请留在屏幕前，民警将与您视频通话。",
];

async function loadInstructions() {
  const log = await request(`/api/cases/${instructionCaseId}/events`);
  const sent = log.events.filter((e) => e.action === "unit.instruction");
  document.getElementById("instructions-none").hidden = sent.length > 0;
  document.getElementById("instructions-sent").replaceChildren(...sent.reverse().map((e) => {
    const item = el("li", { "data-instruction": e.detail.text });
    item.append(el("time", {}, beijingTime(e.at)), ` ${e.detail.text}`);
    return item;
  }));
}

// Called by case.js each time the case is drawn: only a case still at the scene, reported by a
// unit, takes instructions, and only from a dispatcher.
function showInstructionState(work, me) {
  const c = work.case;
  const section = document.getElementById("instructions");
  section.hidden = !c.device_id;
  const open = Boolean(me && me.role === "dispatcher" && c.status === lifecycle.case.values.NEW);
  for (const id of ["instruction-text", "instruction-send", "instruction-common"]) document.getElementById(id).disabled = !open;
  document.getElementById("instructions-closed").hidden = open;
}

(() => {
  const common = document.getElementById("instruction-common");
  for (const text of COMMON_INSTRUCTIONS) common.appendChild(el("option", { value: text }, text));
  common.addEventListener("change", () => {
    if (common.value) document.getElementById("instruction-text").value = common.value;
    common.value = "";
  });
  document.getElementById("instruction-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = document.getElementById("instruction-text");
    const state = document.getElementById("instruction-state");
    state.dataset.state = "sending";
    state.textContent = "发送中 sending…";
    try {
      const sent = await request(`/api/cases/${instructionCaseId}/instruct`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: box.value }),
      });
      box.value = "";
      state.dataset.state = "sent";
      state.textContent = `已发送 sent ${beijingTime(sent.sent_at)}`;
      await loadInstructions();
    } catch (error) {
      state.dataset.state = "";
      state.textContent = "";
      throw error;
    }
  });
  loadInstructions().catch((error) => showError(String(error.message || error)));
})();
