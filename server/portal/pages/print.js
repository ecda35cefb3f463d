"use strict";
// The print view: the determination's own lines (as the PDF has them) laid out on A4; the printed
// sheet carries the same verification QR code as the PDF.
const id = window.location.pathname.split("/").pop();

function line(size, height, text, align) {
  const p = document.createElement("p");
  p.className = align;
  p.style.fontSize = `${size}pt`;
  p.style.lineHeight = `${height}mm`;
  p.style.minHeight = `${height}mm`;
  p.textContent = text;
  return p;
}

async function load() {
  const notice = document.getElementById("notice");
  const response = await fetch(`/api/portal/determinations/${encodeURIComponent(id)}`);
  if (!response.ok) {
    notice.textContent = response.status === 401
      ? "请先登录：打开短信中的链接，输入验证码后再打印。"
      : "没有找到这份认定书，请回到案件页面重新选择。";
    notice.hidden = false;
    return;
  }
  const doc = await response.json();
  document.title = `事故认定书 ${doc.case_no} 第${doc.version}版`;
  document.getElementById("pdf").href = doc.pdf;
  if (!doc.current) {
    notice.textContent = `这是第${doc.version}版，已被更正；请打印现行版本。`;
    notice.hidden = false;
  }
  const sheet = document.getElementById("sheet");
  const qr = document.createElement("img");
  qr.className = "qr";
  qr.alt = "核验二维码";
  qr.src = doc.qr;
  sheet.appendChild(qr);
  for (const [size, height, text, align] of doc.lines) sheet.appendChild(line(size, height, text, align));
  sheet.hidden = false;
}

document.getElementById("print").addEventListener("click", () => window.print());
load();
