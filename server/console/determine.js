"use strict";
// The officer's page: review everything collected for a handed-over case on one page, start from
// the usual outcome of the situation, set each party's liability, the facts and the legal basis,
// and issue the signed determination (or a corrected version, with its reason).

const caseId = new URLSearchParams(window.location.search).get("id");
let work = null;

const local = beijingDateTime;
const GALLERY = new Set(["still", "photo", "clip", "recording"]);
let evidence = []; // every file of the case: the statements play from its recordings

function renderStatus(c) {
  const badge = document.getElementById("case-status");
  badge.dataset.state = c.status;
  badge.textContent = stateLabel("case", c.status);
  const flag = document.getElementById("case-flag");
  flag.textContent = c.flag || "";
  flag.hidden = !c.flag;
}

function renderWork() {
  const c = work.case;
  document.getElementById("case-no").textContent = c.case_no;
  renderStatus(c);
  document.getElementById("report-line").textContent = `${local(c.triggered_at)} · ${c.device_id ? `${c.device_id} (${c.device_kind})` : `手机报警 ${c.reporter_phone}`} · ${c.unit.name}`;
  document.getElementById("location").textContent = c.position
    ? `GCJ-02 ${c.position.lat_gcj02.toFixed(5)}, ${c.position.lon_gcj02.toFixed(5)} (${c.position.source}${c.position.trusted ? "" : ", untrusted"})`
    : "无位置 no position";
  const f = c.facts;
  document.getElementById("facts-line").textContent = f
    ? `${f.place} · ${f.weather} · 伤情 injury ${f.injury} · 能移动 movable ${f.vehicles_movable ? "是 yes" : "否 no"}`
    : "—";
  document.getElementById("eligibility").textContent = c.eligibility || "—";
  const labels = new Map(work.parties.map((p) => [p.id, p.label]));
  document.getElementById("statements").replaceChildren(...(work.statements || []).map((s) => {
    const line = `${labels.get(s.party_id)} ${local(s.start)}–${beijingTime(s.end)}`;
    const item = el("li", { "data-statement": String(s.id) }, `${line}: ${s.summary}`);
    const play = el("button", { type: "button", class: "play-span" }, "▶ 播放录像 Play");
    play.addEventListener("click", () => gallery.playSpan(evidence, s.start, s.end, `陈述 statement ${line}`));
    item.appendChild(play);
    return item;
  }));
  document.getElementById("eligibility-reason").textContent = c.eligibility_reason || "";
  const body = document.getElementById("parties");
  body.replaceChildren();
  const atFault = document.getElementById("at-fault");
  atFault.replaceChildren();
  const shares = document.getElementById("liabilities");
  shares.replaceChildren();
  work.parties.forEach((p, i) => {
    const row = el("tr", { "data-party": p.label });
    row.appendChild(el("td", {}, p.label));
    row.appendChild(el("td", {}, p.name));
    row.appendChild(el("td", {}, p.plate ? `${p.plate}${p.plate_read ? ` (${p.plate_read})` : ""}` : "—"));
    row.appendChild(el("td", {}, p.licence_no || "—"));
    row.appendChild(el("td", {}, [p.insurer, p.policy_no].filter(Boolean).join(" ") || "—"));
    const checks = el("td", {});
    for (const [kind, check] of Object.entries(p.checks)) {
      checks.appendChild(el("div", { class: `check check-${check ? check.result : "none"}` }, checkText(kind, check)));
    }
    row.appendChild(checks);
    body.appendChild(row);
    atFault.appendChild(el("option", { value: String(i) }, `${p.label} ${p.name}`));
    const label = el("label", {}, `${p.label} ${p.name} `);
    const select = el("select", { "data-party-id": String(p.id), "data-label": p.label });
    for (const share of ["全部", "主要", "同等", "次要", "无"]) select.appendChild(el("option", { value: share }, share));
    label.appendChild(select);
    shares.appendChild(label);
  });
}

async function loadEvidence() {
  const list = document.getElementById("evidence");
  evidence = await gallery.load(list, caseId, GALLERY);
  document.getElementById("no-evidence").hidden = list.children.length > 0;
}

async function loadVersions() {
  showVersions(await request(`/api/cases/${caseId}/determinations`));
}

let shownVersions = [];
function showVersions(versions) {
  shownVersions = versions;
  const body = document.getElementById("versions");
  body.replaceChildren();
  for (const v of versions) {
    const row = el("tr", { "data-version": String(v.version) });
    row.appendChild(el("td", {}, `第 ${v.version} 版 v${v.version}${v.current ? " · 现行 current" : ""}`));
    row.appendChild(el("td", {}, local(v.issued_at)));
    row.appendChild(el("td", {}, v.correction_reason || ""));
    const links = el("td", {});
    links.appendChild(el("a", { href: `/api/determinations/${v.id}/pdf`, class: "pdf", target: "_blank" }, "PDF"));
    links.appendChild(document.createTextNode(" · "));
    links.appendChild(el("a", { href: `/verify/${v.token}`, class: "verify", target: "_blank" }, "核验 verify"));
    row.appendChild(links);
    body.appendChild(row);
  }
  document.getElementById("correction-label").hidden = versions.length === 0;
}

const SMS_STATES = { pending: "待发 pending", sent: "已发 sent", reached: "已送达 reached", failed: "失败 failed" };

async function loadDeliveries() {
  const [messages, versions] = await Promise.all([request(`/api/cases/${caseId}/deliveries`), request(`/api/cases/${caseId}/determinations`)]);
  const labels = new Map(work.parties.map((p) => [p.id, `${p.label} ${p.name}`]));
  const versionOf = new Map(versions.map((v) => [v.id, v.version]));
  document.getElementById("no-deliveries").hidden = messages.length > 0;
  document.getElementById("deliveries").replaceChildren(...messages.map((m) => {
    const row = el("tr", { "data-sms": String(m.id), "data-party": labels.get(m.party_id) || "", "data-state": m.status });
    row.appendChild(el("td", {}, labels.get(m.party_id) || "—"));
    row.appendChild(el("td", {}, `v${versionOf.get(m.determination_id) ?? "?"}`));
    row.appendChild(el("td", { class: "sms-state" }, (SMS_STATES[m.status] || m.status) + (m.last_error ? ` — ${m.last_error}` : "")));
    row.appendChild(el("td", {}, m.sent_at ? local(m.sent_at) : "—"));
    row.appendChild(el("td", {}, m.reached_at ? local(m.reached_at) : "—"));
    row.appendChild(el("td", {}, String(m.attempts)));
    return row;
  }));
}

// Receipts and other operators change the case while the officer looks at it; the decision form
// is left alone, so nothing the officer is choosing is lost.
async function caseChanged(summary) {
  renderStatus(summary || (await request(`/api/cases/${caseId}/work`)).case);
  await Promise.all([loadDeliveries(), loadEvents(), loadMilestones()]);
}

const MILESTONES = { reported: "报警 reported", answered: "接听 answered", evidence_complete: "取证完成 evidence complete", cleared: "撤离 cleared", determined: "认定 determined", delivered: "送达 delivered" };

async function loadMilestones() {
  const m = await request(`/api/cases/${caseId}/milestones`);
  document.getElementById("milestones").replaceChildren(...Object.entries(MILESTONES).map(([key, name]) => {
    const done = m[key];
    return el("li", { "data-milestone": key, "data-done": String(Boolean(done)) },
      done ? `${name}: ${local(done.at)} (+${Math.round(done.after_s)} s)` : `${name}: —`);
  }));
}

async function loadEvents() {
  const log = await request(`/api/cases/${caseId}/events`);
  document.getElementById("chain").textContent = log.chain_problems.length
    ? `日志链断裂 chain broken: ${log.chain_problems.join("; ")}`
    : `日志链完整 chain intact · ${log.events.length} events`;
  const body = document.getElementById("events");
  body.replaceChildren();
  for (const e of log.events) {
    const row = el("tr", {});
    for (const text of [String(e.seq), local(e.at), e.actor, e.action, e.source]) row.appendChild(el("td", {}, text));
    body.appendChild(row);
  }
}

document.getElementById("propose").addEventListener("click", async () => {
  const situation = document.getElementById("situation").value;
  const atFault = document.getElementById("at-fault").value;
  const p = await request(`/api/cases/${caseId}/proposal?situation=${situation}&at_fault=${atFault}`);
  document.querySelectorAll("#liabilities select").forEach((select, i) => { select.value = p.liabilities[i]; });
  document.getElementById("legal-basis").value = p.legal_basis;
  // The draft of the facts only fills an empty box: what the officer wrote stays.
  const facts = document.getElementById("facts");
  if (!facts.value.trim()) facts.value = p.facts;
});

document.getElementById("determination-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    situation: document.getElementById("situation").value,
    liabilities: [...document.querySelectorAll("#liabilities select")].map((s) => ({ party_id: Number(s.dataset.partyId), liability: s.value })),
    facts: document.getElementById("facts").value.trim(),
    legal_basis: document.getElementById("legal-basis").value.trim(),
    correction_reason: document.getElementById("correction-reason").value.trim() || null,
  };
  const issued = await request(`/api/cases/${caseId}/determinations`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  document.getElementById("correction-reason").value = "";
  // The answer is the new version: it shows at once, the rest of the page follows.
  showVersions([...shownVersions.map((v) => ({ ...v, current: false })), issued]);
  const refreshWork = async () => { work = await request(`/api/cases/${caseId}/work`); renderWork(); };
  await Promise.all([refreshWork(), loadVersions(), loadEvents(), loadMilestones(), loadDeliveries()]);
});

(async () => {
  await lifecyclesLoaded;
  const me = await request("/api/me");
  document.getElementById("operator").textContent = `${me.display_name} · ${me.role}`;
  if (me.role !== "officer") {
    document.getElementById("forbidden").hidden = false;
    return;
  }
  const table = await request("/api/situations");
  const select = document.getElementById("situation");
  for (const [key, s] of Object.entries(table.situations)) select.appendChild(el("option", { value: key }, `${s.name} ${key}`));
  work = await request(`/api/cases/${caseId}/work`);
  renderWork();
  document.getElementById("review").hidden = false;
  await Promise.all([loadEvidence(), loadVersions()]);
  watchCase(caseId, (summary) => caseChanged(summary).catch((error) => showError(String(error.message || error))));
})().catch((error) => showError(String(error.message || error)));
