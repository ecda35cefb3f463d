"use strict";
// A degraded call on the call panel: when the unit's video cannot connect, the unit sends a small
// still and the sound since the last one every few seconds over MQTT; the server keeps each as
// evidence and announces it (call.scene). The panel shows the newest still in place of the video
// and plays the sound clips one after the other, falling behind by at most a clip or two. When
// the call goes live again the video is back in its place.

(() => {
const BACKLOG = 2; // clips waiting to be played; older ones are skipped to stay near the scene
let callId = null;
let clips = [];

function showing(scene) {
  document.getElementById("call-scene").hidden = !scene;
  document.getElementById("call-video").hidden = scene;
}

function playNext() {
  const sound = document.getElementById("call-sound");
  if (!sound.paused || clips.length === 0) return;
  sound.src = clips.shift();
  sound.play().catch(() => {}); // a clip the browser refuses is skipped; the next one is tried
}

function reset(summary) {
  callId = summary ? summary.call_id : null;
  clips = [];
  const sound = document.getElementById("call-sound");
  sound.pause();
  sound.removeAttribute("src");
  const still = document.getElementById("call-scene");
  still.removeAttribute("src");
  delete still.dataset.evidence;
  showing(false);
}

function onScene(evidence) {
  if (evidence.kind === "scene-still") {
    const still = document.getElementById("call-scene");
    still.src = evidence.url;
    still.dataset.evidence = evidence.id;
    still.title = `${new Date(evidence.media_start).toLocaleTimeString("zh-CN", { hour12: false })} sha256 ${evidence.sha256}`;
    showing(true);
  } else if (evidence.kind === "scene-sound") {
    clips.push(evidence.url);
    clips = clips.slice(-BACKLOG);
    playNext();
  }
}

window.addEventListener("kuaichu-call", (event) => reset(event.detail));

window.addEventListener("kuaichu-message", (event) => {
  const { message } = event.detail;
  if (message.type === "call.scene" && message.call_id === callId) {
    onScene(message.evidence);
  } else if (message.type === "call.state" && message.call.call_id === callId && message.call.state === lifecycle.call.values.LIVE) {
    clips = [];
    showing(false);
  }
});

const sound = document.getElementById("call-sound");
sound.addEventListener("ended", () => {
  sound.dataset.played = String(Number(sound.dataset.played || 0) + 1);
  playNext();
});
sound.addEventListener("error", playNext);
document.getElementById("call-mute").addEventListener("click", () => {
  sound.muted = document.getElementById("call-video").muted;
});
})();
