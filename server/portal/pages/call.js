"use strict";
// The party's phone in the case's live call: its camera (the back one, to show the scene) and
// microphone go to the server over WebRTC, like a unit's, and the dispatcher's voice comes back.
// The phone that reported is the call's source and starts it right after reporting; any other party
// joins a live call with one press. The server does not trickle ICE: the offer waits for gathering.
// A dropped connection offers again by itself while the call is still there.

(() => {
const $c = (id) => document.getElementById(id);
let current = null; // { pc, media, retry }
let polling = null;
let last = null; // the server's latest word on the phone's call

function note(text, error) {
  $c("call-note").textContent = text;
  $c("call-note").className = error ? "error" : "hint";
}

async function status() {
  const response = await fetch("/api/portal/call");
  if (!response.ok) return null;
  return response.json();
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => pc.addEventListener("icegatheringstatechange", () => {
    if (pc.iceGatheringState === "complete") resolve();
  }));
}

function talking() {
  return last && last.call && last.call.answered
    ? "通话中：调度员能看到您的画面。请把镜头对准现场和车辆。"
    : "已接通，正在等待调度员接听，请保持本页面打开。";
}

function stop(text) {
  if (current) {
    clearTimeout(current.retry);
    current.pc.close();
    for (const track of current.media.getTracks()) track.stop();
  }
  current = null;
  $c("call-self").srcObject = null;
  $c("call-box").dataset.state = "idle";
  $c("call-hangup").hidden = true;
  if (text) note(text);
}

async function connect(media, iceServers) {
  const pc = new RTCPeerConnection({ iceServers });
  for (const track of media.getTracks()) pc.addTrack(track, media);
  pc.addEventListener("track", (event) => {
    const speaker = $c("call-voice");
    if (!speaker.srcObject) speaker.srcObject = new MediaStream();
    speaker.srcObject.addTrack(event.track);
  });
  pc.addEventListener("connectionstatechange", () => {
    if (!current || current.pc !== pc) return;
    if (pc.connectionState === "connected") {
      $c("call-box").dataset.state = "live";
      note(talking());
    } else if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
      note("网络中断，正在重新连接…", true);
      clearTimeout(current.retry);
      current.retry = setTimeout(() => again(pc), 2000);
    }
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const response = await fetch("/api/portal/call", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ sdp: pc.localDescription.sdp }),
  });
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    pc.close();
    throw new Error(answer && answer.detail ? answer.detail.replace(/\s*\([^()]*\)$/, "") : "视频连接失败，请检查网络后重试。");
  }
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  return pc;
}

async function again(oldPc) {
  if (!current || current.pc !== oldPc || oldPc.connectionState === "connected") return;
  last = await status();
  if (!last || !last.call || last.dropped) { stop(last && last.dropped ? "调度员已结束您的视频连接。" : "通话已结束。"); return; }
  oldPc.close();
  try {
    current.pc = await connect(current.media, last.ice_servers);
  } catch (error) {
    note(error.message, true);
    current.retry = setTimeout(() => again(current.pc), 3000);
  }
}

async function start() {
  if (current) return;
  note("正在打开摄像头和麦克风…");
  $c("call-join").hidden = true;
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({
      audio: true, video: { facingMode: "environment", width: { ideal: 640 }, height: { ideal: 480 } },
    });
  } catch (error) {
    note("无法使用摄像头或麦克风：请在浏览器设置里允许本网站使用摄像头和麦克风，再重试；或拨打122。", true);
    $c("call-join").hidden = false;
    return;
  }
  $c("call-self").srcObject = media;
  current = { pc: null, media, retry: null };
  $c("call-hangup").hidden = false;
  try {
    last = last || await status();
    current.pc = await connect(media, (last && last.ice_servers) || []);
    $c("call-box").dataset.state = "connecting";
    note("正在连接…");
  } catch (error) {
    stop();
    note(error.message, true);
    $c("call-join").hidden = false;
  }
}

async function check() {
  last = await status();
  if (!last) return;
  const box = $c("call-box");
  box.hidden = false;
  const source = last.role === "source";
  if (last.dropped) { stop(); note("调度员已结束您的视频连接；如需帮助请拨打122。"); $c("call-join").hidden = true; return; }
  $c("call-muted").hidden = !last.muted;
  if (current) {
    if (!last.call) stop("通话已结束。");
    else if (box.dataset.state === "live") note(talking());
    return;
  }
  if (source && window.kuaichuStartCall) { window.kuaichuStartCall = false; start(); return; }
  $c("call-join").hidden = !(last.call || source);
  $c("call-join").textContent = source ? "发起视频通话" : "加入视频通话";
  note(last.call ? "视频通话进行中，您可以用手机加入，让调度员看到现场。" : source ? "视频通话未连接，可重新发起。" : "调度员发起视频通话后，可以在这里加入。");
}

$c("call-join").addEventListener("click", () => start());
$c("call-hangup").addEventListener("click", () => stop("您已挂断。如需继续，请重新加入。"));

window.addEventListener("kuaichu-case", () => {
  check();
  if (!polling) polling = setInterval(check, 3000);
});
})();
