"use strict";
// The case's evidence as thumbnails, on the dispatcher's workspace and the officer's page: a
// click shows a still or photo full size, or plays a clip or a recording segment, in one viewer
// over the page (Esc closes it). A statement's span of the call recording plays the same way,
// segment after segment, from its first second to its last. Files come from the evidence routes:
// /api/evidence/{id} as stored (with its SHA-256), /api/evidence/{id}/play as a browser plays it.

const gallery = (() => {
const PICTURES = new Set(["still", "photo"]);
const VIDEOS = new Set(["clip", "recording"]);
const NAMES = { still: "拍照 still", photo: "当事人照片 photo", clip: "视频片段 clip", recording: "录像 recording" };

function viewer() {
  let dialog = document.getElementById("viewer");
  if (dialog) return dialog;
  dialog = el("dialog", { id: "viewer", class: "viewer", "aria-label": "证据查看 Evidence viewer" });
  const close = el("button", { type: "button", class: "viewer-close" }, "关闭 Close (Esc)");
  close.addEventListener("click", () => dialog.close());
  dialog.append(el("div", { class: "viewer-body" }), el("p", { class: "viewer-caption" }), close);
  // A video left playing behind a closed viewer would go on talking.
  dialog.addEventListener("close", () => dialog.querySelector(".viewer-body").replaceChildren());
  document.body.appendChild(dialog);
  return dialog;
}

function open(content, caption) {
  const dialog = viewer();
  dialog.querySelector(".viewer-body").replaceChildren(content);
  dialog.querySelector(".viewer-caption").textContent = caption;
  if (!dialog.open) dialog.showModal();
  return content;
}

function span(evidence) {
  const start = evidence.media_start ? beijingTime(evidence.media_start) : "";
  return evidence.media_end && evidence.kind !== "still" ? `${start}–${beijingTime(evidence.media_end)}` : start;
}

function caption(evidence) {
  return `${NAMES[evidence.kind] || evidence.kind} ${span(evidence)} · SHA-256 ${evidence.sha256}`;
}

function show(evidence) {
  if (PICTURES.has(evidence.kind)) {
    open(el("img", { src: evidence.url, alt: NAMES[evidence.kind] }), caption(evidence));
  } else {
    const video = open(el("video", { src: `${evidence.url}/play`, controls: "", autoplay: "", "data-evidence": String(evidence.id) }), caption(evidence));
    video.addEventListener("error", () => { video.dataset.state = "error"; });
  }
}

// A tile for one file: the thumbnail (or a play button) opens the viewer; the link under it is
// the file as stored, for saving with its hash.
function tile(evidence, figure = el("figure")) {
  figure.className = "evidence";
  figure.dataset.evidence = String(evidence.id);
  figure.dataset.kind = evidence.kind;
  figure.replaceChildren();
  const opener = el("button", { type: "button", class: "thumb", title: caption(evidence) });
  if (PICTURES.has(evidence.kind)) opener.appendChild(el("img", { src: evidence.url, alt: `${NAMES[evidence.kind]} ${span(evidence)}` }));
  else opener.textContent = `▶ ${NAMES[evidence.kind] || evidence.kind}`;
  opener.addEventListener("click", () => show(evidence));
  const saved = el("a", { href: evidence.url, download: "", title: `sha256 ${evidence.sha256}` }, span(evidence) || "下载 file");
  const note = el("figcaption", {});
  note.appendChild(saved);
  figure.append(opener, note);
  return figure;
}

function pending(figure, kind) {
  figure.className = "evidence pending";
  figure.textContent = kind === "still" ? "拍照中 taking still…" : "取视频中 fetching clip…";
}

function failed(figure, reason) {
  figure.className = "evidence failed";
  figure.textContent = `失败 failed: ${reason}`;
}

// The case's files of the given kinds, oldest first, into `container`; the list is returned
// whole (the recordings for statements are among it).
async function load(container, caseId, kinds) {
  const all = await request(`/api/cases/${caseId}/evidence`);
  container.replaceChildren(...all.filter((e) => kinds.has(e.kind)).map((e) => tile(e)));
  return all;
}

// The recording from `start` to `end` (ISO times): each segment that covers part of it in turn,
// from the span's first second in the first to its last in the last. The video element says where
// it is: data-state playing, then done.
function playSpan(recordings, start, end, title) {
  const from = new Date(start).getTime();
  const to = new Date(end).getTime();
  const parts = recordings
    .filter((r) => VIDEOS.has(r.kind) && r.media_start && r.media_end)
    .filter((r) => new Date(r.media_end).getTime() > from && new Date(r.media_start).getTime() < to)
    .sort((a, b) => new Date(a.media_start) - new Date(b.media_start));
  const video = open(el("video", { controls: "", autoplay: "", "data-state": "loading" }), title);
  if (parts.length === 0) {
    video.dataset.state = "error";
    viewer().querySelector(".viewer-caption").textContent = `${title} · 没有覆盖这段时间的录像 no recording covers this span`;
    return video;
  }
  let index = 0;
  const startOf = (part) => new Date(part.media_start).getTime();
  const next = () => {
    const part = parts[index];
    video.dataset.evidence = String(part.id);
    video.src = `${part.url}/play`;
    video.addEventListener("loadedmetadata", () => {
      video.currentTime = Math.max(0, (from - startOf(part)) / 1000);
      video.play().catch(() => {});
    }, { once: true });
  };
  video.addEventListener("playing", () => { video.dataset.state = "playing"; });
  video.addEventListener("timeupdate", () => {
    if (startOf(parts[index]) + video.currentTime * 1000 < to) return;
    video.pause();
    video.dataset.state = "done";
  });
  video.addEventListener("ended", () => {
    index += 1;
    if (index < parts.length) next();
    else video.dataset.state = "done";
  });
  video.addEventListener("error", () => { video.dataset.state = "error"; });
  next();
  return video;
}

return { tile, pending, failed, load, playSpan };
})();
