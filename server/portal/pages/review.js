"use strict";
// The party's "申请复核" section: until when they may ask (in words), the form (request, reasons,
// photos or PDFs as the main evidence), why they may not once they may not, and the review's
// progress. portal.js calls showReview() whenever the case view is drawn.

function reviewSay(id, text) {
  const box = document.getElementById(id);
  box.textContent = text || "";
  box.hidden = !text;
}

async function reviewCall(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && typeof body.detail === "string"
      ? body.detail.replace(/\s*\([^()]*\)$/, "")
      : response.status === 413
        ? "文件太大，请压缩照片或少选几个文件后再提交。"
        : "暂时无法提交，请检查网络后重试；内容不会丢失。";
    throw Object.assign(new Error(detail), { status: response.status });
  }
  return body;
}

function drawReview(answer) {
  const section = document.getElementById("review");
  section.hidden = false;
  const form = document.getElementById("review-form");
  form.hidden = !answer.can_file;
  reviewSay("review-when", answer.can_file
    ? `${answer.sentence}。一起事故只复核一次，其他当事人也申请的，一并复核。`
    : answer.reason);
  if (answer.can_file) {
    const l = answer.limits;
    document.getElementById("review-files-label").textContent =
      `主要证据（${l.kinds.join("、")}，可多选，最多${l.files}个，每个不超过${l.file_mb}MB）`;
  }
  const state = document.getElementById("review-state");
  const review = answer.review;
  state.hidden = !review;
  if (review) {
    document.getElementById("review-label").textContent = review.label;
    document.getElementById("review-next").textContent = review.next;
    document.getElementById("review-mine").textContent = review.mine
      ? `您是申请人之一（共${review.applicants}方申请），申请时间${review.requested_at_local}。`
      : `其他当事人已于${review.requested_at_local}申请复核。`;
  }
}

async function showReview(view) {
  if (!view.determinations.length) { document.getElementById("review").hidden = true; return; }
  try {
    drawReview(await reviewCall("/api/portal/review"));
  } catch (error) {
    reviewSay("review-error", error.message);
  }
}

document.getElementById("review-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  reviewSay("review-error", "");
  const request = document.getElementById("review-request").value.trim();
  const reasons = document.getElementById("review-reasons").value.trim();
  if (!request) { reviewSay("review-error", "请写明您的复核请求，例如“请求撤销原认定，重新认定责任”。"); return; }
  if (reasons.length < 5) { reviewSay("review-error", "请写明申请复核的理由，至少5个字。"); return; }
  const data = new FormData();
  data.append("request", request);
  data.append("reasons", reasons);
  for (const file of document.getElementById("review-files").files) data.append("files", file);
  const button = document.getElementById("review-send");
  button.disabled = true;
  button.textContent = "正在提交…";
  try {
    drawReview(await reviewCall("/api/portal/review", { method: "POST", body: data }));
    reviewSay("review-done", "复核申请已提交，各方当事人会收到短信通知。");
  } catch (error) {
    reviewSay("review-error", error.message);
  } finally {
    button.disabled = false;
    button.textContent = "提交复核申请";
  }
});
