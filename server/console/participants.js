"use strict";
// The parties' phones in the call on the panel: each phone that joined (乙's driver, a pedestrian,
// from the parties' web app) gets a tile of its own with its video and sound, on a connection of
// its own to the server (an offer over the queue's WebSocket, like the call's), and buttons to take
// a still of it, mute it for the consoles (the recording keeps everything) or drop it from the call.
// A call that a phone reported shows that phone in the main player, as a unit's would be.

(() => {
let socket = null;
let call = null; // the summary of the call on the panel
const tiles = new Map(); // party_id -> { box, pc }

function box() {
  return document.getElementById("call-participants");
}

function send(message) {
  if (socket && call) socket.send(JSON.stringify({ call_id: call.call_id, ...message }));
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => pc.addEventListener("icegatheringstatechange", () => {
    if (pc.iceGatheringState === "complete") resolve();
  }));
}

async function watch(tile, partyId) {
  if (tile.pc) tile.pc.close();
  const pc = new RTCPeerConnection({ iceServers: (await request("/api/calls")).ice_servers });
  tile.pc = pc;
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.addEventListener("track", (event) => {
    stream.addTrack(event.track);
    const video = tile.box.querySelector("video");
    if (video.srcObject !== stream) video.srcObject = stream;
  });
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  send({ type: "participant.watch", party_id: partyId, sdp: pc.localDescription.sdp });
}

function tileFor(p) {
  let tile = tiles.get(p.party_id);
  if (!tile) {
    const figure = el("figure", { class: "participant", "data-party": String(p.party_id) });
    figure.appendChild(el("video", { autoplay: "", playsinline: "" }));
    const caption = el("figcaption");
    figure.appendChild(caption);
    const controls = el("div", { class: "participant-controls" });
    const still = el("button", { type: "button", "data-act": "still" }, "截图 Still");
    still.addEventListener("click", () => send({ type: "participant.still", party_id: p.party_id }));
    const mute = el("button", { type: "button", "data-act": "mute" });
    mute.addEventListener("click", () => send({ type: "participant.mute", party_id: p.party_id, muted: mute.dataset.muted !== "true" }));
    const drop = el("button", { type: "button", class: "danger", "data-act": "drop" }, "移出 Drop");
    drop.addEventListener("click", () => send({ type: "participant.drop", party_id: p.party_id }));
    controls.append(still, mute, drop);
    figure.appendChild(controls);
    box().appendChild(figure);
    tile = { box: figure, pc: null };
    tiles.set(p.party_id, tile);
    watch(tile, p.party_id);
  }
  tile.box.querySelector("figcaption").textContent = `${p.label} · 手机 phone${p.muted ? " · 已静音 muted" : ""}`;
  const mute = tile.box.querySelector('[data-act="mute"]');
  mute.dataset.muted = String(p.muted);
  mute.textContent = p.muted ? "取消静音 Unmute" : "静音 Mute";
  tile.box.dataset.muted = String(p.muted);
  return tile;
}

function show(list) {
  if (!call || list.call_id !== call.call_id) return;
  const present = new Set(list.participants.map((p) => p.party_id));
  for (const [partyId, tile] of tiles) {
    if (!present.has(partyId)) {
      if (tile.pc) tile.pc.close();
      tile.box.remove();
      tiles.delete(partyId);
    }
  }
  for (const p of list.participants) tileFor(p);
  box().hidden = tiles.size === 0;
}

function clear() {
  for (const tile of tiles.values()) if (tile.pc) tile.pc.close();
  tiles.clear();
  box().replaceChildren();
  box().hidden = true;
}

window.addEventListener("kuaichu-queue-loaded", (event) => {
  socket = event.detail.ws;
  if (call) {
    for (const tile of tiles.values()) if (tile.pc) tile.pc.close();
    clear();
    send({ type: "participant.list" });
  }
});

window.addEventListener("kuaichu-call", (event) => {
  clear();
  call = event.detail;
  if (call) send({ type: "participant.list" });
});

window.addEventListener("kuaichu-message", async (event) => {
  const { message } = event.detail;
  if (message.type === "call.participants") show(message);
  else if (message.type === "participant.answer" && call && message.call_id === call.call_id) {
    const tile = tiles.get(message.party_id);
    if (tile && tile.pc) await tile.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
  }
});
})();
