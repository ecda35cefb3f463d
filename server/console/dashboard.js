"use strict";
// Per district and day: cases (eligible / escalated / other, stacked bars) and handling time
// (median and P90, report to the clear-the-road command), drawn as plain SVG from /api/dashboard.

const SVG = "http://www.w3.org/2000/svg";
const PILOT_MIN = 5;

function svg(tag, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text) node.textContent = text;
  return node;
}

function bars(chart, rows, series, maxValue, reference) {
  chart.replaceChildren();
  const width = 640, height = 180, left = 36, bottom = 24, top = 8;
  const slot = (width - left) / Math.max(rows.length, 1);
  const scale = (v) => ((height - bottom - top) * v) / Math.max(maxValue, 1);
  chart.appendChild(svg("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }));
  chart.appendChild(svg("text", { x: 2, y: top + 10, class: "tick" }, String(maxValue)));
  if (reference !== undefined) {
    const y = height - bottom - scale(reference);
    chart.appendChild(svg("line", { x1: left, y1: y, x2: width, y2: y, class: "reference" }));
  }
  rows.forEach((row, i) => {
    const x = left + i * slot + slot * 0.15;
    const w = (slot * 0.7) / (series.stacked ? 1 : series.keys.length);
    let base = height - bottom;
    series.keys.forEach((key, k) => {
      const value = row[key] ?? 0;
      const h = scale(value);
      const bx = series.stacked ? x : x + k * w;
      const y = series.stacked ? base - h : height - bottom - h;
      chart.appendChild(svg("rect", { x: bx, y, width: w, height: h, class: `bar ${key}`, "data-day": row.day, "data-value": value }));
      if (series.stacked) base -= h;
    });
    chart.appendChild(svg("text", { x, y: height - 6, class: "tick" }, row.day.slice(5)));
  });
}

async function load() {
  const days = document.getElementById("days").value;
  const rows = await request(`/api/dashboard?days=${days}`);
  const main = document.getElementById("units");
  main.replaceChildren();
  const byUnit = new Map();
  for (const row of rows) {
    if (!byUnit.has(row.unit.adcode)) byUnit.set(row.unit.adcode, []);
    byUnit.get(row.unit.adcode).push({ ...row, other: row.cases - row.eligible - row.escalated });
  }
  for (const [adcode, unitRows] of byUnit) {
    const section = document.getElementById("unit-template").content.cloneNode(true).querySelector("section");
    section.dataset.unit = adcode;
    section.querySelector(".unit-name").textContent = `${unitRows[0].unit.name} (${adcode})`;
    const most = Math.max(...unitRows.map((r) => r.cases));
    bars(section.querySelector(".cases-chart"), unitRows, { keys: ["eligible", "escalated", "other"], stacked: true }, most);
    const slowest = Math.max(PILOT_MIN, ...unitRows.map((r) => r.handling_p90_min ?? 0));
    bars(section.querySelector(".time-chart"), unitRows, { keys: ["handling_median_min", "handling_p90_min"], stacked: false }, Math.ceil(slowest), PILOT_MIN);
    const body = section.querySelector("tbody");
    for (const r of unitRows) {
      const tr = el("tr", { "data-day": r.day });
      for (const v of [r.day, r.cases, r.eligible, r.escalated, r.handling_median_min ?? "—", r.handling_p90_min ?? "—"]) tr.appendChild(el("td", {}, String(v)));
      body.appendChild(tr);
    }
    main.appendChild(section);
  }
  if (!rows.length) main.appendChild(el("p", { class: "empty" }, "暂无案件 No cases in this period"));
}

document.getElementById("days").addEventListener("change", load);
request("/api/me").then(async (me) => {
  document.getElementById("operator").textContent = `${me.display_name} · ${me.role}`;
  await load();
});
