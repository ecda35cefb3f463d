"use strict";
// The fleet page: every device with its presence, last heartbeat, firmware, health and last
// self-test, refreshed every few seconds. Ages are counted against the server's clock (its "now"),
// so a console PC with a wrong clock cannot hide an offline unit. The alert itself is decided by
// the server (offline longer than [fleet] offline_alert_min).

const REFRESH_MS = 5000;
const STATUS = { registered: "已登记 registered", unregistered: "未登记 unregistered", retired: "已停用 retired" };
const PART = { ok: "正常 ok", degraded: "降级 degraded", failed: "故障 failed", absent: "缺失 absent" };

function age(iso, now) {
  const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(iso)) / 1000));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${(s / 3600).toFixed(1)} h`;
  return `${Math.round(s / 86400)} d`;
}

function deviceCell(d) {
  const cell = el("td", { class: "device-id" }, d.id);
  const where = d.plate || (d.site && d.site.name) || "";
  cell.appendChild(el("div", { class: "sub" }, `${d.kind === "kiosk" ? "报警亭 kiosk" : "车载 in-car"}${where ? " · " + where : ""}`));
  return cell;
}

function presenceCell(d, now) {
  const cell = el("td", { class: "presence", "data-online": String(d.online) });
  cell.appendChild(el("span", { class: "badge" }, d.status === "retired" ? "—" : d.online ? "在线 online" : "离线 offline"));
  if (d.state_since && d.status !== "retired") cell.appendChild(el("div", { class: "sub" }, `${age(d.state_since, now)}`));
  return cell;
}

function heartbeatCell(d, now) {
  if (!d.last_heartbeat_at) return el("td", { class: "heartbeat" }, "—");
  const cell = el("td", { class: "heartbeat" }, `${age(d.last_heartbeat_at, now)} ago`);
  cell.appendChild(el("div", { class: "sub" }, beijingDateTime(d.last_heartbeat_at)));
  if (d.app_state) cell.appendChild(el("div", { class: "sub" }, `${d.app_state}, outbox ${d.outbox_pending}`));
  return cell;
}

function healthCell(d) {
  const cell = el("td", { class: "health" });
  if (!d.health) {
    cell.textContent = "—";
    return cell;
  }
  for (const part of ["camera", "gnss", "audio", "plate_reader"]) {
    const state = d.health[part];
    if (state === undefined) continue; // firmware without a plate reader does not say
    cell.appendChild(el("span", { class: `part part-${state}`, title: PART[state] || state }, `${part} ${state}`));
  }
  cell.appendChild(el("div", { class: "sub" }, `storage ${d.health.storage_free_mb} MB free`));
  for (const note of d.health.notes || []) cell.appendChild(el("div", { class: "sub" }, note));
  return cell;
}

function selftestCell(d, now) {
  const cell = el("td", { class: "selftest" });
  const t = d.selftest;
  if (!t) {
    cell.textContent = "未自检 never run";
    return cell;
  }
  const verdict = el("span", { class: t.passed ? "verdict pass" : "verdict fail" }, t.passed ? "通过 PASS" : "未通过 FAIL");
  cell.appendChild(verdict);
  cell.appendChild(el("span", { class: "sub" }, ` ${age(t.at, now)} ago`));
  if (t.failed.length) cell.appendChild(el("div", { class: "failed" }, t.failed.join(", ")));
  const details = el("details");
  details.appendChild(el("summary", {}, "详情 details"));
  const list = el("ul");
  for (const c of t.checks) list.appendChild(el("li", { class: `check-${c.status}` }, `${c.status.toUpperCase()} ${c.name}: ${c.detail}`));
  details.appendChild(list);
  cell.appendChild(details);
  return cell;
}

function row(d, now) {
  const tr = el("tr", { "data-device": d.id, "data-status": d.status });
  if (d.alert) tr.classList.add("alert");
  tr.appendChild(deviceCell(d));
  tr.appendChild(el("td", { class: "registration" }, STATUS[d.status] || d.status));
  tr.appendChild(presenceCell(d, now));
  tr.appendChild(heartbeatCell(d, now));
  tr.appendChild(el("td", { class: "firmware" }, d.firmware || "—"));
  tr.appendChild(healthCell(d));
  tr.appendChild(selftestCell(d, now));
  return tr;
}

function matches(d, filter) {
  if (!filter) return true;
  const text = [d.id, d.plate, d.site && d.site.name, d.status].filter(Boolean).join(" ").toLowerCase();
  return text.includes(filter.toLowerCase());
}

function alertText(d, now) {
  if (!d.last_seen) return `从未上线 never heard from, registered ${age(d.registered_at, now)} ago`;
  if (d.online) return `无心跳 silent for ${age(d.last_seen, now)}`;
  return `离线 offline for ${age(d.state_since || d.last_seen, now)}`;
}

let latest = null;

function render() {
  if (!latest) return;
  const { now, devices, offline_alert_min: alertMin } = latest;
  const filter = document.getElementById("filter").value.trim();
  // Alerts first, then offline, then by id: what needs a person is at the top.
  const ordered = [...devices].sort((a, b) =>
    (b.alert - a.alert) || (a.online - b.online) || a.id.localeCompare(b.id));
  const body = document.getElementById("devices");
  body.replaceChildren(...ordered.filter((d) => matches(d, filter)).map((d) => row(d, now)));
  document.getElementById("no-devices").hidden = devices.length > 0;
  const online = devices.filter((d) => d.online).length;
  document.getElementById("counts").textContent = `· ${devices.length} · 在线 online ${online}`;
  const alerts = ordered.filter((d) => d.alert);
  document.getElementById("alerts").hidden = alerts.length === 0;
  document.getElementById("alert-rule").textContent = `(> ${alertMin} min)`;
  document.getElementById("alert-list").replaceChildren(...alerts.map((d) => el(
    "li", { "data-device": d.id }, `${d.id}: ${alertText(d, now)}`,
  )));
}

async function refresh() {
  const badge = document.getElementById("updated");
  try {
    latest = await request("/api/devices");
    render();
    badge.dataset.state = "live";
    badge.textContent = `更新 updated ${beijingTime(latest.now)}`;
  } catch (error) {
    badge.dataset.state = "down";
    badge.textContent = "更新失败 update failed";
    if (error.status === 403) {
      document.getElementById("forbidden").hidden = false;
      document.querySelector("main").hidden = true;
      return;
    }
    if (error.status === 401) return;
  }
  setTimeout(refresh, REFRESH_MS);
}

document.getElementById("filter").addEventListener("input", render);
document.getElementById("logout").addEventListener("click", async () => {
  await request("/api/logout", { method: "POST" });
  window.location.assign("/login");
});

request("/api/me").then((op) => {
  document.getElementById("operator").textContent = `${op.display_name} · ${op.role}`;
  refresh();
});
