"use strict";
// Public: a party or an insurer scanned the QR code. Shows what is on record for this code (the
// parties masked, plates and liabilities) and checks an uploaded PDF's signature and integrity on
// the server. The full document is for the case's parties (their page) and its officers.
const token = window.location.pathname.split("/").pop();
fetch(`/api/verify/${encodeURIComponent(token)}`).then(async (response) => {
  const record = document.getElementById("record");
  if (!response.ok) { record.textContent = "无此认定书 No determination with this code"; return; }
  const d = await response.json();
  const download = document.getElementById("download");
  download.href = `/api/verify/${encodeURIComponent(token)}/pdf`;
  download.hidden = false;
  const portal = document.getElementById("portal");
  portal.href = `/p?case=${encodeURIComponent(d.case_no)}`;
  portal.hidden = false;
  document.getElementById("parties").replaceChildren(...d.parties.map((p) => {
    const li = document.createElement("li");
    li.dataset.party = p.position;
    li.textContent = `当事人${p.position} ${p.name}${p.plate ? " · " + p.plate : ""}${p.liability ? " · 负" + p.liability + "责任" : ""}`;
    return li;
  }));
  record.textContent = `${d.unit} · 案件 ${d.case_no} · 第 ${d.version} 版 version ${d.version}` +
    ` · ${d.current ? "现行版本 current" : `已被第 ${d.latest_version} 版更正 superseded`} · SHA-256 ${d.sha256}`;
});
document.getElementById("file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const response = await fetch("/api/verify", { method: "POST", body: file, headers: { "Content-Type": "application/pdf" } });
  const r = await response.json();
  const out = document.getElementById("result");
  out.dataset.genuine = String(r.genuine);
  out.textContent = r.genuine
    ? `真实有效 Genuine and unaltered: ${r.case_no} v${r.version}${r.current ? "" : " (已被更正 superseded)"}`
    : `未通过核验 NOT genuine: ${r.reason}`;
});
