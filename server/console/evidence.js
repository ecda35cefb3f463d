"use strict";
// The call panel's evidence strip. "Take still" asks the unit for a full-resolution photograph
// while the video goes on; "Last 10 s" for the seconds before the press. Each request shows as a
// waiting tile, replaced by the still (or a link to the clip) once the server has the whole file
// with its hash checked (evidence.new), or by the reason it failed. The strip also shows what was
// stored for the case before, so a reloaded console loses nothing. Requests go over the queue's
// WebSocket, like the call's own messages.

(() => {
const CLIP_SECONDS = 10;
let socket = null;
let call = null; // the summary of the call on the panel

function strip() {
  return document.getElementById("call-evidence");
}

function clockTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false }) : "";
}

function tileFor(uploadId) {
  const waiting = uploadId && strip().querySelector(`figure[data-upload="${uploadId}"]`);
  if (waiting) return waiting;
  const figure = el("figure", { class: "evidence" });
  if (uploadId) figure.dataset.upload = uploadId;
  strip().appendChild(figure);
  return figure;
}

function showEvidence(evidence, uploadId) {
  if (strip().querySelector(`figure[data-evidence="${evidence.id}"]`)) return;
  const figure = tileFor(uploadId);
  figure.className = "evidence";
  figure.dataset.evidence = evidence.id;
  figure.dataset.kind = evidence.kind;
  figure.replaceChildren();
  const link = el("a", { href: evidence.url, target: "_blank", title: `sha256 ${evidence.sha256}` });
  if (evidence.kind === "still") {
    link.appendChild(el("img", { src: evidence.url, alt: `拍照 still ${clockTime(evidence.media_start)}` }));
  } else {
    link.setAttribute("download", "");
    link.textContent = "▶ 报警前视频 clip";
  }
  figure.appendChild(link);
  const span = evidence.kind === "clip" ? `–${clockTime(evidence.media_end)}` : "";
  figure.appendChild(el("figcaption", {}, `${clockTime(evidence.media_start)}${span}`));
}

function showWaiting(uploadId, kind) {
  const figure = tileFor(uploadId);
  figure.className = "evidence pending";
  figure.textContent = kind === "still" ? "拍照中 taking still…" : "取视频中 fetching clip…";
}

function showFailure(upload) {
  const figure = tileFor(upload.upload_id);
  figure.className = "evidence failed";
  figure.textContent = `失败 failed: ${upload.reason}`;
}

async function showCall(summary) {
  call = summary;
  strip().replaceChildren();
  if (!call || call.case_id === undefined) return;
  const stored = await request(`/api/cases/${call.case_id}/evidence`);
  // Recordings and a degraded call's stills and sound (scene.js) are not for the strip.
  for (const evidence of stored) if (evidence.kind === "still" || evidence.kind === "clip") showEvidence(evidence, null);
}

function ask(type) {
  if (!call || !socket) return;
  socket.send(JSON.stringify({ type, call_id: call.call_id, seconds: CLIP_SECONDS }));
}

window.addEventListener("kuaichu-queue-loaded", (event) => {
  socket = event.detail.ws;
});

window.addEventListener("kuaichu-call", (event) => showCall(event.detail));

window.addEventListener("kuaichu-message", (event) => {
  const { message } = event.detail;
  if (!call) return;
  if (message.type === "evidence.requested" && message.call_id === call.call_id) {
    showWaiting(message.upload_id, message.kind);
  } else if (message.type === "evidence.new" && message.evidence.case_id === call.case_id) {
    showEvidence(message.evidence, message.upload_id);
  } else if (message.type === "evidence.failed" && message.upload.call_id === call.call_id) {
    showFailure(message.upload);
  }
});

document.getElementById("call-still").addEventListener("click", () => ask("still.take"));
document.getElementById("call-clip").addEventListener("click", () => ask("clip.take"));
})();
