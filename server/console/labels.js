"use strict";
// What the registry checks are called and what they found, Chinese first, for every page that
// shows a party's checks (the workspace, the officer's page).

const CHECK_KINDS = { licence: "驾驶证 licence", vehicle: "机动车 vehicle", insurance: "交强险 insurance" };
const CHECK_RESULTS = { pass: "通过 pass", fail: "不通过 fail", unknown: "无法核实 unknown" };

// "驾驶证 licence: 通过 pass — reason", or "not checked" for a check not run (or made stale).
function checkText(kind, check) {
  const name = CHECK_KINDS[kind] || kind;
  return check ? `${name}: ${CHECK_RESULTS[check.result] || check.result} — ${check.reason}` : `${name}: 未核查 not checked`;
}
