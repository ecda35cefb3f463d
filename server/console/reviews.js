"use strict";
// Reviews (复核): officers forward their units' requests to the unit above, reviewers accept them
// or not and conclude them. Each review shows the deadline of the stage it waits for, and a flag
// once that deadline has passed; the actions offered are the ones the server says this operator may take.

const STAGES = { officer: "转交期限 Forward by", reviewer: "办理期限 Decide by" };
let me = null;

function dueLine(r) {
  if (!r.due) return el("p", { class: "sub" }, "已办结 Closed");
  const line = el("p", {});
  line.appendChild(el("span", { class: "due" }, `${STAGES[r.owner] || "期限 Due"}：${r.due_words}（北京时间 ${beijingDateTime(r.due)} 前）`));
  if (r.overdue) line.appendChild(el("span", { class: "overdue" }, " · 已逾期 overdue"));
  return line;
}

function caseLink(r) {
  const href = me.role === "officer" ? `/determine?id=${r.case_id}` : `/case?id=${r.case_id}`;
  return el("a", { href, class: "case-no" }, r.case_no);
}

function filePart(r) {
  const part = el("div", {});
  for (const a of r.applicants || []) {
    part.appendChild(el("h3", {}, `${a.position}方申请 Applicant ${a.position} · ${beijingDateTime(a.at)}`));
    part.appendChild(el("p", { class: "said" }, `请求 Request：${a.request}`));
    part.appendChild(el("p", { class: "said" }, `理由 Reasons：${a.reasons}`));
  }
  if ((r.attachments || []).length) {
    const list = el("ul", {});
    for (const f of r.attachments) {
      const item = el("li", {});
      item.appendChild(el("a", { href: f.url, target: "_blank" }, `${f.position}方 · ${f.name || f.type}`));
      item.appendChild(el("span", { class: "sub" }, ` SHA-256 ${f.sha256.slice(0, 16)}…`));
      list.appendChild(item);
    }
    part.appendChild(el("p", {}, "证据 Evidence"));
    part.appendChild(list);
  }
  const docs = el("p", {});
  for (const d of r.determinations || []) {
    docs.appendChild(el("a", { href: d.pdf, target: "_blank" }, `认定书第${d.version}版${d.contested ? "（被申请复核）" : ""}`));
    docs.appendChild(document.createTextNode(" "));
  }
  if (r.case_file) docs.appendChild(el("a", { href: `/case?id=${r.case_id}` }, "案卷 Case file"));
  part.appendChild(docs);
  if (r.decision_reason) part.appendChild(el("p", {}, `受理决定理由 Decision: ${r.decision_reason}`));
  if (r.conclusion_text) part.appendChild(el("p", {}, `复核结论 Conclusion: ${r.conclusion_text}`));
  return part;
}

async function act(path, body) {
  await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await load();
}

function actions(r) {
  const box = el("div", { class: "actions" });
  const base = `/api/reviews/${r.id}`;
  if (r.actions.includes("forward")) {
    const b = el("button", { "data-action": "forward" }, "连同案卷转交上级 Forward with the case file");
    b.addEventListener("click", () => act(`${base}/forward`));
    box.appendChild(b);
  }
  if (r.actions.includes("accept")) {
    const reason = el("textarea", { rows: "2", placeholder: "受理或不予受理的理由（将告知各方当事人） Reason, told to every party" });
    const yes = el("button", { "data-action": "accept" }, "受理 Accept");
    const no = el("button", { "data-action": "decline", class: "danger" }, "不予受理 Decline");
    yes.addEventListener("click", () => act(`${base}/decision`, { accept: true, reason: reason.value }));
    no.addEventListener("click", () => act(`${base}/decision`, { accept: false, reason: reason.value }));
    box.append(reason, yes, no);
  }
  if (r.actions.includes("uphold")) {
    const text = el("textarea", { rows: "3", placeholder: "复核结论（将告知各方当事人） Conclusion, told to every party" });
    const keep = el("button", { "data-action": "uphold" }, "维持原认定 Uphold");
    const redo = el("button", { "data-action": "redetermine", class: "danger" }, "责令重新认定 Order a new determination");
    keep.addEventListener("click", () => act(`${base}/conclusion`, { outcome: "upheld", text: text.value }));
    redo.addEventListener("click", () => act(`${base}/conclusion`, { outcome: "redetermine", text: text.value }));
    box.append(text, keep, redo);
  }
  if (r.new_version_needed && me.role === "officer") {
    box.appendChild(el("a", { href: `/determine?id=${r.case_id}`, "data-action": "new-version" },
      "重新作出认定：出具新版本（填写更正理由） Issue a new version"));
  }
  return box;
}

function render(r) {
  const section = el("section", { class: "review", "data-id": String(r.id), "data-status": r.status, "data-overdue": String(r.overdue) });
  const title = el("h2", {});
  title.append(caseLink(r), document.createTextNode(` ${r.unit} · ${r.label} `));
  if (r.mine) title.appendChild(el("span", { class: "mine-badge" }, "待您办理 yours"));
  section.append(title, el("p", { class: "sub" }, `申请时间 Requested ${beijingDateTime(r.requested_at)}`), dueLine(r), filePart(r), actions(r));
  return section;
}

async function load() {
  const list = await request("/api/reviews");
  const full = await Promise.all(list.map((r) => request(`/api/reviews/${r.id}`)));
  const main = document.getElementById("reviews");
  main.replaceChildren(...full.map(render));
  if (!full.length) main.appendChild(el("p", { class: "empty" }, "暂无复核申请 No reviews"));
}

request("/api/me").then(async (operator) => {
  me = operator;
  document.getElementById("operator").textContent = `${me.display_name} · ${me.role}`;
  await load();
});
