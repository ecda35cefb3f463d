"use strict";
// The dispatcher queue: one table per unit the operator serves, kept live over the WebSocket.
// On every (re)connection the queue is reloaded over HTTP after the server's "hello", so a case
// opened while the socket was down is never missing.

const TRIGGERS = { button: "一键报警 button", hazard: "双闪 hazard", kiosk: "报警亭 kiosk", test: "测试 test", phone: "视频报警 phone" };
const unitSections = new Map();
let role = null; // the operator's: officers open a case on the determination page
const seen = new Set();

function ensureUnit(unit) {
  let section = unitSections.get(unit.adcode);
  if (section) return section;
  const fragment = document.getElementById("unit-template").content.cloneNode(true);
  section = fragment.querySelector("section");
  section.dataset.unit = unit.adcode;
  section.querySelector(".unit-name").textContent = `${unit.name} (${unit.adcode})`;
  document.getElementById("units").appendChild(section);
  unitSections.set(unit.adcode, section);
  return section;
}

function caseRow(c) {
  const row = el("tr", { "data-case": c.case_no, class: c.flag ? "flagged" : "" });
  const number = el("td", { class: "case-no" });
  number.appendChild(el("a", { href: role === "officer" ? `/determine?id=${c.id}` : `/workspace?id=${c.id}` }, c.case_no));
  row.appendChild(number);
  row.appendChild(el("td", {}, beijingDateTime(c.triggered_at)));
  row.appendChild(el("td", {}, TRIGGERS[c.trigger] || c.trigger));
  row.appendChild(el("td", { class: "device" }, c.device_id ? `${c.device_id} (${c.device_kind})` : `手机报警 ${c.reporter_phone}`));
  const what = c.vehicle ? c.vehicle.plate : c.site ? c.site.name : "—";
  row.appendChild(el("td", { class: "vehicle" }, what));
  const pos = c.position
    ? `${c.position.lat_gcj02.toFixed(5)}, ${c.position.lon_gcj02.toFixed(5)}${c.position.trusted ? "" : " ⚠"}`
    : "—";
  row.appendChild(el("td", { class: "position" }, pos));
  row.dataset.status = c.status;
  const status = el("td", { class: "status" }, stateLabel("case", c.status));
  if (c.flag) status.appendChild(el("div", { class: "flag" }, c.flag));
  row.appendChild(status);
  row.appendChild(el("td", { class: "call" }));
  return row;
}

function addCase(c, isNew) {
  if (seen.has(c.case_no)) return;
  seen.add(c.case_no);
  const section = ensureUnit(c.unit);
  const body = section.querySelector("tbody");
  const row = caseRow(c);
  if (isNew) row.classList.add("fresh");
  body.insertBefore(row, body.firstChild);
  section.querySelector(".empty").hidden = true;
  section.querySelector(".unit-count").textContent = `· ${body.children.length}`;
}

function updateCase(c) {
  const row = document.querySelector(`tr[data-case="${c.case_no}"]`);
  if (!row) return addCase(c, true);
  const fresh = caseRow(c);
  row.querySelector(".status").replaceWith(fresh.querySelector(".status"));
  row.className = fresh.className;
  row.dataset.status = c.status;
}

async function loadQueue() {
  for (const unit of await request("/api/units")) ensureUnit(unit);
  const cases = await request("/api/cases");
  for (const c of cases.reverse()) addCase(c, false);
}

function setLive(state, text) {
  const badge = document.getElementById("live-state");
  badge.dataset.state = state;
  badge.textContent = text;
}

function connect(delay = 500) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${window.location.host}/api/ws`);
  ws.addEventListener("message", async (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "hello") {
      const op = message.operator;
      document.getElementById("operator").textContent = `${op.display_name} · ${op.role}`;
      document.getElementById("fleet-link").hidden = op.role !== "admin";
      role = op.role;
      await loadQueue();
      setLive("live", "实时 live");
      window.dispatchEvent(new CustomEvent("kuaichu-queue-loaded", { detail: { ws } }));
    } else if (message.type === "case.new") {
      addCase(message.case, true);
    } else if (message.type === "case.update") {
      updateCase(message.case);
    }
    window.dispatchEvent(new CustomEvent("kuaichu-message", { detail: { message, ws } }));
  });
  ws.addEventListener("close", () => {
    setLive("down", "连接中断，重连中 reconnecting…");
    request("/api/me").then(() => setTimeout(() => connect(Math.min(delay * 2, 10000)), delay));
  });
}

async function demoPanel() {
  let devices;
  try {
    devices = await request("/api/demo/devices");
  } catch {
    return; // not a demo server
  }
  const panel = document.getElementById("demo-panel");
  const list = document.getElementById("demo-devices");
  for (const id of devices) {
    const button = el("button", { type: "button", "data-press": id }, `按下 Press ${id}`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      await request("/api/demo/press", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ device_id: id, trigger: "button" }),
      }).finally(() => { button.disabled = false; });
    });
    list.appendChild(button);
  }
  panel.hidden = devices.length === 0;
}

document.getElementById("logout").addEventListener("click", async () => {
  await request("/api/logout", { method: "POST" });
  window.location.assign("/login");
});

Promise.all([request("/api/me"), lifecyclesLoaded]).then(() => { connect(); demoPanel(); });
