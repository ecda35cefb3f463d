"use strict";
// Live calls on the dispatcher's queue: each case with a running call gets an Answer button; the
// call panel shows the device's video and sound, sends the dispatcher's voice (push-to-talk or an
// open mic), and says what state the call is in. Joining is an SDP offer over the queue's
// WebSocket; the server (aiortc) does not trickle ICE, so the offer waits for gathering to finish.
// If the connection drops (a network flap, the device renegotiating), the console joins again by
// itself: the call stays the same call.

(() => {
// The call states and their labels are the server's (lifecycles.js), loaded before the queue.
const callState = () => lifecycle.call.values;
const calls = new Map(); // call_id -> summary from the server
let socket = null;
let current = null; // { callId, pc, mic, rejoin }

function callCell(caseNo) {
  return document.querySelector(`tr[data-case="${caseNo}"] td.call`);
}

function showCall(call) {
  calls.set(call.call_id, call);
  const cell = callCell(call.case_no);
  if (!cell) return;
  cell.replaceChildren();
  cell.dataset.call = call.call_id;
  cell.dataset.state = call.state;
  const { LIVE, RECONNECTING, DEGRADED, ENDED } = callState();
  cell.appendChild(el("span", { class: "call-badge" }, stateLabel("call", call.state)));
  if (call.state !== ENDED && (!current || current.callId !== call.call_id)) {
    const button = el("button", { type: "button", class: "answer", "data-answer": call.call_id }, "接听 Answer");
    button.addEventListener("click", () => answer(call.call_id));
    cell.appendChild(button);
  }
  if (current && current.callId === call.call_id) {
    if (call.state === ENDED) finish(stateLabel("call", ENDED));
    else if (call.state === RECONNECTING || call.state === DEGRADED) setCallState(call.state);
    else if (call.state === LIVE && current.pc && current.pc.connectionState === "connected") setCallState(LIVE);
  }
}

function setCallState(state) {
  const badge = document.getElementById("call-state");
  badge.dataset.state = state;
  badge.textContent = stateLabel("call", state);
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
}

function setMic(open) {
  if (!current || !current.mic) return;
  for (const track of current.mic.getAudioTracks()) track.enabled = open;
}

async function joinCall(callId) {
  const { ice_servers: iceServers } = await request("/api/calls");
  const pc = new RTCPeerConnection({ iceServers });
  current.pc = pc;
  pc.addTransceiver("video", { direction: "recvonly" });
  for (const track of current.mic.getAudioTracks()) pc.addTrack(track, current.mic);
  const stream = new MediaStream();
  pc.addEventListener("track", (event) => {
    stream.addTrack(event.track);
    const video = document.getElementById("call-video");
    if (video.srcObject !== stream) video.srcObject = stream;
  });
  pc.addEventListener("connectionstatechange", () => {
    if (!current || current.pc !== pc) return;
    // Connected to the server; the unit's video may still be down (stills instead: scene.js).
    const { LIVE, DEGRADED } = callState();
    if (pc.connectionState === "connected") setCallState(calls.get(callId)?.state === DEGRADED ? DEGRADED : LIVE);
    if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
      setCallState(callState().RECONNECTING);
      clearTimeout(current.rejoin);
      current.rejoin = setTimeout(() => rejoin(callId, pc), 2000);
    }
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  socket.send(JSON.stringify({ type: "call.join", call_id: callId, sdp: pc.localDescription.sdp }));
}

async function rejoin(callId, oldPc) {
  if (!current || current.callId !== callId || current.pc !== oldPc) return;
  if (oldPc.connectionState === "connected") return;
  oldPc.close();
  await joinCall(callId);
}

async function answer(callId) {
  if (current) finish();
  const call = calls.get(callId);
  document.getElementById("call-panel").hidden = false;
  document.getElementById("call-case").textContent = call ? call.case_no : "";
  setCallState(callState().CONNECTING);
  // The microphone starts closed: the dispatcher speaks with push-to-talk or opens it.
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  current = { callId, pc: null, mic, rejoin: null };
  window.dispatchEvent(new CustomEvent("kuaichu-call", { detail: call || { call_id: callId } }));
  setMic(false);
  for (const c of calls.values()) showCall(c);
  await joinCall(callId);
}

function finish(text) {
  if (!current) return;
  clearTimeout(current.rejoin);
  if (current.pc) current.pc.close();
  for (const track of current.mic.getTracks()) track.stop();
  current = null;
  window.dispatchEvent(new CustomEvent("kuaichu-call", { detail: null }));
  setCallState(callState().ENDED);
  if (text) document.getElementById("call-state").textContent = text;
  document.getElementById("call-mic").dataset.open = "false";
  for (const c of calls.values()) showCall(c);
}

window.addEventListener("kuaichu-queue-loaded", async (event) => {
  socket = event.detail.ws;
  const { calls: running } = await request("/api/calls");
  for (const call of running) showCall(call);
  // After a reconnection of the queue's socket, the call's connection is made again on it.
  if (current) {
    if (current.pc) current.pc.close();
    await joinCall(current.callId);
  }
});

window.addEventListener("kuaichu-message", async (event) => {
  const { message } = event.detail;
  if (message.type === "call.state") {
    showCall(message.call);
  } else if (message.type === "case.new") {
    for (const c of calls.values()) if (c.case_no === message.case.case_no) showCall(c);
  } else if (message.type === "call.answer" && current && current.callId === message.call_id) {
    await current.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
  } else if (message.type === "call.error") {
    const note = document.getElementById("call-state");
    note.textContent = `错误 error: ${message.reason}`;
    note.dataset.state = "down";
  }
});

const ptt = document.getElementById("call-ptt");
ptt.addEventListener("pointerdown", () => setMic(true));
ptt.addEventListener("pointerup", () => {
  if (document.getElementById("call-mic").dataset.open !== "true") setMic(false);
});
ptt.addEventListener("pointerleave", () => {
  if (document.getElementById("call-mic").dataset.open !== "true") setMic(false);
});
document.getElementById("call-mic").addEventListener("click", (event) => {
  const open = event.target.dataset.open !== "true";
  event.target.dataset.open = String(open);
  event.target.textContent = open ? "闭麦 Close mic" : "开麦 Open mic";
  setMic(open);
});
document.getElementById("call-mute").addEventListener("click", (event) => {
  // The unit's sound on this console only; the recording keeps it.
  const video = document.getElementById("call-video");
  video.muted = !video.muted;
  event.target.dataset.muted = String(video.muted);
  event.target.textContent = video.muted ? "取消静音 Unmute" : "静音 Mute";
});
document.getElementById("call-end").addEventListener("click", () => {
  if (!current) return;
  socket.send(JSON.stringify({ type: "call.end", call_id: current.callId }));
  finish("已结束 ended");
});
})();
