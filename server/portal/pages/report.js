"use strict";
// 视频报警 from a phone with no unit: log in with a code sent to the number alone, then one press
// sends the browser's position (WGS-84 and how precise it is) to the server, which routes it to the
// district's police like a unit's report, or says why not (call 122). The call then starts from the
// phone's camera and microphone (call.js). portal.js tells this page when it shows its login.

(() => {
const $r = (id) => document.getElementById(id);

function tell(id, text) {
  const box = $r(id);
  box.textContent = text || "";
  box.hidden = !text;
}

async function ask(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = answer && typeof answer.detail === "string"
      ? answer.detail.replace(/\s*\([^()]*\)$/, "")
      : response.status === 422 ? "请输入11位手机号和短信里的6位验证码。" : "暂时无法连接，请检查网络后重试；紧急情况请拨打122。";
    throw Object.assign(new Error(detail), { status: response.status });
  }
  return answer;
}

let rules = null;

async function show() {
  rules = await ask("/api/portal/report").catch(() => null);
  if (!rules || rules.has_case) return;
  $r("report-box").hidden = false;
  $r("report-login").hidden = rules.logged_in;
  $r("report-go").hidden = !rules.logged_in;
}

$r("report-send-code").addEventListener("click", async () => {
  tell("report-error", ""); tell("report-message", "");
  const phone = $r("report-phone").value.replace(/\s/g, "");
  if (!/^1\d{10}$/.test(phone)) { tell("report-error", "请输入11位手机号。"); return; }
  try {
    await ask("/api/portal/code", { phone });
    tell("report-message", "验证码已发送，5分钟内有效。");
  } catch (error) {
    tell("report-error", error.message);
  }
});

$r("report-log-in").addEventListener("click", async () => {
  tell("report-error", "");
  const phone = $r("report-phone").value.replace(/\s/g, "");
  const code = $r("report-code").value.trim();
  if (!/^1\d{10}$/.test(phone) || !/^\d{6}$/.test(code)) { tell("report-error", "请输入11位手机号和短信里的6位验证码。"); return; }
  try {
    await ask("/api/portal/login", { phone, code });
    tell("report-message", "");
    await show();
  } catch (error) {
    tell("report-error", error.message);
  }
});

function here() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) { reject(new Error("这个浏览器无法定位，请换用手机自带浏览器，或拨打122报警。")); return; }
    navigator.geolocation.getCurrentPosition(resolve, (error) => reject(new Error(error.code === 1
      ? "没有定位权限：请在浏览器设置里允许本网站使用位置信息，再按视频报警；或拨打122报警。"
      : "暂时无法定位：请到开阔处、打开GPS后再试；或拨打122报警。")),
    { enableHighAccuracy: true, timeout: 20000, maximumAge: 0 });
  });
}

$r("report-button").addEventListener("click", async () => {
  tell("report-error", ""); tell("report-message", "正在定位…");
  const button = $r("report-button");
  button.disabled = true;
  try {
    const { coords } = await here();
    tell("report-message", `已定位（误差约${Math.round(coords.accuracy)}米），正在报警…`);
    const answer = await ask("/api/portal/report", { lat: coords.latitude, lon: coords.longitude, accuracy: coords.accuracy });
    tell("report-message", answer.message);
    window.kuaichuStartCall = true; // call.js starts the video as soon as the case is shown
    $r("report-box").hidden = true;
    await load(); // portal.js: the case's page, followed live
  } catch (error) {
    tell("report-message", "");
    tell("report-error", error.message);
  } finally {
    button.disabled = false;
  }
});

window.addEventListener("kuaichu-login", () => { show(); });
window.addEventListener("kuaichu-case", () => { $r("report-box").hidden = true; });
})();
