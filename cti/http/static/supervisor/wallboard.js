// The live wallboard: a snapshot then throttled updates over /api/supervisor/ws, actions over REST.
// Waits and times in state grow here, every second, from the frames' `since` stamps (epoch
// seconds on the server's clock; `server_time` in each frame gives the offset to ours).
"use strict";

const RECONNECT_MAX_SECONDS = 10;
const STATES = [["available", "avail"], ["reserved", "ringing"], ["on_call", "on call"], ["wrap_up", "wrap-up"],
                ["not_ready", "not ready"]];

const board = {
  queues: new Map(),  // name -> the queue as the server last sent it
  agents: new Map(),  // agent_id -> the agent as the server last sent it
  offset: 0,  // server clock - ours, seconds
  socket: null,
  retries: 0,
  retryTimer: null,
  drafts: new Map(),  // call_id -> {queue, priority} typed in the waiting-calls table, kept across frames
};

const $ = (selector) => document.querySelector(selector);

// --- formatting ------------------------------------------------------------------------------

function serverNow() {
  return Date.now() / 1000 + board.offset;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600), m = Math.floor(total / 60) % 60, s = total % 60;
  const mmss = `${String(m).padStart(2, "0")}:${String(s).padStart(2, "0")}`;
  return h ? `${h}:${mmss}` : mmss;
}

function percent(ratio) {
  return ratio === null || ratio === undefined ? "–" : `${(ratio * 100).toFixed(1)} %`;
}

function seconds(value) {
  return value === null || value === undefined ? "–" : `${value.toFixed(1)} s`;
}

function target() {
  return Number($("#target").value) / 100;
}

function cell(row, key, text, className = "") {
  const td = row.insertCell();
  td.dataset.key = key;
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// A cell whose duration grows every second; `threshold` (seconds) marks it over when exceeded.
function sinceCell(row, key, since, threshold = null) {
  const td = cell(row, key, "");
  if (since !== null && since !== undefined) {
    td.dataset.since = since;
    if (threshold !== null) td.dataset.threshold = threshold;
  }
  return td;
}

function badge(kind, title) {
  const element = document.createElement("span");
  element.className = `badge ${kind}`;
  element.textContent = kind;
  element.title = title;
  return element;
}

function button(label, action, data = {}) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.dataset.action = action;
  Object.assign(element.dataset, data);
  return element;
}

function tick() {
  const now = serverNow();
  for (const td of document.querySelectorAll("[data-since]")) {
    const elapsed = now - Number(td.dataset.since);
    td.textContent = duration(elapsed);
    if (td.dataset.threshold !== undefined) td.classList.toggle("over", elapsed > Number(td.dataset.threshold));
  }
}

// --- rendering -------------------------------------------------------------------------------

function renderQueues() {
  const body = $("#queues tbody");
  body.replaceChildren();
  const goal = target();
  const belowTarget = (ratio) => (ratio !== null && ratio < goal ? "bad" : "");
  for (const queue of board.queues.values()) {
    const row = body.insertRow();
    row.dataset.queue = queue.queue;
    const { recent, today } = queue;
    const name = cell(row, "queue", queue.queue, "text");
    if (!queue.open) name.append(badge("closed", "closed: outside its opening hours, it takes no new calls"));
    cell(row, "waiting", String(queue.waiting));
    const longest = sinceCell(row, "longest_wait", queue.longest_wait_since, queue.service_level_seconds);
    if (queue.longest_wait_since === null) longest.textContent = "–";
    cell(row, "sl_recent", percent(recent.sl_answered), belowTarget(recent.sl_answered));
    cell(row, "sl_offered_recent", percent(recent.sl_offered), belowTarget(recent.sl_offered));
    cell(row, "sl_today", percent(today.sl_answered), belowTarget(today.sl_answered));
    cell(row, "sl_offered_today", percent(today.sl_offered), belowTarget(today.sl_offered));
    cell(row, "asa", seconds(recent.asa));
    cell(row, "abandon_rate", percent(recent.abandon_rate));
    cell(row, "offered_recent", String(recent.offered));
    cell(row, "offered_today", String(today.offered));
    cell(row, "answered_recent", String(recent.answered));
    cell(row, "answered_today", String(today.answered));
    const agents = cell(row, "agents", "", "text");
    for (const [state, label] of STATES) {
      const pill = document.createElement("span");
      const count = queue.agents_by_state[state] || 0;
      pill.className = count ? `pill state-${state}` : "pill zero";
      pill.dataset.state = state;
      pill.textContent = `${count} ${label}`;
      agents.append(pill);
    }
  }
}

function renderCalls() {
  const body = $("#calls tbody");
  body.replaceChildren();
  const names = [...board.queues.keys()];
  const shown = new Set();
  for (const queue of board.queues.values()) {
    for (const call of queue.calls) {
      shown.add(call.call_id);
      const draft = board.drafts.get(call.call_id) || {};
      const row = body.insertRow();
      row.dataset.call = call.call_id;
      cell(row, "queue", queue.queue, "text");
      cell(row, "call", call.call_id + (call.callback ? " (callback)" : ""), "text");
      cell(row, "position", String(call.position));
      cell(row, "priority", String(call.priority));
      sinceCell(row, "wait", call.since, queue.service_level_seconds);
      cell(row, "state", call.state, "text");
      const move = cell(row, "move", "", "text");
      const select = document.createElement("select");
      select.dataset.draft = "queue";
      for (const name of names.filter((name) => name !== queue.queue)) select.add(new Option(name, name));
      if (draft.queue) select.value = draft.queue;
      move.append(select, button("Move", "move", { call: call.call_id }));
      const priority = cell(row, "set_priority", "", "text");
      const input = document.createElement("input");
      input.type = "number";
      input.dataset.draft = "priority";
      input.value = draft.priority ?? call.priority + 1;
      priority.append(input, button("Set", "priority", { call: call.call_id }));
    }
  }
  for (const callId of board.drafts.keys()) {
    if (!shown.has(callId)) board.drafts.delete(callId);  // answered or gone: nothing to keep
  }
  $("#no-calls").hidden = shown.size > 0;
}

function renderAgent(agent) {
  const body = $("#agents tbody");
  let row = body.querySelector(`tr[data-agent="${CSS.escape(agent.agent_id)}"]`);
  if (!row) {
    row = body.insertRow();
    row.dataset.agent = agent.agent_id;
  }
  row.replaceChildren();
  cell(row, "agent", agent.agent_id, "text");
  cell(row, "name", agent.name, "text");
  cell(row, "state", agent.state, `text state-${agent.state}`);
  cell(row, "reason", agent.reason, "text");
  if (agent.state === "logged_out") cell(row, "in_state", "–");
  else sinceCell(row, "in_state", agent.since);
  cell(row, "call", agent.call || "", "text");
  cell(row, "handled", String(agent.today.handled));
  cell(row, "aht", seconds(agent.today.aht));
  cell(row, "occupancy", percent(agent.today.occupancy));
  cell(row, "skills", Object.entries(agent.skills).map(([skill, level]) => `${skill}=${level}`).join(", "), "text");
  const actions = cell(row, "actions", "", "text");
  const data = { agent: agent.agent_id };
  actions.append(button("Not ready", "not-ready", data), button("Log out", "logout", data),
                 button("Skills…", "skills", data), button("Listen", "monitor", { ...data, mode: "listen" }),
                 button("Whisper", "monitor", { ...data, mode: "whisper" }),
                 button("Barge", "monitor", { ...data, mode: "barge" }));
}

function receive(frame) {
  board.offset = frame.server_time - Date.now() / 1000;
  if (frame.type === "snapshot") {
    board.queues.clear();
    board.agents.clear();
    $("#agents tbody").replaceChildren();
    if (!localStorage.getItem("cti.sl_target")) $("#target").value = Math.round(frame.service_level_target * 100);
  } else if (frame.type !== "update") {
    if (frame.type === "result" && !frame.ok) setStatus(frame.error, true);
    return;
  }
  for (const queue of frame.queues) board.queues.set(queue.queue, queue);
  for (const agent of frame.agents) {
    board.agents.set(agent.agent_id, agent);
    renderAgent(agent);
  }
  if (frame.queues.length) {
    renderQueues();
    renderCalls();
  }
  tick();
}

// --- the connection --------------------------------------------------------------------------

function setConnection(state) {
  const badge = $("#connection");
  badge.className = state;
  badge.textContent = state;
}

function setStatus(text, isError = false) {
  const status = $("#status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function token() {
  return $("#token").value.trim();
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${token()}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const why = answer.errors ? Object.entries(answer.errors).map(([k, v]) => `${k}: ${v}`).join("; ")
      : answer.error || response.statusText;
    throw new Error(`${response.status}: ${why}`);
  }
  return answer;
}

// The token is checked over REST first: a browser's WebSocket cannot tell a refused token from a
// network failure, and a refused token must not be retried forever.
async function connect() {
  clearTimeout(board.retryTimer);
  localStorage.setItem("cti.token", token());
  try {
    await api("GET", "/api/acd/queues");
  } catch (error) {
    if (error instanceof TypeError) return reconnectLater();  // the server is unreachable
    closeSocket();
    setConnection("offline");
    setStatus(error.message, true);
    return;
  }
  openSocket();
}

function openSocket() {
  closeSocket();
  const url = new URL("/api/supervisor/ws", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", token());
  const socket = new WebSocket(url);
  board.socket = socket;
  socket.onopen = () => {
    board.retries = 0;
    setConnection("live");
    setStatus("");
  };
  socket.onmessage = (message) => receive(JSON.parse(message.data));
  socket.onclose = () => {
    if (board.socket === socket) reconnectLater();
  };
}

function closeSocket() {
  const socket = board.socket;
  board.socket = null;
  if (socket) socket.close();
}

function reconnectLater() {
  board.socket = null;
  const delay = Math.min(RECONNECT_MAX_SECONDS, 2 ** board.retries);
  board.retries += 1;
  setConnection("reconnecting");
  board.retryTimer = setTimeout(connect, delay * 1000);
}

// --- actions ---------------------------------------------------------------------------------

async function act(description, method, path, body) {
  try {
    const answer = await api(method, path, body);
    setStatus(`${description}: done${answer.applies ? ` (${answer.applies})` : ""}`);
  } catch (error) {
    setStatus(`${description}: ${error.message}`, true);
  }
}

const agentPath = (agentId) => `/api/acd/agents/${encodeURIComponent(agentId)}`;
const callPath = (callId) => `/api/acd/calls/${encodeURIComponent(callId)}`;

function parseSkills(text) {
  const skills = {};
  for (const part of text.split(/[,\s]+/).filter(Boolean)) {
    const [skill, level] = part.split("=");
    if (!skill || !/^\d+$/.test(level || "")) throw new Error(`"${part}" is not skill=proficiency`);
    skills[skill] = Number(level);
  }
  return skills;
}

function editSkills(agentId) {
  const agent = board.agents.get(agentId);
  $("#skills-agent").textContent = agentId;
  $("#skills-input").value = Object.entries(agent.skills).map(([skill, level]) => `${skill}=${level}`).join(", ");
  $("#skills-dialog").dataset.agent = agentId;
  $("#skills-dialog").showModal();
}

async function saveSkills() {
  const agentId = $("#skills-dialog").dataset.agent;
  let skills;
  try {
    skills = parseSkills($("#skills-input").value);
  } catch (error) {
    setStatus(`skills of ${agentId}: ${error.message}`, true);
    return;
  }
  await act(`skills of ${agentId}`, "PUT", `${agentPath(agentId)}/skills`, { skills });
}

function onAgentAction(target) {
  const agentId = target.dataset.agent;
  switch (target.dataset.action) {
    case "not-ready":
      return act(`not ready ${agentId}`, "POST", `${agentPath(agentId)}/not-ready`,
                 { reason: $("#reason").value.trim() || "supervisor" });
    case "logout":
      return act(`log out ${agentId}`, "POST", `${agentPath(agentId)}/logout`);
    case "skills":
      return editSkills(agentId);
    case "monitor": {
      const phone = $("#phone").value.trim();
      if (!phone) return setStatus("Fill in your phone (e.g. PJSIP/2001) to listen, whisper or barge", true);
      localStorage.setItem("cti.supervisor_interface", phone);
      return act(`${target.dataset.mode} ${agentId}`, "POST", `${agentPath(agentId)}/monitor`,
                 { mode: target.dataset.mode, supervisor_interface: phone });
    }
  }
}

function onCallAction(target) {
  const callId = target.dataset.call;
  const row = target.closest("tr");
  if (target.dataset.action === "move") {
    const queue = row.querySelector("select").value;
    board.drafts.delete(callId);
    return act(`move ${callId} to ${queue}`, "POST", `${callPath(callId)}/move`, { queue });
  }
  const priority = Number(row.querySelector("input").value);
  board.drafts.delete(callId);
  return act(`priority of ${callId}`, "POST", `${callPath(callId)}/priority`, { priority });
}

function keepDraft(event) {
  const field = event.target.dataset.draft;
  if (!field) return;
  const callId = event.target.closest("tr").dataset.call;
  board.drafts.set(callId, { ...board.drafts.get(callId), [field]: event.target.value });
}

// --- start -----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#token").value = localStorage.getItem("cti.token") || "";
  $("#phone").value = localStorage.getItem("cti.supervisor_interface") || "";
  $("#target").value = Math.round(Number(localStorage.getItem("cti.sl_target") || 0.8) * 100);
  $("#login").addEventListener("submit", (event) => {
    event.preventDefault();
    connect();
  });
  $("#target").addEventListener("change", () => {
    localStorage.setItem("cti.sl_target", String(target()));
    renderQueues();
  });
  $("#agents").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-action]");
    if (target) onAgentAction(target);
  });
  $("#calls").addEventListener("click", (event) => {
    const target = event.target.closest("button[data-action]");
    if (target) onCallAction(target);
  });
  $("#calls").addEventListener("input", keepDraft);
  $("#skills-form").addEventListener("submit", (event) => {
    if (event.submitter && event.submitter.value === "save") saveSkills();
  });
  setInterval(tick, 1000);
  if (token()) connect();
});
