"use strict";
// The fleet page: every device with its presence, last heartbeat, firmware, health and last
// self-test, refreshed every few seconds. Ages are counted against the server's clock (its "now"),
// so a console PC with a wrong clock cannot hide an offline unit. The alert itself is decided by
// the server (offline longer than [fleet] offline_alert_min). Above the table: the units on a map
// of the pilot districts (drawn from the server's own geofences, GCJ-02, no outside tiles), the
// firmware versions counted, and the units that have no position yet. A remote self-test is asked
// of an online unit from its row; its result shows there when the unit sends it.

const REFRESH_MS = 5000;
const PENDING_REFRESH_MS = 1000; // while a remote self-test is awaited
const REMOTE_WAIT_MS = 120000;
const SVG = "http://www.w3.org/2000/svg";
const remote = new Map(); // device id -> {requestedAt} or {failed: message}
let map = null;
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
  // What an offline unit last said of itself (in_case, say) is not its state now.
  const last = d.online ? "" : "离线前 before going offline: ";
  if (d.app_state) cell.appendChild(el("div", { class: "sub app-state" }, `${last}${d.app_state}, outbox ${d.outbox_pending}`));
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

function remoteCell(d, now) {
  const cell = el("td", { class: "remote" });
  const asked = remote.get(d.id);
  if (asked && asked.requestedAt) {
    if (d.selftest && Date.parse(d.selftest.at) >= Date.parse(asked.requestedAt)) {
      remote.delete(d.id); // the result is in the self-test column
    } else if (Date.parse(now) - Date.parse(asked.requestedAt) > REMOTE_WAIT_MS) {
      remote.set(d.id, { failed: "未收到结果 no result from the unit" });
    } else {
      cell.appendChild(el("span", { class: "remote-state" }, "远程自检中 running…"));
      return cell;
    }
  }
  if (remote.has(d.id)) cell.appendChild(el("span", { class: "remote-state" }, remote.get(d.id).failed));
  if (!d.online || d.status === "retired") return cell;
  const button = el("button", { type: "button", class: "run-selftest" }, "远程自检 Run self-test");
  button.addEventListener("click", () => runSelftest(d.id));
  cell.appendChild(button);
  return cell;
}

async function runSelftest(id) {
  try {
    const answer = await request(`/api/devices/${id}/selftest`, { method: "POST" });
    remote.set(id, { requestedAt: answer.requested_at });
  } catch (error) {
    remote.set(id, { failed: error.message });
  }
  render();
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

function svg(tag, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

async function loadMap() {
  map = await request("/api/fleet/map");
  document.getElementById("fleet-map").setAttribute("viewBox", map.view_box.join(" "));
  document.getElementById("map-districts").replaceChildren(...map.districts.flatMap((district) => [
    svg("path", { class: "district", d: district.d, "data-adcode": district.adcode }, ""),
    svg("text", { class: "district-name", x: district.label[0], y: district.label[1] }, district.name),
  ]));
  for (const path of document.querySelectorAll("#map-districts path")) {
    const district = map.districts.find((x) => x.adcode === path.dataset.adcode);
    path.appendChild(svg("title", {}, `${district.name} ${district.adcode}`));
  }
}

function placeUnits(devices) {
  const marks = [];
  const unplaced = [];
  for (const d of devices.filter((x) => x.status !== "retired")) {
    if (!d.position || !map) {
      unplaced.push(d);
      continue;
    }
    const { west, north, kx, ky } = map.projection;
    const x = (d.position.lon - west) * kx;
    const y = (north - d.position.lat) * ky;
    const attrs = { class: "unit-mark", "data-device": d.id, "data-online": String(d.online), "data-alert": String(d.alert) };
    const mark = d.kind === "kiosk"
      ? svg("rect", { ...attrs, x: x - 9, y: y - 9, width: 18, height: 18 })
      : svg("circle", { ...attrs, cx: x, cy: y, r: 9 });
    const where = d.position.source === "site" ? "站点 site" : `定位 fix ${beijingDateTime(d.position.at)}`;
    mark.appendChild(svg("title", {}, `${d.id} · ${d.online ? "在线 online" : "离线 offline"} · ${where}`));
    marks.push(mark, svg("text", { class: "unit-label", x: x + 12, y: y + 5 }, d.id));
  }
  document.getElementById("map-units").replaceChildren(...marks);
  document.getElementById("unplaced").replaceChildren(...unplaced.map((d) => el(
    "li", { "data-device": d.id }, `${d.id}${d.plate ? " · " + d.plate : ""} · ${d.online ? "在线 online" : "离线 offline"}`,
  )));
}

function firmwareSummary(devices) {
  const counts = new Map();
  for (const d of devices.filter((x) => x.status !== "retired")) {
    const version = d.firmware || "未知 unknown";
    counts.set(version, (counts.get(version) || 0) + 1);
  }
  const ordered = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  document.getElementById("firmware-summary").replaceChildren(...ordered.map(([version, count]) => {
    const item = el("li", { "data-firmware": version });
    item.append(el("span", { class: "version" }, version), el("span", { class: "count" }, `${count} 台`));
    return item;
  }));
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
  tr.appendChild(remoteCell(d, now));
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
  placeUnits(devices);
  firmwareSummary(devices);
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
  setTimeout(refresh, [...remote.values()].some((r) => r.requestedAt) ? PENDING_REFRESH_MS : REFRESH_MS);
}

document.getElementById("filter").addEventListener("input", render);
document.getElementById("logout").addEventListener("click", async () => {
  await request("/api/logout", { method: "POST" });
  window.location.assign("/login");
});

request("/api/me").then((op) => {
  document.getElementById("operator").textContent = `${op.display_name} · ${op.role}`;
  // The map is drawn once; the units on it follow every refresh.
  loadMap().catch(() => {}).finally(refresh);
});
