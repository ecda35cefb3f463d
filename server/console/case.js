"use strict";
// One case's work: the dispatcher enters the parties and facts, runs the registry checks, and
// hands the case to the officers or escalates it. Everything shown comes back from the server
// after each action, so the page never shows a state the server did not accept.

const caseId = new URLSearchParams(window.location.search).get("id");
const ROLES = { driver: "驾驶人 driver", non_motor: "非机动车 non-motor", property_owner: "财产所有人 owner", pedestrian: "行人 pedestrian" };
const VERDICTS = { eligible: "适用 eligible", ineligible: "不适用 ineligible", incomplete: "待补充 incomplete" };
let vehicleTypes = new Map(); // code -> name, from the server (/api/vehicle-types)
let current = null;
let me = null;
let readings = []; // the unit's plate readings, newest first (GET /api/cases/{id}/plates)
let autoRead = false; // the form's read was chosen by prefillPlate, not by the dispatcher
let partyTyped = false; // the dispatcher has begun this party: reads arriving now leave the form alone

// The page's changes and its live refreshes take turns: a refresh that read the case before the
// dispatcher's own change was committed would otherwise land after it and show the older state.
let turns = Promise.resolve();
function inTurn(fn) {
  const turn = turns.then(fn);
  turns = turn.catch(() => {});
  return turn;
}

const send = (method, path, body) => inTurn(() =>
  request(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body ?? {}) }));

function checkCell(checks) {
  const cell = el("td", { class: "checks" });
  for (const kind of ["licence", "vehicle", "insurance"]) {
    const c = checks[kind];
    const line = el("div", { class: `check check-${c ? c.result : "none"}`, "data-kind": kind });
    line.textContent = checkText(kind, c);
    cell.appendChild(line);
  }
  return cell;
}

// live: a change pushed while the dispatcher may be typing, which leaves the forms alone.
function render(work, live = false) {
  current = work;
  const c = work.case;
  document.getElementById("case-no").textContent = c.case_no;
  const badge = document.getElementById("case-status");
  badge.dataset.state = c.status;
  badge.textContent = stateLabel("case", c.status);
  const where = c.vehicle ? c.vehicle.plate : c.site ? c.site.name : "";
  document.getElementById("report-line").textContent =
    `${new Date(c.triggered_at).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false })} · ${c.device_id || `手机报警 ${c.reporter_phone}`} · ${where} · ${c.unit.name}`;
  const verdict = document.getElementById("eligibility");
  verdict.dataset.verdict = c.eligibility || "";
  verdict.textContent = VERDICTS[c.eligibility] || "—";
  document.getElementById("eligibility-reason").textContent = c.eligibility_reason || "";
  const { events: caseEvents, values: caseStatus } = lifecycle.case;
  const working = stateTakes("case", c.status, caseEvents.WORK); // the dispatcher's evidence is open
  const closed = document.getElementById("closed-line");
  closed.hidden = working;
  closed.textContent = working ? ""
    : c.status === caseStatus.ESCALATED ? `${stateLabel("case", c.status)}: ${c.escalation_reason}`
      : `已移交 handed over ${c.handed_over_at ? beijingDateTime(c.handed_over_at) : ""}`;
  const body = document.getElementById("parties");
  body.replaceChildren();
  for (const p of work.parties) {
    const row = el("tr", { "data-party": p.label });
    row.appendChild(el("td", {}, p.label));
    row.appendChild(el("td", {}, ROLES[p.role] || p.role));
    row.appendChild(el("td", { class: "name" }, p.name));
    row.appendChild(el("td", {}, p.id_number));
    row.appendChild(el("td", {}, p.phone));
    row.appendChild(el("td", {}, p.licence_no || "—"));
    const plate = el("td", { class: "plate" }, p.plate || "—");
    if (p.plate_read) plate.appendChild(el("div", { class: "sub" }, `识别 read ${p.plate_read}${p.plate_corrected ? " · 已更正 corrected" : ""}`));
    row.appendChild(plate);
    row.appendChild(el("td", {}, p.vehicle_type ? `${vehicleTypes.get(p.vehicle_type) || p.vehicle_type}` : "—"));
    row.appendChild(el("td", {}, [p.insurer, p.policy_no].filter(Boolean).join(" ") || "—"));
    row.appendChild(checkCell(p.checks));
    row.addEventListener("click", () => editParty(p));
    body.appendChild(row);
  }
  if (c.facts && !live) fillFacts(c.facts);
  const partySelect = document.getElementById("s-party");
  const chosen = partySelect.value;
  partySelect.replaceChildren(...work.parties.map((p) => el("option", { value: String(p.id) }, `${p.label} ${p.name}`)));
  if (chosen) partySelect.value = chosen;
  const labels = new Map(work.parties.map((p) => [p.id, p.label]));
  document.getElementById("statements").replaceChildren(...(work.statements || []).map((s) =>
    el("li", { "data-statement": String(s.id) }, `${labels.get(s.party_id)} ${beijingTime(s.start)}–${beijingTime(s.end)}: ${s.summary}`)));
  const clear = document.getElementById("clear-state");
  clear.dataset.state = c.moved_off_at ? "moved-off" : c.clear_overdue_at ? "overdue" : c.clear_sent_at ? "sent" : "";
  clear.textContent = c.moved_off_at ? `已驶离 moved off ${beijingTime(c.moved_off_at)}`
    : c.clear_overdue_at ? `未驶离 not moved off (${c.flag || ""})`
      : c.clear_sent_at ? `已通知撤离 told to clear ${beijingTime(c.clear_sent_at)}` : "";
  document.getElementById("clear-road").disabled = !(me && me.role === "dispatcher" && stateTakes("case", c.status, caseEvents.CLEAR_ROAD));
  const open = working && me && me.role === "dispatcher";
  for (const id of ["p-save", "run-checks", "f-save", "hand-over", "escalate", "s-save"]) document.getElementById(id).disabled = !open;
  document.getElementById("hand-over").disabled = !open || c.eligibility !== "eligible";
  document.getElementById("plates-read").disabled = !(me && me.role === "dispatcher");
  showInstructionState(work, me);
  readChoices();
}

// The reads the party form can take a plate from: the plate the reporting unit carries (as
// provisioned: party 甲's, usually), then the reader's, best first and each text once.
function readChoices() {
  const select = document.getElementById("p-read");
  const chosen = select.value;
  const own = current && current.case.vehicle ? current.case.vehicle.plate : "";
  const seen = new Set(own ? [own] : []);
  const options = own ? [el("option", { value: "report", "data-text": own }, `${own} 本机车辆 the unit's vehicle`)] : [];
  for (const reading of readings) {
    for (const r of reading.plates) {
      if (seen.has(r.text)) continue;
      seen.add(r.text);
      options.push(el("option", { value: `reader:${r.id}`, "data-text": r.text }, `${r.text} 识别 read ${r.confidence.toFixed(2)}`));
    }
  }
  select.replaceChildren(...options);
  if (chosen && options.some((o) => o.value === chosen)) select.value = chosen;
  document.getElementById("p-use-read").disabled = options.length === 0;
}

const chosenRead = () => {
  const option = document.getElementById("p-read").selectedOptions[0];
  return option ? { value: option.value, text: option.dataset.text } : null;
};

// A new party's plate starts as the first read no party has yet: the unit's own vehicle for 甲,
// then what the reader read. Saved as it is, the read is confirmed. Typing another plate over a
// read chosen this way lets it go (another vehicle, most likely); a read the dispatcher chose and
// then corrected is kept with the correction.
function prefillPlate() {
  if (partyTyped || document.getElementById("p-id").value || document.getElementById("p-plate").value) return;
  const taken = new Set((current ? current.parties : []).map((p) => p.plate));
  const select = document.getElementById("p-read");
  const option = [...select.options].find((o) => !taken.has(o.dataset.text));
  if (!option) return;
  select.value = option.value;
  document.getElementById("p-use-read").checked = true;
  document.getElementById("p-plate").value = option.dataset.text;
  autoRead = true;
}

function renderPlates(list) {
  readings = list;
  // A correction being typed survives the list being drawn again (a live update), focus included.
  const typing = new Map([...document.querySelectorAll("#plate-reads .read-confirm[data-dirty]")].map((i) => [i.dataset.readId, i.value]));
  const focused = document.activeElement && document.activeElement.classList.contains("read-confirm") ? document.activeElement.dataset.readId : null;
  const items = [];
  for (const reading of readings) {
    const when = beijingTime(reading.captured_at || reading.received_at);
    const source = reading.source === "report" ? "报警时 at the report" : "调度请求 on request";
    if (reading.error) {
      items.push(el("li", { class: "reading-error", "data-reading": reading.reading_id }, `${when} ${source}: 未识别 no reads — ${reading.error}`));
      continue;
    }
    if (reading.plates.length === 0) {
      items.push(el("li", { class: "reading-empty", "data-reading": reading.reading_id }, `${when} ${source}: 未发现车牌 no plate in the still`));
    }
    for (const r of reading.plates) items.push(readItem(r, `${when} ${source}`));
  }
  document.getElementById("plate-reads").replaceChildren(...items);
  for (const input of document.querySelectorAll("#plate-reads .read-confirm")) {
    if (typing.has(input.dataset.readId)) {
      input.value = typing.get(input.dataset.readId);
      input.dataset.dirty = "1";
    }
    if (input.dataset.readId === focused) input.focus();
  }
  readChoices();
  prefillPlate();
}

function readItem(r, where) {
  const item = el("li", { "data-read": String(r.id) });
  item.appendChild(el("img", { class: "plate-crop", src: r.crop, alt: r.text }));
  item.appendChild(el("span", { class: "read-text" }, r.text));
  item.appendChild(el("span", { class: "sub" }, `${r.confidence.toFixed(2)} · ${r.kind} · ${where}`));
  const input = el("input", { class: "read-confirm", maxlength: "10", "aria-label": `plate ${r.text}`, "data-read-id": String(r.id) });
  input.value = r.confirmed_text || r.text;
  input.addEventListener("input", () => { input.dataset.dirty = "1"; });
  item.appendChild(input);
  const save = el("button", { type: "button", class: "read-save" }, "确认/更正 Confirm");
  save.disabled = !(me && me.role === "dispatcher");
  save.addEventListener("click", async () => {
    await send("PUT", `/api/cases/${caseId}/plates/reads/${r.id}`, { text: input.value });
    delete input.dataset.dirty;
    await loadPlates();
  });
  item.appendChild(save);
  const state = r.confirmed_text === null ? "" : r.corrected ? `已更正 corrected → ${r.confirmed_text}` : "已确认 confirmed";
  item.appendChild(el("span", { class: "read-state", "data-state": r.confirmed_text === null ? "" : r.corrected ? "corrected" : "confirmed" }, state));
  return item;
}

async function loadPlates() {
  renderPlates((await request(`/api/cases/${caseId}/plates`)).readings);
}


function editParty(p) {
  document.getElementById("p-id").value = p.id;
  document.getElementById("p-role").value = p.role;
  document.getElementById("p-name").value = p.name;
  document.getElementById("p-id-number").value = p.id_number;
  document.getElementById("p-phone").value = p.phone;
  document.getElementById("p-licence").value = p.licence_no || "";
  document.getElementById("p-plate").value = p.plate || "";
  document.getElementById("p-use-read").checked = Boolean(p.plate_read);
  autoRead = false;
  const read = [...document.getElementById("p-read").options].find((o) => o.dataset.text === p.plate_read);
  if (read) document.getElementById("p-read").value = read.value;
  document.getElementById("p-type").value = p.vehicle_type || "";
  document.getElementById("p-insurer").value = p.insurer || "";
  document.getElementById("p-policy").value = p.policy_no || "";
}

function fillFacts(f) {
  document.getElementById("f-injury").value = f.injury;
  document.getElementById("f-movable").checked = f.vehicles_movable;
  document.getElementById("f-impairment").checked = f.suspected_impairment;
  document.getElementById("f-hazardous").checked = f.hazardous_goods;
  document.getElementById("f-hit-and-run").checked = f.hit_and_run;
  document.getElementById("f-disputed").checked = f.facts_disputed;
  document.getElementById("f-owner-present").checked = Boolean(f.owner_present);
  document.getElementById("f-place").value = f.place;
  document.getElementById("f-weather").value = f.weather;
}

const value = (id) => document.getElementById(id).value.trim() || null;

document.getElementById("p-plate").addEventListener("input", () => {
  const read = chosenRead();
  if (autoRead && read && value("p-plate") !== read.text) document.getElementById("p-use-read").checked = false;
  autoRead = false;
});

document.getElementById("p-use-read").addEventListener("change", (event) => {
  autoRead = false;
  const read = chosenRead();
  if (event.target.checked && read && !value("p-plate")) document.getElementById("p-plate").value = read.text;
});

document.getElementById("p-new").addEventListener("click", () => {
  partyTyped = false;
  setTimeout(prefillPlate, 0); // after the reset
});
for (const type of ["input", "change"]) {
  document.getElementById("party-form").addEventListener(type, () => { partyTyped = true; });
}

document.getElementById("p-read").addEventListener("change", () => {
  const read = chosenRead();
  if (read && document.getElementById("p-use-read").checked) document.getElementById("p-plate").value = read.text;
});

document.getElementById("plates-read").addEventListener("click", async () => {
  const state = document.getElementById("plates-state");
  state.dataset.state = "waiting";
  state.textContent = "等待设备 asking the unit…";
  try {
    const reading = await send("POST", `/api/cases/${caseId}/plates/read`);
    await loadPlates(); // the list shows the reads by the time the line says they are here
    state.dataset.state = reading.error ? "error" : "done";
    state.textContent = reading.error ? `未识别 no reads: ${reading.error}` : `识别 ${reading.plates.length} 块 plate(s) read`;
  } catch (error) {
    state.dataset.state = "error";
    state.textContent = "";
    await loadPlates();
  }
});

document.getElementById("party-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    role: value("p-role"), name: value("p-name"), id_number: value("p-id-number"), phone: value("p-phone"),
    licence_no: value("p-licence"), plate: value("p-plate"), vehicle_type: value("p-type"),
    insurer: value("p-insurer"), policy_no: value("p-policy"),
  };
  const read = document.getElementById("p-use-read").checked ? chosenRead() : null;
  if (read && read.value === "report") body.plate_read_source = "report";
  if (read && read.value.startsWith("reader:")) {
    body.plate_read_source = "reader";
    body.plate_read_id = Number(read.value.slice("reader:".length));
  }
  const id = value("p-id");
  await send(id ? "PUT" : "POST", `/api/cases/${caseId}/parties${id ? `/${id}` : ""}`, body);
  document.getElementById("party-form").reset();
  document.getElementById("p-id").value = "";
  autoRead = false;
  partyTyped = false;
  const [work, plates] = await Promise.all([request(`/api/cases/${caseId}/work`), request(`/api/cases/${caseId}/plates`)]);
  render(work);
  renderPlates(plates.readings);
});

document.getElementById("run-checks").addEventListener("click", async () => {
  render(await send("POST", `/api/cases/${caseId}/checks`));
});

document.getElementById("facts-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  render(await send("PUT", `/api/cases/${caseId}/facts`, {
    injury: value("f-injury"),
    vehicles_movable: document.getElementById("f-movable").checked,
    suspected_impairment: document.getElementById("f-impairment").checked,
    hazardous_goods: document.getElementById("f-hazardous").checked,
    hit_and_run: document.getElementById("f-hit-and-run").checked,
    facts_disputed: document.getElementById("f-disputed").checked,
    owner_present: document.getElementById("f-owner-present").checked,
    place: value("f-place"), weather: value("f-weather"),
  }));
});

const marks = {};
for (const which of ["start", "end"]) {
  document.getElementById(`s-mark-${which}`).addEventListener("click", () => {
    marks[which] = new Date().toISOString();
    document.getElementById(`s-${which}`).value = beijingTime(marks[which]);
  });
}

document.getElementById("statement-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await send("POST", `/api/cases/${caseId}/statements`, {
    party_id: Number(value("s-party")), start: marks.start, end: marks.end, summary: value("s-summary"),
  });
  document.getElementById("statement-form").reset();
  delete marks.start;
  delete marks.end;
  render(await request(`/api/cases/${caseId}/work`));
});

document.getElementById("clear-road").addEventListener("click", async () => {
  render(await send("POST", `/api/cases/${caseId}/clear-road`));
});

document.getElementById("hand-over").addEventListener("click", async () => {
  render(await send("POST", `/api/cases/${caseId}/hand-over`));
});

// Escalation cannot be undone: the dispatcher picks or writes the reason, then confirms in a dialog
// that says what will happen.
const escalation = () => ({ reason_code: value("escalate-reason-code"), reason: value("escalate-reason") });
document.getElementById("escalate").addEventListener("click", () => {
  const { reason_code: code, reason } = escalation();
  if (!code && !reason) {
    showError("请选择或填写转现场处理的原因 (choose or write why the case goes to on-scene handling)");
    return;
  }
  const picked = document.getElementById("escalate-reason-code").selectedOptions[0];
  document.getElementById("escalate-confirm-reason").textContent = [code ? picked.textContent : "", reason || ""].filter(Boolean).join("：");
  document.getElementById("escalate-confirm").showModal();
});
document.getElementById("escalate-no").addEventListener("click", () => document.getElementById("escalate-confirm").close());
document.getElementById("escalate-yes").addEventListener("click", async () => {
  document.getElementById("escalate-confirm").close();
  render(await send("POST", `/api/cases/${caseId}/escalate`, escalation()));
});

// The reference lists load together, and the case's feed (which also carries the call the queue's
// "answer" opened this page for) starts at once: the call does not wait for the forms.
const ready = (async () => {
  const [, types, reasonList, who] = await Promise.all([
    lifecyclesLoaded, request("/api/vehicle-types"), request("/api/escalation-reasons"), request("/api/me"),
  ]);
  const select = document.getElementById("p-type");
  vehicleTypes = new Map(types.map((t) => [t.code, t.name]));
  for (const { code, name } of types) select.appendChild(el("option", { value: code }, `${code} ${name}`));
  const reasons = document.getElementById("escalate-reason-code");
  for (const { code, label } of reasonList) reasons.appendChild(el("option", { value: code }, label));
  me = who;
  document.getElementById("operator").textContent = `${me.display_name} · ${me.role}`;
  const determine = document.getElementById("determine-link");
  determine.href = `/determine?id=${caseId}`;
  determine.hidden = me.role !== "officer";
})();

// The reads sent after the report follow it by a second or two, and other consoles act on the
// case (the clearing watch, a second dispatcher, an officer): they arrive without a reload.
const refresh = (live) => inTurn(async () => {
  const [work, plates] = await Promise.all([request(`/api/cases/${caseId}/work`), request(`/api/cases/${caseId}/plates`), ready]);
  render(work, live);
  renderPlates(plates.readings);
});
watchCase(caseId, () => refresh(true).catch((error) => showError(String(error.message || error))));
refresh(false).catch((error) => showError(String(error.message || error)));
