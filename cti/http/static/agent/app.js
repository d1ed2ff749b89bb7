// The agent desktop (docs/API.md, "Agent desktop"): one WebSocket to the daemon, state pushed by it,
// commands answered by it. Plain script, no build step: the page must work without internet.
// The socket reconnects by itself (network blip, daemon restart); the token is kept in
// localStorage, and the server's hello frame restores everything on screen, a call included.
"use strict";

const TOKEN_KEY = "cti.agent.token";
const TAKEN_OVER = 4001, LOGGED_OUT = 4002;

const $ = (id) => document.getElementById(id);
// offers: the call ids of the offer frames received, in order (tests read it: never twice).
const view = { agent: null, state: null, call: null, wrapup: null, reasons: [], dispositions: [], offers: [] };
const pending = new Map();
let socket = null, commandId = 0, retries = 0, greeted = false;

// --- the link ---------------------------------------------------------------------------------

function connect() {
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) return showLogin();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/agent/ws?token=${encodeURIComponent(token)}`);
  greeted = false;
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = (event) => closed(event);
}

async function closed(event) {
  document.body.dataset.connection = "closed";
  for (const [, answer] of pending) answer({ ok: false, error: "connection lost" });
  pending.clear();
  if (event.code === TAKEN_OVER || event.code === LOGGED_OUT) return;  // told why by a frame first
  if (!greeted && !(await tokenStillValid())) {
    localStorage.removeItem(TOKEN_KEY);
    return showLogin("Your session has ended: log in again.");
  }
  const delay = Math.min(5000, 250 * 2 ** retries++) * (0.5 + Math.random() / 2);
  setTimeout(connect, delay);
}

// A refused handshake and a daemon that is down look alike to a WebSocket: ask over HTTP.
async function tokenStillValid() {
  try {
    const response = await fetch("/api/agent/dispositions", { headers: authorization() });
    return response.status !== 401;
  } catch {
    return true;  // unreachable: keep trying
  }
}

function send(type, fields = {}) {
  return new Promise((resolve) => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return resolve({ ok: false, error: "not connected" });
    const id = ++commandId;
    pending.set(id, resolve);
    socket.send(JSON.stringify({ v: 1, type, id, ...fields }));
  });
}

async function command(type, fields = {}) {
  const result = await send(type, fields);
  say(result.ok ? "" : `${type}: ${result.error}`, !result.ok);
  return result;
}

function receive(frame) {
  const handler = FRAMES[frame.type];
  if (handler) handler(frame);
}

const FRAMES = {
  hello(frame) {
    greeted = true;
    retries = 0;
    document.body.dataset.connection = "open";
    Object.assign(view, { agent: frame.agent, state: frame.state, call: frame.call, wrapup: frame.wrapup,
                          reasons: frame.reasons, dispositions: frame.dispositions });
    showDesk(frame.outbound);
    renderAll();
  },
  state(frame) {
    view.state = frame;
    renderState();
  },
  offer(frame) {
    view.offers.push(frame.call.call_id);
    view.call = frame.call;
    renderAll();
  },
  call(frame) {
    // A desk has one call at a time (a new one starts with an offer): its pop stays, even when a
    // callback's call_id turns into the customer's new call.
    const pop = view.call ? view.call.pop : null;
    view.call = frame.active ? { ...frame.call, pop } : null;
    say(eventText(frame));
    renderAll();
  },
  wrapup(frame) {
    view.wrapup = frame.wrapup;
    renderAll();
  },
  result(frame) {
    const answer = pending.get(frame.id);
    pending.delete(frame.id);
    if (answer) answer(frame);
  },
  error(frame) {
    say(frame.error, true);
  },
  taken_over(frame) {
    localStorage.removeItem(TOKEN_KEY);
    showLogin(frame.message);
  },
  logged_out() {
    localStorage.removeItem(TOKEN_KEY);
    showLogin("Logged out.");
  },
};

function eventText(frame) {
  const texts = { connected: "Connected.", held: "Customer on hold.", resumed: "Back with the customer.",
                  consult_ringing: "Ringing the other agent…", consult_connected: "Talking with the other agent.",
                  consult_ended: "The consultation ended.", transferred: "Call transferred.", ended: "Call ended.",
                  missed: "Call missed.", cancelled: "Transfer cancelled.", customer_left: "The customer hung up." };
  return texts[frame.event] || "";
}

// --- login, logout ----------------------------------------------------------------------------

function authorization() {
  return { Authorization: `Bearer ${localStorage.getItem(TOKEN_KEY)}` };
}

async function login(event) {
  event.preventDefault();
  const form = new FormData($("login"));
  const response = await fetch("/api/agent/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ agent_id: form.get("agent_id"), password: form.get("password") }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) return say(body.error || response.statusText, true);
  localStorage.setItem(TOKEN_KEY, body.token);
  $("login").reset();
  say(body.took_over ? "You were logged in elsewhere: that desktop is now logged out." : "");
  connect();
}

async function logout() {
  const response = await fetch("/api/agent/logout", { method: "POST", headers: authorization() });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) return say(body.error || response.statusText, true);
  localStorage.removeItem(TOKEN_KEY);
}

function showLogin(message = "") {
  $("login").hidden = false;
  $("desk").hidden = $("logout").hidden = true;
  Object.assign(view, { agent: null, state: null, call: null, wrapup: null });
  renderState();
  say(message, Boolean(message));
}

function showDesk(outbound) {
  $("login").hidden = true;
  $("desk").hidden = $("logout").hidden = false;
  $("dial-form").hidden = !outbound;
}

// --- rendering ----------------------------------------------------------------------------------

function say(text, isError = false) {
  if (text === "" && $("message").className === "error" && !isError) return;  // keep an error visible
  $("message").textContent = text;
  $("message").className = isError ? "error" : "";
}

function renderAll() {
  renderState();
  renderCall();
  renderWrapup();
  renderCustomer();
  tick();
}

function renderState() {
  const state = view.state || { state: "logged_out", reason: "" };
  $("agent-name").textContent = view.agent ? `${view.agent.name} (${view.agent.id})` : "";
  $("state").dataset.state = state.state;
  $("state").textContent = state.state.replace("_", " ") + (state.reason ? ` · ${state.reason}` : "");
  const select = $("reason");
  if (select.options.length !== view.reasons.length) {
    select.replaceChildren(...view.reasons.map((reason) => new Option(reason, reason)));
  }
}

function renderCall() {
  const call = view.call;
  $("call").hidden = !call;
  $("banner").hidden = !(call && call.state === "ringing");
  $("dial").disabled = Boolean(call);
  if (!call) {
    delete $("call").dataset.state; // no stale state for the next call to be mistaken by
    return;
  }
  $("call").dataset.state = call.state;
  $("call-id").textContent = call.call_id;
  $("call-state").textContent = call.state;
  $("call-consult").textContent = call.consult ? `consulting ${call.consult.agent}` : "";
  if (document.activeElement !== $("call-notes")) $("call-notes").value = call.notes || "";
  const talking = call.state === "connected", held = call.state === "held";
  const consulting = call.state === "consulting";
  $("hangup").disabled = !(talking || held || call.state === "ringing");
  $("hold").disabled = !talking;
  $("unhold").disabled = !held;
  $("transfer").disabled = $("consult").disabled = !(talking || held);
  $("complete").disabled = !(consulting && call.consult && call.consult.answered);
  $("cancel").disabled = !consulting;
  renderBanner(call.pop);
}

function renderBanner(pop) {
  if (!pop) return;
  const fill = (key, text) => { $("banner").querySelector(`[data-pop=${key}]`).textContent = text; };
  fill("kind", pop.kind === "inbound" ? "" : pop.kind);
  fill("caller", (pop.customer && pop.customer.name) || pop.caller_name || "unknown caller");
  fill("ani", pop.ani || "");
  fill("queue", pop.queue || "–");
  fill("wait", pop.wait_seconds == null ? "–" : `${Math.round(pop.wait_seconds)} s`);
}

function renderWrapup() {
  const wrapup = view.wrapup;
  $("wrapup").hidden = !wrapup;
  if (!wrapup) return;
  const select = $("disposition");
  const codes = ["", ...view.dispositions.map((item) => item.code)];
  if ([...select.options].map((option) => option.value).join() !== codes.join()) {
    select.replaceChildren(new Option("– choose –", ""),
                           ...view.dispositions.map((item) => new Option(item.label, item.code)));
  }
  if (document.activeElement !== select) select.value = wrapup.disposition || "";
  if (document.activeElement !== $("wrapup-notes")) $("wrapup-notes").value = wrapup.notes || "";
}

function renderCustomer() {
  const pop = (view.call && view.call.pop) || (view.wrapup && view.wrapup.pop);
  $("customer").hidden = !pop;
  if (!pop) return;
  const customer = pop.customer;
  $("customer-name").textContent = customer ? customer.name : pop.caller_name || pop.ani || "Unknown caller";
  const flags = customer ? [`<span class="tier">${escape(customer.tier)} · value ${customer.value_score}</span>`] : [];
  $("customer-flags").innerHTML = flags.concat(pop.flags.map((flag) => `<span>${escape(flag)}</span>`)).join("");
  const transfer = pop.transfer;
  $("transfer-note").hidden = !transfer;
  if (transfer) {
    $("transfer-note").textContent = `From ${transfer.from_name} (${transfer.from_agent})` +
      (transfer.note ? `: ${transfer.note}` : "");
  }
  const rows = [["Number", pop.ani], ["Caller name", pop.caller_name], ["Account", pop.account],
                ["Dialled", pop.dnis && `${pop.dnis}${pop.dnis_label ? ` (${pop.dnis_label})` : ""}`],
                ["Queue", pop.queue], ["Waited", pop.wait_seconds == null ? "" : `${Math.round(pop.wait_seconds)} s`],
                ["IVR path", pop.ivr.path.join(" › ")],
                ...Object.entries(pop.ivr.data).map(([key, value]) => [`IVR ${key}`, value]),
                ["Customer phones", customer && customer.phones.join(", ")],
                ["Accounts", customer && customer.account_numbers.join(", ")],
                ["Customer notes", customer && customer.notes],
                ...Object.entries(pop.external || {}).map(([key, value]) => [`CRM ${key}`, String(value)])];
  $("call-data").replaceChildren(...rows.filter(([, value]) => value).flatMap(([key, value]) => {
    const term = document.createElement("dt"), detail = document.createElement("dd");
    term.textContent = key;
    detail.textContent = value;
    detail.dataset.key = key;
    return [term, detail];
  }));
  $("history").tBodies[0].replaceChildren(...pop.history.map(historyRow));
}

function historyRow(item) {
  const row = document.createElement("tr");
  const cells = [new Date(item.started_at).toLocaleString(), item.queue || "", item.outcome || "",
                 item.disposition_code || "", item.disposition_notes || "", (item.agents || []).join(", ")];
  for (const text of cells) row.insertCell().textContent = text;
  return row;
}

function escape(text) {
  const span = document.createElement("span");
  span.textContent = text == null ? "" : String(text);
  return span.innerHTML;
}

function tick() {
  const state = view.state;
  $("state-since").textContent = state && state.since ? clock(Date.now() / 1000 - state.since) : "";
  const wrapup = view.wrapup;
  if (wrapup) {
    const left = wrapup.ends_at == null ? null : wrapup.ends_at - Date.now() / 1000;
    $("wrapup-timer").textContent = left == null ? "" : left > 0 ? `${clock(left)} left` : "time is up";
  }
}

function clock(seconds) {
  const whole = Math.max(0, Math.floor(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

// --- controls -------------------------------------------------------------------------------------

function onCall(type, fields = {}) {
  return () => view.call && command(type, { call_id: view.call.call_id, ...fields });
}

function transferTarget() {
  return { [$("transfer-kind").value]: $("transfer-target").value.trim() };
}

function wire() {
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("ready").addEventListener("click", () => command("ready"));
  $("not-ready").addEventListener("click", () => command("not_ready", { reason: $("reason").value }));
  $("dial-form").addEventListener("submit", (event) => {
    event.preventDefault();
    command("dial", { number: $("dial-number").value.trim() });
  });
  $("hangup").addEventListener("click", onCall("hangup"));
  $("hold").addEventListener("click", onCall("hold"));
  $("unhold").addEventListener("click", onCall("unhold"));
  $("transfer").addEventListener("click", () => view.call &&
    command("transfer", { call_id: view.call.call_id, note: $("call-notes").value, ...transferTarget() }));
  $("consult").addEventListener("click", () => view.call &&
    command("consult", { call_id: view.call.call_id, agent: $("transfer-target").value.trim(),
                         note: $("call-notes").value }));
  $("complete").addEventListener("click", onCall("complete_transfer"));
  $("cancel").addEventListener("click", onCall("cancel_transfer"));
  $("call-notes").addEventListener("change", () => view.call &&
    command("disposition", { call_id: view.call.call_id, notes: $("call-notes").value }));
  $("save-wrapup").addEventListener("click", saveWrapup);
  $("end-wrapup").addEventListener("click", async () => {
    if ((await saveWrapup()).ok) await command("end_wrapup", { call_id: view.wrapup.call_id });
  });
  setInterval(tick, 1000);
}

function saveWrapup() {
  return command("disposition", { call_id: view.wrapup.call_id, code: $("disposition").value,
                                  notes: $("wrapup-notes").value });
}

// For tests and power users: the raw protocol.
window.desk = { send, view };

wire();
connect();
