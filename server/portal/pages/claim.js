"use strict";
// The party's "一键理赔" section: once the determination has reached them, one button sends their
// claim to the insurer of their policy (their phone number, their vehicle, the photos they uploaded
// and when they would like a call); then the claim's state, with the adjuster to call back.
// portal.js calls showClaim() whenever the case view is drawn.

function claimSay(id, text) {
  const box = document.getElementById(id);
  box.textContent = text || "";
  box.hidden = !text;
}

async function claimCall(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && typeof body.detail === "string"
      ? body.detail.replace(/\s*\([^()]*\)$/, "")
      : "暂时无法提交，请检查网络后重试。";
    throw Object.assign(new Error(detail), { status: response.status });
  }
  return body;
}

function drawClaim(answer) {
  document.getElementById("claim").hidden = false;
  const claim = answer.claim;
  claimSay("claim-why", !claim && !answer.can_claim ? answer.reason : "");
  const form = document.getElementById("claim-form");
  form.hidden = !answer.can_claim;
  if (answer.can_claim) {
    const photos = answer.photos ? `和您上传的${answer.photos}张照片` : "";
    document.getElementById("claim-what").textContent =
      `将向${answer.insurer}发送您的手机号、车辆信息${photos}，保险公司会安排查勘员联系您。`;
    const select = document.getElementById("claim-contact");
    if (!select.options.length) {
      for (const [value, label] of Object.entries(answer.contact_times)) select.add(new Option(label, value));
    }
  }
  const state = document.getElementById("claim-state");
  state.hidden = !claim;
  if (claim) {
    document.getElementById("claim-label").textContent = `${answer.insurer}：${claim.label}`;
    const detail = [`申请时间${claim.requested_at_local}`];
    if (claim.adjuster) detail.push(`查勘员 ${claim.adjuster.name}`);
    if (claim.amount_cny) detail.push(`金额 ${claim.amount_cny}元`);
    document.getElementById("claim-detail").textContent = detail.join(" · ");
    const call = document.getElementById("claim-call");
    call.hidden = !claim.adjuster;
    if (claim.adjuster) {
      call.href = `tel:${claim.adjuster.phone}`;
      call.textContent = `致电查勘员 ${claim.adjuster.phone}`;
    }
    document.getElementById("claim-next").textContent = claim.next;
  }
}

async function showClaim(view) {
  if (!view.determinations.length) { document.getElementById("claim").hidden = true; return; }
  try {
    drawClaim(await claimCall("/api/portal/claim"));
  } catch (error) {
    claimSay("claim-error", error.message);
  }
}

document.getElementById("claim-send").addEventListener("click", async () => {
  claimSay("claim-error", "");
  const button = document.getElementById("claim-send");
  button.disabled = true;
  button.textContent = "正在发送…";
  try {
    const answer = await claimCall("/api/portal/claim", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ preferred_contact: document.getElementById("claim-contact").value || "any" }),
    });
    drawClaim(answer);
    claimSay("claim-done", `理赔申请已发送给${answer.insurer}，进度会显示在上方，并以短信通知您。`);
  } catch (error) {
    claimSay("claim-error", error.message);
  } finally {
    button.disabled = false;
    button.textContent = "一键理赔";
  }
});
