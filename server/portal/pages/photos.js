"use strict";
// A party's photos (the scene, the damage, a licence, a registration): each file goes up in chunks,
// each naming where it starts; after a dropped connection the page asks the server where to go on
// and continues from there. The server checks what the file is, keeps its EXIF time and place, and
// hashes it; the evidence list then shows it as the party's own.

(() => {
const $p = (id) => document.getElementById(id);
const CHUNK = 256 * 1024;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function say(text, error) {
  $p("photo-note").textContent = text;
  $p("photo-note").className = error ? "error" : "hint";
}

async function sha256(file) {
  if (!window.crypto || !crypto.subtle) return null;
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function json(response) {
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail.replace(/\s*\([^()]*\)$/, "") : null;
    throw Object.assign(new Error(detail || "上传失败，请重试。"), { status: response.status, final: Boolean(detail) });
  }
  return body;
}

async function upload(file, kind, index, count) {
  const started = await json(await fetch("/api/portal/photos", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: file.name, kind, size: file.size, sha256: await sha256(file) }),
  }));
  const url = `/api/portal/photos/${started.upload_id}`;
  let offset = 0;
  let failures = 0;
  for (;;) {
    say(`正在上传第${index}/${count}张：${Math.floor((offset / file.size) * 100)}%`);
    try {
      const answer = await json(await fetch(`${url}?offset=${offset}`, {
        method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body: file.slice(offset, offset + CHUNK),
      }));
      failures = 0;
      offset = answer.offset;
      if (answer.done) return answer.evidence;
    } catch (error) {
      if (error.final) throw error;
      if (++failures > 30) throw new Error("网络不稳定，上传未完成；已传的部分会保留，请稍后重新上传。");
      say(`网络中断，正在继续上传（第${failures}次重试）…`, true);
      await sleep(Math.min(1000 * failures, 5000));
      try {
        offset = (await json(await fetch(url))).offset; // where the server is
      } catch (lost) {
        // Still down: the next chunk's answer says where to go on.
      }
    }
  }
}

$p("photo-send").addEventListener("click", async () => {
  const files = Array.from($p("photo-files").files);
  if (!files.length) { say("请先选择或拍摄照片。", true); return; }
  const button = $p("photo-send");
  button.disabled = true;
  try {
    for (const [i, file] of files.entries()) {
      const evidence = await upload(file, $p("photo-kind").value, i + 1, files.length);
      const when = evidence.exif && evidence.exif.taken_at_local ? ` · 拍摄于${evidence.exif.taken_at_local}` : "";
      $p("photo-done").appendChild(Object.assign(document.createElement("li"), { textContent: `${evidence.kind} · ${file.name}${when}` }));
    }
    say(`已上传${files.length}张照片，调度员和民警可以看到。`);
    $p("photo-files").value = "";
    $p("photo-files").dispatchEvent(new Event("change"));
  } catch (error) {
    say(error.message, true);
  } finally {
    button.disabled = false;
  }
});

window.addEventListener("kuaichu-case", () => { $p("photos-box").hidden = false; });
})();
