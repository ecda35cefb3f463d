"use strict";
// The workspace's gallery of the case's stills, the parties' photos and clips, and the call's
// requests for more. "Take still" asks the unit for a full-resolution photograph while the video
// goes on; "Last 10 s" for the seconds before the click (the unit keeps recording them during the
// call), "10 s before the report" for those before the press. Each request shows as a waiting tile,
// replaced by the still (or the clip) once the server has the whole file with its hash checked
// (evidence.new), or by the reason it failed. The gallery shows what was stored for the case
// before, call or no call, so a reloaded workspace loses nothing. Requests go over the page's
// WebSocket, like the call's own messages; tiles and the viewer are gallery.js's.

(() => {
const CLIP_SECONDS = 10;
const SHOWN = new Set(["still", "clip", "photo"]); // recordings play from the statements
const caseId = Number(new URLSearchParams(window.location.search).get("id"));
let socket = null;
let call = null; // the summary of the call on the panel

function strip() {
  return document.getElementById("call-evidence");
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
  if (!SHOWN.has(evidence.kind) || strip().querySelector(`figure[data-evidence="${evidence.id}"]`)) return;
  gallery.tile(evidence, tileFor(uploadId));
}

function ask(type) {
  if (!call || !socket) return;
  socket.send(JSON.stringify({ type, call_id: call.call_id, seconds: CLIP_SECONDS }));
}

window.addEventListener("kuaichu-queue-loaded", (event) => {
  socket = event.detail.ws;
  // What arrived while the feed was down is fetched again; a waiting request keeps its tile.
  request(`/api/cases/${caseId}/evidence`).then((stored) => { for (const e of stored) showEvidence(e, null); });
});

window.addEventListener("kuaichu-call", (event) => { call = event.detail; });

window.addEventListener("kuaichu-message", (event) => {
  const { message } = event.detail;
  if (message.type === "evidence.new" && message.evidence.case_id === caseId) {
    showEvidence(message.evidence, message.upload_id);
  } else if (!call) {
    return;
  } else if (message.type === "evidence.requested" && message.call_id === call.call_id) {
    gallery.pending(tileFor(message.upload_id), message.kind);
  } else if (message.type === "evidence.failed" && message.upload.call_id === call.call_id) {
    gallery.failed(tileFor(message.upload.upload_id), message.upload.reason);
  }
});

document.getElementById("call-still").addEventListener("click", () => ask("still.take"));
document.getElementById("call-clip").addEventListener("click", () => ask("clip.take"));
document.getElementById("call-report-clip").addEventListener("click", () => ask("report_clip.take"));
})();
