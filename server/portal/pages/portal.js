"use strict";
// The party's page: log in with a code sent by SMS, then follow the case live. Every message a
// party reads is plain Chinese and says what to do; nothing here names a field or a status code.

const $ = (id) => document.getElementById(id);
const linkToken = (() => {
  const parts = window.location.pathname.split("/").filter(Boolean);
  return parts.length === 2 && parts[0] === "p" ? decodeURIComponent(parts[1]) : null;
})();

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

// Every file input on the page says what was chosen in words (see portal.css).
for (const input of document.querySelectorAll('input[type="file"]')) {
  const chosen = el("p", { class: "hint file-chosen", "aria-live": "polite" }, "尚未选择文件");
  input.after(chosen);
  input.addEventListener("change", () => {
    const names = Array.from(input.files, (f) => f.name);
    chosen.textContent = names.length ? `已选择${names.length}个文件：${names.join("、")}` : "尚未选择文件";
  });
}

function say(id, text) {
  const box = $(id);
  box.textContent = text || "";
  box.hidden = !text;
}

// The server's refusals are already in words; its input checks are not, so they are said here.
async function call(path, options = {}) {
  const response = await fetch(path, options);
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && typeof body.detail === "string"
      ? body.detail
      : response.status === 422
        ? "请检查输入：手机号是11位数字，验证码是6位数字，案件编号是短信里的一串数字。"
        : "暂时无法连接，请检查网络后重试。";
    throw Object.assign(new Error(detail), { status: response.status });
  }
  return body;
}

const post = (path, body) => call(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

// Through a personal link the code goes to the phone the link was sent to; otherwise to the number
// typed, and only if it is a party's in that case.
const linkMode = () => Boolean(linkToken) && $("case-no-box").hidden;

function who() {
  if (linkMode()) return { token: linkToken };
  const out = {};
  const caseNo = $("case-no").value.trim();
  const phone = $("phone").value.replace(/\s/g, "");
  if (caseNo) out.case_no = caseNo;
  if (phone) out.phone = phone;
  return out;
}

function checkInputs(needCode) {
  if (!linkMode()) {
    if (!/^\d{6,32}$/.test($("case-no").value.trim())) return "请输入案件编号（短信或自助终端上显示的一串数字）。";
    if (!/^1\d{10}$/.test($("phone").value.replace(/\s/g, ""))) return "请输入11位手机号。";
  }
  if (needCode && !/^\d{6}$/.test($("code").value.trim())) return "请输入短信里的6位验证码。";
  return "";
}

let countdown = null;
function waitBeforeResend(seconds) {
  const button = $("send-code");
  clearInterval(countdown);
  let left = seconds;
  button.disabled = true;
  const tick = () => {
    button.textContent = left > 0 ? `${left}秒后可重新获取` : "重新获取验证码";
    if (left-- <= 0) { clearInterval(countdown); button.disabled = false; }
  };
  tick();
  countdown = setInterval(tick, 1000);
}

$("send-code").addEventListener("click", async () => {
  say("login-error", ""); say("login-message", "");
  const problem = checkInputs(false);
  if (problem) { say("login-error", problem); return; }
  try {
    const answer = await post("/api/portal/code", who());
    say("login-message", linkMode()
      ? `验证码已发送到 ${$("login-case").dataset.phone}，5分钟内有效。` : answer.message.replace(/\s*\(.*\)$/, ""));
    waitBeforeResend(60);
    $("code").focus();
  } catch (error) {
    say("login-error", error.message);
  }
});

$("log-in").addEventListener("click", async () => {
  say("login-error", "");
  const problem = checkInputs(true);
  if (problem) { say("login-error", problem); return; }
  try {
    await post("/api/portal/login", { ...who(), code: $("code").value.trim() });
    $("code").value = "";
    await load();
  } catch (error) {
    say("login-error", error.message);
  }
});

$("log-out").addEventListener("click", async () => {
  await call("/api/portal/logout", { method: "POST" }).catch(() => null);
  window.location.reload();
});

function showLogin(link) {
  if (!link) window.dispatchEvent(new CustomEvent("kuaichu-login")); // report.js: 视频报警 with no unit
  for (const id of ["now", "progress", "document", "review", "people", "evidence-box", "leave"]) $(id).hidden = true;
  $("login").hidden = false;
  const params = new URLSearchParams(window.location.search);
  if (params.get("case")) $("case-no").value = params.get("case");
  if (link) {
    $("login-case").textContent = `案件 ${link.case_no}：验证码将发送到当事人手机 ${link.phone_hint}。`;
    $("login-case").dataset.phone = link.phone_hint;
    $("login-case").hidden = false;
    $("case-no-box").hidden = true;
    $("phone-box").hidden = true;
  }
}

function render(view) {
  $("login").hidden = true;
  for (const id of ["now", "progress", "people", "evidence-box", "leave"]) $(id).hidden = false;
  $("case-no-shown").textContent = view.case_no;
  $("unit").textContent = view.unit;
  $("now-title").textContent = view.now.title;
  $("now-next").textContent = view.now.next;

  $("timeline").replaceChildren(...view.steps.map((s) => {
    const li = el("li", { "data-step": s.key, "data-done": String(s.done) }, s.title);
    li.appendChild(el("span", { class: "when" }, s.done ? `${s.at_local}${s.note ? " · " + s.note : ""}` : "尚未进行"));
    return li;
  }));

  $("document").hidden = view.determinations.length === 0;
  $("versions").replaceChildren(...view.determinations.slice().reverse().map((d) => {
    const li = el("li", { "data-version": String(d.version) });
    li.appendChild(el("div", { class: d.current ? "current" : "superseded" },
      `第${d.version}版 · ${d.issued_at_local} · ${d.current ? "现行有效" : "已被更正"}`));
    if (d.correction_reason) li.appendChild(el("div", { class: "hint" }, `更正原因：${d.correction_reason}`));
    li.appendChild(el("a", { class: "button", href: d.pdf, download: "" }, "下载认定书（PDF）"));
    li.appendChild(el("a", { class: "button", href: d.print }, "打印认定书"));
    return li;
  }));

  $("parties").replaceChildren(...view.parties.map((p) => {
    const box = el("div", { class: "party", "data-mine": String(p.mine) });
    box.appendChild(el("strong", {}, `当事人${p.position}（${p.role}）${p.mine ? " · 本人" : ""}`));
    const dl = el("dl");
    const rows = [["姓名", p.name], ["身份证号", p.id_number], ["手机号", p.phone], ["号牌", p.plate],
      ["保险公司", p.insurer]];
    if (p.mine) rows.push(["驾驶证号", p.licence_no], ["保单号", p.policy_no]);
    for (const [k, v] of rows) {
      if (!v) continue;
      dl.appendChild(el("dt", {}, k));
      dl.appendChild(el("dd", {}, v));
    }
    box.appendChild(dl);
    return box;
  }));

  showReview(view);
  showClaim(view);
  window.dispatchEvent(new CustomEvent("kuaichu-case", { detail: view })); // call.js, photos.js, report.js

  $("evidence").replaceChildren(...(view.evidence.length ? view.evidence.map((e) => {
    const li = el("li", {}, `${e.at_local} · ${e.kind}${e.mine ? "（本人提供）" : ""}`);
    li.appendChild(el("div", { class: "mono" }, e.sha256));
    return li;
  }) : [el("li", { class: "hint" }, "暂无")]));
}

let socket = null;
function follow(delay = 500) {
  if (socket) return;
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${window.location.host}/api/portal/ws`);
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "changed") refresh();
  });
  socket.addEventListener("close", () => {
    socket = null;
    $("live").textContent = "连接中断，正在重新连接…";
    setTimeout(() => refresh().then(() => follow(Math.min(delay * 2, 10000))), delay);
  });
  socket.addEventListener("open", () => { $("live").textContent = "进度会自动更新，无需刷新。"; });
}

let refreshing = Promise.resolve();
function refresh() {
  refreshing = refreshing.then(async () => {
    try {
      render(await call("/api/portal/case"));
    } catch (error) {
      if (error.status === 401 || error.status === 404) window.location.reload();
    }
  });
  return refreshing;
}

async function load() {
  let link = null;
  if (linkToken) {
    try {
      link = await call(`/api/portal/link/${encodeURIComponent(linkToken)}`);
    } catch (error) {
      say("error", `${error.message}`);
    }
  }
  try {
    const view = await call("/api/portal/case");
    if (link && view.case_no !== link.case_no) { showLogin(link); return; }
    render(view);
    follow();
  } catch (error) {
    if (error.status !== 401 && error.status !== 404) say("error", error.message);
    showLogin(link);
  }
}

load();
