"use strict";
// The workspace's call panel: the case's running call, answered here (or at once when the queue's
// "answer" opened the page), shows the device's video and sound, sends the dispatcher's voice
// (push-to-talk or an open mic), and says what state the call is in. Joining is an SDP offer over
// the page's WebSocket; the server (aiortc) does not trickle ICE, so the offer waits for gathering
// to finish. If the connection drops (a network flap, the device renegotiating, the feed coming
// back), the console joins again by itself: the call stays the same call. Other modules follow the
// call through "kuaichu-call" (its summary, or null once it is left).

(() => {
// The call states and their labels are the server's (lifecycles.js), loaded before the page.
const callState = () => lifecycle.call.values;
const params = new URLSearchParams(window.location.search);
const caseId = Number(params.get("id"));
let wanted = params.get("answer"); // the call the queue's "answer" opened this page for
let socket = null;
let call = null; // the case's newest call, as the server last told it
let current = null; // { callId, pc, mic, camera, rejoin }: the call this page has joined

function setCallState(state, text) {
  const badge = document.getElementById("call-state");
  badge.dataset.state = state;
  badge.textContent = text || stateLabel("call", state);
}

function showAnswer() {
  const button = document.getElementById("call-answer");
  button.disabled = !call || call.state === callState().ENDED || Boolean(current);
  if (call && !current) setCallState(call.state);
}

function showCall(summary) {
  if (summary.case_id !== caseId) return;
  if (call && call.call_id !== summary.call_id && summary.state === callState().ENDED) return; // an older call
  call = summary;
  const { LIVE, RECONNECTING, DEGRADED, ENDED } = callState();
  if (current && current.callId === call.call_id) {
    if (call.state === ENDED) finish(stateLabel("call", ENDED));
    else if (call.state === RECONNECTING || call.state === DEGRADED) setCallState(call.state);
    else if (call.state === LIVE && current.pc && current.pc.connectionState === "connected") setCallState(LIVE);
  }
  showAnswer();
  if (wanted === call.call_id && call.state !== ENDED && !current) {
    wanted = null;
    answer().catch((error) => setCallState("down", `错误 error: ${error.message}`));
  }
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
  // The unit's video comes back on the same line the dispatcher's camera, when shared, goes out on
  // (a kiosk's screen shows it; an in-car unit has no screen and the server sends it nothing).
  const camera = current.camera ? current.camera.getVideoTracks()[0] : null;
  if (camera) pc.addTransceiver(camera, { direction: "sendrecv", streams: [current.camera] });
  else pc.addTransceiver("video", { direction: "recvonly" });
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
    if (pc.connectionState === "connected") setCallState(call && call.state === DEGRADED ? DEGRADED : LIVE);
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

async function answer() {
  if (!call || current || !socket) return;
  const callId = call.call_id;
  setCallState(callState().CONNECTING);
  // The microphone starts closed: the dispatcher speaks with push-to-talk or opens it.
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  current = { callId, pc: null, mic, camera: null, rejoin: null };
  window.dispatchEvent(new CustomEvent("kuaichu-call", { detail: call }));
  setMic(false);
  showAnswer();
  await joinCall(callId);
}

function finish(text) {
  if (!current) return;
  clearTimeout(current.rejoin);
  if (current.pc) current.pc.close();
  for (const track of current.mic.getTracks()) track.stop();
  if (current.camera) for (const track of current.camera.getTracks()) track.stop();
  current = null;
  showCamera(null);
  window.dispatchEvent(new CustomEvent("kuaichu-call", { detail: null }));
  setCallState(callState().ENDED, text);
  document.getElementById("call-mic").dataset.open = "false";
  showAnswer();
}

window.addEventListener("kuaichu-queue-loaded", async (event) => {
  socket = event.detail.ws;
  // After a reconnection of the page's socket, the call joined before it is joined again on the new
  // one. Only that call: one answered while this handler waits has just been joined on this socket.
  const before = current;
  if (before && before.pc) before.pc.close();
  // The feed may open before the lifecycles have loaded: the call's states are read from them.
  const [{ calls: running }] = await Promise.all([request("/api/calls"), lifecyclesLoaded]);
  for (const summary of running) showCall(summary);
  if (before && current === before) await joinCall(before.callId);
});

window.addEventListener("kuaichu-message", async (event) => {
  const { message } = event.detail;
  await lifecyclesLoaded;
  if (message.type === "call.state") {
    showCall(message.call);
  } else if (message.type === "call.answer" && current && current.callId === message.call_id) {
    await current.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
  } else if (message.type === "call.error" && (!message.call_id || (call && message.call_id === call.call_id))) {
    setCallState("down", `错误 error: ${message.reason}`);
  }
});

document.getElementById("call-answer").addEventListener("click", () => {
  showError("");  // advice about the call ("answer first") is done with
  answer().catch((error) => setCallState("down", `错误 error: ${error.message}`));
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
  const button = event.currentTarget;
  const open = button.dataset.open !== "true";
  button.dataset.open = String(open);
  button.firstChild.textContent = open ? "闭麦 Close mic " : "开麦 Open mic ";
  setMic(open);
});
document.getElementById("call-mute").addEventListener("click", (event) => {
  // The unit's sound on this console only; the recording keeps it.
  const button = event.currentTarget;
  const video = document.getElementById("call-video");
  video.muted = !video.muted;
  button.dataset.muted = String(video.muted);
  button.firstChild.textContent = video.muted ? "取消静音 Unmute " : "静音 Mute ";
});
function showCamera(stream) {
  const button = document.getElementById("call-camera");
  button.dataset.on = String(Boolean(stream));
  button.firstChild.textContent = stream ? "关闭摄像头 Stop camera " : "开摄像头 Share camera ";
  const self = document.getElementById("call-self");
  self.srcObject = stream;
  self.hidden = !stream;
}

// Sharing the dispatcher's camera, or stopping it, joins the call again with or without it: the
// server takes the new connection in place of the old, and the unit's picture comes straight back.
document.getElementById("call-camera").addEventListener("click", async () => {
  if (!current) {
    showError("请先接听通话，再开摄像头 (answer the call first)");
    return;
  }
  const joined = current;
  if (joined.camera) {
    for (const track of joined.camera.getTracks()) track.stop();
    joined.camera = null;
  } else {
    try {
      joined.camera = await navigator.mediaDevices.getUserMedia({ audio: false, video: { width: 640, height: 360 } });
    } catch (error) {
      showError(`无法打开摄像头，请检查摄像头是否接好、浏览器是否允许使用 (${error.name})`);
      return;
    }
  }
  if (current !== joined) return; // the call ended meanwhile
  showCamera(joined.camera);
  clearTimeout(joined.rejoin);
  if (joined.pc) joined.pc.close();
  await joinCall(joined.callId);
});

document.getElementById("call-end").addEventListener("click", () => {
  if (!current) return;
  socket.send(JSON.stringify({ type: "call.end", call_id: current.callId }));
  finish("已结束 ended");
});
})();
