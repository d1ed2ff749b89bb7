// The supervisor's historical reports (docs/KPIS.md): a chart per queue or agent, a table, a CSV
// download. Plain script, no build step: the page must work on a machine without internet.
"use strict";

const TOKEN_KEY = "cti.token";
const SVG = "http://www.w3.org/2000/svg";
const BUCKET_MS = { "15m": 9e5, "30m": 18e5, "60m": 36e5, day: 864e5 };
const TICK_HOURS = [1, 2, 3, 6, 12, 24, 48, 168, 336, 720];

const seconds = (value) => (value == null ? "–" : value.toFixed(1));
const percent = (value) => (value == null ? "–" : (value * 100).toFixed(1) + " %");
const score = (value) => (value == null ? "–" : value.toFixed(2));

// What each report shows: the column that names a chart, bars (counts) and lines on the right axis.
const REPORTS = {
  queues: {
    group: "queue",
    bars: [["offered", "Offered"], ["answered", "Answered"]],
    lines: [["service_level_with_abandons", "Service level (answered + abandoned)"],
            ["service_level_answered", "Service level (answered)"]],
    lineFormat: percent,
    columns: [["queue", "Queue", String], ["offered", "Offered", String], ["answered", "Answered", String],
              ["abandoned", "Abandoned", String], ["short_abandoned", "Short abandons", String],
              ["answered_within_threshold", "Answered ≤ T", String],
              ["service_level_answered", "SL (answered)", percent],
              ["service_level_with_abandons", "SL (answered + abandoned)", percent],
              ["asa_seconds", "ASA (s)", seconds], ["aht_seconds", "AHT (s)", seconds],
              ["max_wait_seconds", "Max wait (s)", seconds], ["transfers", "Transfers", String],
              ["callbacks", "Callbacks", String], ["survey_average", "Survey", score],
              ["survey_count", "Surveys", String]],
  },
  agents: {
    group: "agent",
    bars: [["answered", "Answered"], ["received_by_transfer", "Received by transfer"]],
    lines: [["aht_seconds", "AHT (s)"]],
    lineFormat: seconds,
    columns: [["agent", "Agent", String], ["answered", "Answered", String], ["aht_seconds", "AHT (s)", seconds],
              ["transferred", "Transferred", String], ["received_by_transfer", "Received by transfer", String],
              ["survey_average", "Survey", score], ["survey_count", "Surveys", String]],
  },
};

const $ = (id) => document.getElementById(id);

function element(name, attributes = {}, parent = null, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text != null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

// The bucket's local wall-clock start, read from its ISO text (it carries the report's offset).
function bucketLabel(bucket, interval) {
  return interval === "day" ? bucket.slice(0, 10) : bucket.slice(0, 16).replace("T", " ");
}

function parameters(report) {
  const params = new URLSearchParams();
  for (const input of $("query").querySelectorAll("[name]")) {
    const only = input.closest("label").dataset.for;
    if (input.value.trim() && (!only || only === report)) params.set(input.name, input.value.trim());
  }
  return params;
}

async function fetchReport(path, token) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (response.ok) return response;
  const body = await response.json().catch(() => ({}));
  const detail = body.errors
    ? Object.entries(body.errors).map(([field, message]) => `${field}: ${message}`).join("; ")
    : body.error || response.statusText;
  throw new Error(`${response.status}: ${detail}`);
}

async function show(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  localStorage.setItem(TOKEN_KEY, token);
  const report = $("report").value;
  const query = parameters(report).toString();
  setStatus("Loading…");
  clear();  // an error must not leave the previous report on screen as if it were this one
  try {
    const answer = await (await fetchReport(`/api/reports/${report}?${query}`, token)).json();
    render(REPORTS[report], answer);
    offerCsv(`/api/reports/${report}.csv?${query}`);
    setStatus(answer.rows.length ? "" : "No calls in this window.");
  } catch (error) {
    setStatus(error.message, true);
  }
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function clear() {
  $("charts").replaceChildren();
  $("table").replaceChildren();
  const link = $("csv");
  link.hidden = true;
  if (link.href) URL.revokeObjectURL(link.href);
  link.removeAttribute("href");
}

// The CSV runs the report's query again: only when asked for.
function offerCsv(path) {
  const link = $("csv");
  link.dataset.path = path;
  link.hidden = false;
}

// A plain link could not send the token: the first click fetches the CSV as a blob, then saves it.
async function saveCsv(event) {
  const link = event.currentTarget;
  if (link.getAttribute("href")) return;  // fetched: the browser saves it
  event.preventDefault();
  try {
    const response = await fetchReport(link.dataset.path, $("token").value.trim());
    link.download = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition"))[1];
    link.href = URL.createObjectURL(await response.blob());
    link.click();
  } catch (error) {
    setStatus(error.message, true);
  }
}

function render(spec, answer) {
  const groups = new Map();
  for (const row of answer.rows) {
    const key = row[spec.group];
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(row);
  }
  for (const key of [...groups.keys()].sort()) $("charts").appendChild(chart(spec, key, groups.get(key), answer.query));
  renderTable(spec, answer);
}

function legend(spec) {
  const items = [...spec.bars.map(([, label], n) => [`series-${n}`, label]),
                 ...spec.lines.map(([, label], n) => [`line-${n}`, label])];
  return items.map(([cls, label]) => `<span><i class="${cls}"></i>${label}</span>`).join("");
}

// Time runs left to right across the window, so an hour without calls shows as a gap.
function chart(spec, name, rows, query) {
  const width = 760, height = 260, left = 44, right = 64, top = 12, bottom = 30;
  const start = Date.parse(query.window_start), span = Date.parse(query.window_end) - start;
  const slot = (BUCKET_MS[query.interval] / span) * (width - left - right);
  const x = (ms) => left + ((ms - start) / span) * (width - left - right);
  // Even, so the middle grid line is a whole count.
  const barMax = 2 * Math.ceil(Math.max(1, ...rows.flatMap((row) => spec.bars.map(([key]) => row[key]))) / 2);
  const lineValues = rows.flatMap((row) => spec.lines.map(([key]) => row[key])).filter((v) => v != null);
  const lineMax = spec.lineFormat === percent ? 1 : Math.max(1, ...lineValues);
  const yBar = (value) => top + (1 - value / barMax) * (height - top - bottom);
  const yLine = (value) => top + (1 - value / lineMax) * (height - top - bottom);

  const figure = document.createElement("figure");
  figure.dataset.group = name;
  const caption = figure.appendChild(document.createElement("figcaption"));
  caption.textContent = `${spec.group} ${name} `;  // names come from the database: text, never HTML
  caption.insertAdjacentHTML("beforeend", `<span class="legend">${legend(spec)}</span>`);
  const svg = element("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" }, figure);
  axes(svg, { width, height, left, right, top, bottom }, barMax, lineMax, spec.lineFormat);

  const barWidth = Math.max(1, (slot * 0.8) / spec.bars.length);
  for (const row of rows) {
    const group = element("g", { class: "bucket", "data-bucket": row.bucket }, svg);
    element("title", {}, group, `${bucketLabel(row.bucket, query.interval)}: ` +
      spec.bars.map(([key, label]) => `${label} ${row[key]}`).join(", "));
    spec.bars.forEach(([key], s) => {
      const y = yBar(row[key]);
      const barX = x(Date.parse(row.bucket)) + slot * 0.1 + s * barWidth;
      element("rect", { class: `series-${s}`, x: barX, y, width: barWidth, height: height - bottom - y }, group);
    });
  }
  timeTicks(svg, query, x, height - bottom + 14);
  const center = (row) => x(Date.parse(row.bucket)) + slot / 2;
  spec.lines.forEach(([key], s) => line(svg, rows, key, `line-${s}`, center, yLine, BUCKET_MS[query.interval]));
  return figure;
}

function axes(svg, box, barMax, lineMax, lineFormat) {
  const { width, height, left, right, top, bottom } = box;
  for (const fraction of [0, 0.5, 1]) {
    const y = top + (1 - fraction) * (height - top - bottom);
    element("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }, svg);
    element("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, svg, String(barMax * fraction));
    element("text", { x: width - right + 6, y: y + 4 }, svg, lineFormat(lineMax * fraction));
  }
  element("line", { class: "axis", x1: left, x2: width - right, y1: height - bottom, y2: height - bottom }, svg);
}

// At most eight labels, at round steps from local midnight, in the report's time zone.
function timeTicks(svg, query, x, y) {
  const start = Date.parse(query.window_start), end = Date.parse(query.window_end);
  const step = TICK_HOURS.map((hours) => hours * 36e5).find((ms) => (end - start) / ms <= 8) ?? end - start;
  const days = { month: "2-digit", day: "2-digit" }, hours = { hour: "2-digit", minute: "2-digit" };
  // One local day is 23 to 25 hours long.
  const options = step >= 864e5 ? days : end - start > 25 * 36e5 ? { ...days, ...hours } : hours;
  const format = new Intl.DateTimeFormat("en-GB", { timeZone: query.tz, ...options });
  for (let ms = start; ms < end; ms += step) {
    element("text", { x: x(ms), y, "text-anchor": "middle" }, svg, format.format(ms));
  }
}

// One path per series, with a point per bucket that has a value. A bucket whose value is null
// (nothing to divide) or a gap of buckets without calls breaks the line.
function line(svg, rows, key, cls, x, y, bucketMs) {
  const points = rows.map((row) => (row[key] == null ? null : { x: x(row), y: y(row[key]), value: row[key] }));
  const follows = (n) => points[n - 1] && Date.parse(rows[n].bucket) - Date.parse(rows[n - 1].bucket) < 1.5 * bucketMs;
  const path = points.map((p, n) => p && `${follows(n) ? "L" : "M"}${p.x.toFixed(1)},${p.y.toFixed(1)}`);
  if (points.some(Boolean)) element("path", { class: cls, d: path.filter(Boolean).join(" ") }, svg);
  for (const p of points.filter(Boolean)) {
    const attributes = { class: `point ${cls}`, cx: p.x, cy: p.y, r: 3, "data-series": key, "data-value": p.value };
    element("circle", attributes, svg);
  }
}

function renderTable(spec, answer) {
  const table = $("table");
  const head = ["<tr><th>Bucket</th>", ...spec.columns.map(([, label]) => `<th>${label}</th>`), "</tr>"];
  table.innerHTML = `<thead>${head.join("")}</thead><tbody></tbody>`;
  const body = table.tBodies[0];
  for (const row of answer.rows) {
    const tr = body.insertRow();
    tr.insertCell().textContent = bucketLabel(row.bucket, answer.query.interval);
    for (const [key, , format] of spec.columns) {
      const cell = tr.insertCell();
      cell.textContent = format(row[key]);
      cell.dataset.key = key;
    }
  }
}

function syncFields() {
  const report = $("report").value;
  for (const label of $("query").querySelectorAll("label[data-for]")) label.hidden = label.dataset.for !== report;
}

document.addEventListener("DOMContentLoaded", () => {
  const form = $("query");
  $("token").value = localStorage.getItem(TOKEN_KEY) || "";
  form.elements.from.value ||= new Date().toLocaleDateString("sv");  // "sv" writes YYYY-MM-DD
  form.elements.tz.value ||= Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  $("report").addEventListener("change", syncFields);
  syncFields();
  form.addEventListener("submit", show);
  $("csv").addEventListener("click", saveCsv);
});
