// Troupe dashboard: one page, no framework, no build step. It uses only the broker's
// public APIs — REST v3/v2, /metrics and the WebSocket at /ws — so everything it
// shows can be had from a script too. Every value from the broker is put in the page
// as text (never as HTML).
"use strict";

const $main = document.getElementById("main");
const $error = document.getElementById("error");
const $conn = document.getElementById("conn");
let cluster = null;
// Timers and sockets of the page on screen, stopped when another page opens.
let cleanups = [];
// Bumped when another page opens: answers that arrive for an earlier page are dropped.
let pageSerial = 0;
// Lag samples per group, kept across page changes for the lag-over-time chart.
const lagHistory = new Map();

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fmtBytes(n) {
  if (n === null || n === undefined || isNaN(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}
function fmtNum(n) { return (n === null || n === undefined || isNaN(n)) ? "–" : Math.round(n).toLocaleString("en"); }
function fmtRate(n) { return n >= 100 ? fmtNum(n) : n.toFixed(1); }
function fmtDuration(ms) {
  const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), hh = Math.floor(s % 86400 / 3600);
  const mm = Math.floor(s % 3600 / 60), ss = s % 60;
  return d ? `${d}d ${hh}h ${mm}m` : hh ? `${hh}h ${mm}m ${ss}s` : mm ? `${mm}m ${ss}s` : `${ss}s`;
}
// A time typed by the user, read as UTC unless it names a zone; null if unreadable.
function parseTime(text) {
  const s = String(text || "").trim();
  if (!s) return null;
  const t = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : s + "Z").getTime();
  return isNaN(t) ? null : t;
}
function fmtTime(ms) { return ms === null || ms === undefined ? "–" : new Date(ms).toISOString().replace("T", " ").replace("Z", ""); }

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// Live regions are written only when their text changes, so screen readers announce
// a change once, not every poll.
function setConn(up) {
  const text = up ? "connected" : "broker unreachable — retrying";
  if ($conn.textContent === text) return;
  $conn.className = "conn " + (up ? "up" : "down");
  $conn.textContent = text;
}
// `origin` is "action" (the user did something: the error stays until the next
// action) or "poll" (a refresh failed: the next good refresh clears it).
function showError(e, origin = "action") {
  const text = e instanceof ApiError && e.code ? `Error ${e.code}: ${e.message}` : String(e.message || e);
  $error.dataset.origin = origin;
  if (!$error.hidden && $error.textContent === text) return;
  $error.hidden = false;
  $error.textContent = text;
}
function clearError(origin = "action") {
  if ($error.hidden || (origin === "poll" && $error.dataset.origin !== "poll")) return;
  $error.hidden = true;
  $error.textContent = "";
}

async function api(path, opts = {}) {
  const headers = {};
  if (opts.body !== undefined) headers["Content-Type"] = opts.contentType || "application/json";
  if (opts.accept) headers["Accept"] = opts.accept;
  let res;
  try {
    res = await fetch(path, {
      method: opts.method || "GET", headers,
      // A broker that hangs must not stall the page's loops.
      signal: AbortSignal.timeout(10000),
      body: opts.body === undefined ? undefined : (typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body)),
    });
  } catch (e) {
    setConn(false);
    throw new ApiError(0, null, "Broker unreachable: " + e.message);
  }
  setConn(true);
  const text = await res.text();
  let body = null;
  if (text) { try { body = JSON.parse(text); } catch { body = text; } }
  if (res.status === 401) {
    // The session ended (logged out elsewhere, expired, the user deleted): log in again.
    location.href = "/login";
  }
  if (!res.ok) {
    const code = body && body.error_code, message = (body && body.message) || `HTTP ${res.status}`;
    throw new ApiError(res.status, code, message);
  }
  return body;
}

async function clusterId() {
  if (!cluster) cluster = (await api("/v3/clusters")).data[0].cluster_id;
  return cluster;
}
async function v3(path, opts) { return api(`/v3/clusters/${await clusterId()}${path}`, opts); }
const enc = encodeURIComponent;

// Runs `fn` now and every `ms`; errors show in the banner and the loop goes on
// (the broker may be restarting); a success clears the banner. Nothing is shown for
// a tick that finishes after its page was left.
function every(ms, fn) {
  let stopped = false, timer = null;
  const serial = pageSerial;
  const tick = async () => {
    try {
      await fn();
      if (!stopped && serial === pageSerial) clearError("poll");
    } catch (e) {
      if (!stopped && serial === pageSerial) showError(e, "poll");
      if (e.status === 0) cluster = null;
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  cleanups.push(() => { stopped = true; clearTimeout(timer); });
}

// Renders bytes (base64 from the API) as pretty JSON, UTF-8 text or hex.
function renderBytes(b64) {
  if (b64 === null || b64 === undefined) return { kind: "null", text: "null" };
  const raw = atob(b64), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    try {
      const v = JSON.parse(text);
      if (typeof v === "object" && v !== null) return { kind: "json", text: JSON.stringify(v, null, 2) };
    } catch { /* not JSON */ }
    if (!/[\u0000-\u0008\u000e-\u001f]/.test(text)) return { kind: "text", text };
  } catch { /* not UTF-8 */ }
  return { kind: "hex", text: Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ") };
}
function bytesCell(b64) {
  const r = renderBytes(b64);
  if (r.kind === "null") return h("td", {}, h("span", { class: "tag", text: "null" }));
  return h("td", {}, h("span", { class: "tag", text: r.kind }), " ", h("pre", { class: "val", text: r.text }));
}

// Rebuilding a table must not throw away keyboard focus: the focused row's link
// (found by its data attribute) gets it back.
function keepFocus(attr, rebuild) {
  const row = document.activeElement && document.activeElement.closest && document.activeElement.closest(`[${attr}]`);
  const key = row && row.getAttribute(attr);
  rebuild();
  if (key === null || key === undefined) return;
  const again = Array.from(document.querySelectorAll(`[${attr}]`)).find((r) => r.getAttribute(attr) === key);
  const link = again && again.querySelector("a, button, input");
  if (link) link.focus();
}

function table(headers, rows, opts = {}) {
  return h("div", { class: "table-wrap" }, h("table", { id: opts.id },
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", { class: c.num ? "num" : null, scope: "col", text: c.label || c })))),
    h("tbody", {}, rows.length ? rows : [h("tr", {}, h("td", { colspan: headers.length, class: "muted", text: opts.empty || "none" }))])));
}

// A line chart of the last samples, in SVG.
function lineChart(title, unit) {
  const points = [];
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 300 100");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const now = h("span", { class: "now", text: "–" });
  const bytes = unit === "B/s";
  const show = (v) => (bytes ? fmtBytes(v) + "/s" : unit === "records" ? fmtNum(v) : fmtRate(v));
  const el = h("div", { class: "card chart" }, h("div", { class: "label" }, title, ": ", now, bytes ? "" : " " + unit), svg);
  function push(v) {
    points.push(v);
    if (points.length > 60) points.shift();
    now.textContent = show(v);
    const max = Math.max(1, ...points);
    const d = points.map((p, i) => `${i === 0 ? "M" : "L"}${(i / 59) * 300},${96 - (p / max) * 90}`).join(" ");
    svg.innerHTML = "";
    const grid = document.createElementNS(svg.namespaceURI, "path");
    grid.setAttribute("d", "M0,96 L300,96");
    grid.setAttribute("stroke", "#d8dde3");
    const line = document.createElementNS(svg.namespaceURI, "path");
    line.setAttribute("d", d);
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#2457c5");
    line.setAttribute("stroke-width", "2");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(grid, line);
  }
  return { el, push, now };
}

function parseMetrics(text) {
  const sums = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)$/);
    if (m) sums[m[1]] = (sums[m[1]] || 0) + Number(m[3]);
  }
  return sums;
}

function confirmDelete(word, text) {
  const dialog = document.getElementById("confirm");
  const input = document.getElementById("confirm-input");
  const ok = document.getElementById("confirm-ok");
  document.getElementById("confirm-word").textContent = word;
  document.getElementById("confirm-text").textContent = text;
  input.value = "";
  ok.disabled = true;
  input.oninput = () => { ok.disabled = input.value !== word; };
  return new Promise((resolve) => {
    document.getElementById("confirm-cancel").onclick = () => dialog.close("cancel");
    dialog.onclose = () => resolve(dialog.returnValue === "ok");
    document.getElementById("confirm-form").onsubmit = (e) => { e.preventDefault(); dialog.close("ok"); };
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
}

// ------------------------------------------------------------------ pages

async function topicStats(name) {
  const parts = (await v3(`/topics/${enc(name)}/partitions`)).data;
  return {
    parts,
    size: parts.reduce((a, p) => a + p.size_bytes, 0),
    messages: parts.reduce((a, p) => a + Math.max(0, p.high_watermark - p.log_start_offset), 0),
    offline: parts.filter((p) => !p.online).length,
  };
}

function pageOverview() {
  const brokersBox = h("div", {});
  const quorumBox = h("div", {});
  const cards = h("div", { class: "cards" });
  const charts = {
    bin: lineChart("Bytes in", "B/s"), bout: lineChart("Bytes out", "B/s"),
    rin: lineChart("Records in", "records/s"), rout: lineChart("Records out", "records/s"),
  };
  $main.replaceChildren(
    h("h1", { text: "Overview" }),
    cards,
    h("div", { class: "charts" }, charts.bin.el, charts.bout.el, charts.rin.el, charts.rout.el),
    h("section", { class: "panel" }, h("h2", { text: "Brokers" }), brokersBox),
    h("section", { class: "panel" }, h("h2", { text: "Metadata quorum" }), quorumBox));
  const card = (label, value, bad) => h("div", { class: "card" }, h("div", { class: "label", text: label }),
    h("div", { class: "value" + (bad ? " bad" : ""), text: value, "data-card": label }));
  every(5000, async () => {
    const [brokers, topics, quorum] = await Promise.all([v3("/brokers"), v3("/topics"), v3("/quorum")]);
    let partitions = 0, offline = 0, under = 0;
    for (const t of topics.data) {
      const s = await topicStats(t.topic_name);
      partitions += s.parts.length;
      offline += s.offline;
      // Online, but fewer replicas in sync than it has.
      under += s.parts.filter((p) => p.online && (p.isr_ids || []).length < (p.replica_ids || []).length).length;
    }
    cards.replaceChildren(card("Brokers", brokers.data.length), card("Topics", topics.data.length),
      card("Partitions", partitions), card("Under-replicated", under, under > 0), card("Offline partitions", offline, offline > 0));
    // Uptime is each node's own to tell: shown for the node serving this page.
    brokersBox.replaceChildren(table(["Id", "Address", "State", "Controller", "Uptime"], brokers.data.map((b) =>
      h("tr", { class: b.state === "alive" ? "" : "bad" }, h("td", { text: b.broker_id }), h("td", { text: `${b.host}:${b.port}` }),
        h("td", { text: (b.state || "alive").replace("_", " ") }),
        h("td", { text: b.is_controller ? "yes" : "no" }),
        h("td", { text: b.uptime_ms === undefined ? "—" : fmtDuration(b.uptime_ms) }))), { id: "brokers" }));
    const q = quorum.quorum || {};
    const lag = (id, v) => (v.lag_entries === null || v.lag_entries === undefined)
      ? (Number(id) === q.leader ? "leader" : "—") : String(v.lag_entries);
    const voters = Object.entries(q.voters || {}).map(([id, v]) =>
      h("tr", {}, h("td", { text: id }), h("td", { text: v.addr }), h("td", { text: lag(id, v) })));
    quorumBox.replaceChildren(
      h("p", { class: "status-line", id: "quorum-summary",
        text: `Leader: node ${q.leader ?? "none"} · term ${q.term ?? "?"} · metadata offset ${quorum.metadata_offset ?? "?"} (applied here)` }),
      table(["Voter", "Controller listener", "Lag (entries)"], voters, { id: "quorum" }));
  });
  let last = null;
  every(2000, async () => {
    const text = await api("/metrics");
    const m = parseMetrics(String(text)), t = Date.now();
    const sample = { t, bin: m.troupe_bytes_in_total || 0, bout: m.troupe_bytes_out_total || 0,
      rin: m.troupe_records_in_total || 0, rout: m.troupe_records_out_total || 0 };
    if (last) {
      const dt = (t - last.t) / 1000;
      for (const k of ["bin", "bout", "rin", "rout"]) charts[k].push(Math.max(0, (sample[k] - last[k]) / dt));
    }
    last = sample;
  });
}

function pageTopics() {
  const search = h("input", { id: "topic-search", type: "search", placeholder: "Filter topics", "aria-label": "Filter topics" });
  const list = h("div", {});
  const status = h("div", { class: "status-line", role: "status", "aria-live": "polite" });
  const form = h("form", { class: "inline", id: "create-topic", "aria-label": "Create topic" },
    h("label", {}, "Name", h("input", { name: "name", id: "new-topic-name", required: true, pattern: "[a-zA-Z0-9._-]+" })),
    h("label", {}, "Partitions", h("input", { name: "partitions", id: "new-topic-partitions", type: "number", min: 1, value: 1 })),
    h("label", {}, "Replication factor", h("input", { name: "rf", type: "number", min: 1, value: 1 })),
    h("label", {}, "Configs (name=value per line)", h("textarea", { name: "configs", id: "new-topic-configs", rows: 2, placeholder: "cleanup.policy=compact" })),
    h("button", { type: "submit", id: "create-topic-submit", text: "Create topic" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const configs = String(f.get("configs") || "").split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
      const i = l.indexOf("=");
      return { name: l.slice(0, i < 0 ? l.length : i).trim(), value: i < 0 ? "" : l.slice(i + 1).trim() };
    });
    try {
      await v3("/topics", { method: "POST", body: {
        topic_name: f.get("name"), partitions_count: Number(f.get("partitions")),
        replication_factor: Number(f.get("rf")), configs } });
      status.textContent = `Topic ${f.get("name")} created.`;
      form.reset();
      clearError();
      await refresh();
    } catch (err) { showError(err); status.textContent = ""; }
  });
  $main.replaceChildren(h("h1", { text: "Topics" }),
    h("section", { class: "panel" }, h("h2", { text: "Create a topic" }), form, status),
    h("section", { class: "panel" }, h("div", { class: "row" }, search), list));
  let rows = [], seq = 0;
  const draw = () => keepFocus("data-topic", () => {
    const q = search.value.toLowerCase();
    list.replaceChildren(table(["Topic", { label: "Partitions", num: true }, { label: "Replication", num: true },
      { label: "Size", num: true }, { label: "Messages", num: true }, "Cleanup policy"],
    rows.filter((r) => r.name.toLowerCase().includes(q)).map((r) => h("tr", { "data-topic": r.name },
      h("td", {}, h("a", { href: `#/topics/${enc(r.name)}`, text: r.name }), r.internal ? h("span", { class: "tag", text: " internal" }) : null),
      h("td", { class: "num", text: r.partitions }), h("td", { class: "num", text: r.rf }),
      h("td", { class: "num", text: fmtBytes(r.size) }), h("td", { class: "num", text: fmtNum(r.messages) }),
      h("td", { text: r.policy }))), { id: "topics", empty: "no topics" }));
  });
  search.addEventListener("input", draw);
  const refresh = async () => {
    // A refresh that finishes after a newer one started is dropped.
    const mine = ++seq;
    const topics = (await v3("/topics")).data;
    const fresh = await Promise.all(topics.map(async (t) => {
      const [s, policy] = await Promise.all([topicStats(t.topic_name),
        v3(`/topics/${enc(t.topic_name)}/configs/cleanup.policy`).then((c) => c.value).catch(() => "?")]);
      return { name: t.topic_name, internal: t.is_internal, partitions: t.partitions_count,
        rf: t.replication_factor, size: s.size, messages: s.messages, policy };
    }));
    if (mine !== seq) return;
    rows = fresh;
    draw();
  };
  every(5000, refresh);
}

function pageTopic(name) {
  const parts = h("div", {}), configs = h("div", {});
  // Reassignment: move a partition to other brokers (or change its replica count).
  const moving = h("div", { class: "status-line", id: "reassignments", role: "status" });
  const movePartition = h("input", { name: "partition", type: "number", min: 0, value: 0, "aria-label": "Partition to move" });
  const moveTo = h("input", { name: "replicas", placeholder: "1,2,3", "aria-label": "Target broker ids" });
  const reassign = h("form", { class: "inline", id: "reassign-form", "aria-label": "Reassign partition",
    onsubmit: async (e) => {
      e.preventDefault();
      const ids = moveTo.value.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
      try {
        await v3(`/topics/${enc(name)}/partitions/${Number(movePartition.value)}/reassignment`,
          { method: "POST", body: { replica_ids: ids } });
        clearError();
      } catch (err) { showError(err); }
    } },
    h("span", { text: "Move partition " }), movePartition, h("span", { text: " to brokers " }), moveTo,
    h("button", { type: "submit", text: "Reassign" }));
  const del = h("button", { class: "danger", id: "delete-topic", text: "Delete topic" });
  del.addEventListener("click", async () => {
    if (!(await confirmDelete(name, `Delete topic ${name} and all its data? This cannot be undone.`))) return;
    try { await v3(`/topics/${enc(name)}`, { method: "DELETE" }); location.hash = "#/topics"; }
    catch (e) { showError(e); }
  });
  $main.replaceChildren(
    h("h1", {}, "Topic ", h("span", { id: "topic-name", text: name })),
    h("div", { class: "row" }, h("a", { href: `#/topics/${enc(name)}/messages`, id: "open-messages" }, "Browse and tail messages"), del),
    h("section", { class: "panel" }, h("h2", { text: "Partitions" }), parts, reassign, moving),
    h("section", { class: "panel" }, h("h2", { text: "Configs" }), configs));
  const drawConfigs = async () => {
    const list = (await v3(`/topics/${enc(name)}/configs`)).data;
    configs.replaceChildren(table(["Name", "Value", "Source", "Actions"], list.map((c) => {
      const input = h("input", { value: c.value ?? "", "aria-label": `Value of ${c.name}`, disabled: c.is_read_only || null });
      const save = h("button", { class: "secondary", text: "Save", onclick: async () => {
        try { await v3(`/topics/${enc(name)}/configs/${enc(c.name)}`, { method: "PUT", body: { value: input.value } }); clearError(); await drawConfigs(); }
        catch (e) { showError(e); }
      } });
      const reset = h("button", { class: "secondary", text: "Reset", disabled: c.is_default || null, onclick: async () => {
        try { await v3(`/topics/${enc(name)}/configs/${enc(c.name)}`, { method: "DELETE" }); clearError(); await drawConfigs(); }
        catch (e) { showError(e); }
      } });
      return h("tr", { "data-config": c.name }, h("td", { text: c.name }), h("td", {}, input), h("td", { text: c.source }), h("td", {}, c.is_read_only ? null : [save, " ", reset]));
    }), { id: "configs" }));
  };
  drawConfigs().catch(showError);
  every(3000, async () => {
    const moves = (await v3(`/topics/${enc(name)}/partitions/-/reassignment`)).data;
    moving.textContent = moves.length === 0 ? "No reassignment in progress." : moves.map((m) =>
      `Partition ${m.partition_id} moving: adding [${m.adding_replicas.join(", ")}], removing [${m.removing_replicas.join(", ")}]`).join("; ");
    const list = (await v3(`/topics/${enc(name)}/partitions`)).data;
    parts.replaceChildren(table([{ label: "Partition", num: true }, "Leader", "Replicas", "ISR", { label: "Log start", num: true },
      { label: "Log end", num: true }, { label: "High watermark", num: true }, { label: "Size", num: true }, "State"],
    list.map((p) => {
      const leader = p.leader_id === null || p.leader_id === undefined ? "none" : String(p.leader_id);
      return h("tr", { "data-partition": p.partition_id }, h("td", { class: "num", text: p.partition_id }), h("td", { text: leader }),
        h("td", { text: `[${(p.replica_ids || []).join(", ")}]` }),
        h("td", { text: `[${(p.isr_ids || []).join(", ")}]` }), h("td", { class: "num", text: fmtNum(p.log_start_offset) }),
        h("td", { class: "num", text: fmtNum(p.log_end_offset) }), h("td", { class: "num", text: fmtNum(p.high_watermark) }),
        h("td", { class: "num", text: fmtBytes(p.size_bytes) }),
        h("td", {}, h("span", { class: "tag " + (p.online ? "ok" : "bad"), text: p.online ? "online" : "offline" }),
          p.online && (p.isr_ids || []).length < (p.replica_ids || []).length
            ? [" ", h("span", { class: "tag warn", text: "under-replicated" })] : null));
    }), { id: "partitions" }));
  });
}

function messageRow(r) {
  return h("tr", { "data-offset": r.offset },
    h("td", { class: "num", text: r.partition }), h("td", { class: "num", text: r.offset }),
    h("td", { text: fmtTime(r.timestamp) }), bytesCell(r.key), bytesCell(r.value));
}
function matches(r, q) {
  if (!q) return true;
  return (renderBytes(r.key).text + "\n" + renderBytes(r.value).text).toLowerCase().includes(q.toLowerCase());
}

function pageMessages(name) {
  const headers = [{ label: "Partition", num: true }, { label: "Offset", num: true }, "Timestamp (UTC)", "Key", "Value"];
  // Browse.
  const partition = h("select", { id: "browse-partition", "aria-label": "Partition" });
  const fromKind = h("select", { id: "browse-from", "aria-label": "Start from" },
    h("option", { value: "beginning", text: "beginning" }), h("option", { value: "offset", text: "offset" }),
    h("option", { value: "timestamp", text: "timestamp" }), h("option", { value: "end", text: "end" }));
  const fromValue = h("input", { id: "browse-value", "aria-label": "Offset or time", placeholder: "42 or 2026-12-01T10:00" });
  const limit = h("input", { id: "browse-limit", type: "number", min: 1, max: 1000, value: 50, "aria-label": "Records" });
  const filter = h("input", { id: "browse-filter", type: "search", placeholder: "Filter key/value", "aria-label": "Filter" });
  const browseBox = h("div", {});
  const browseStatus = h("div", { class: "status-line", role: "status" });
  let browsed = [], next = null;
  const drawBrowse = () => browseBox.replaceChildren(table(headers, browsed.filter((r) => matches(r, filter.value)).map(messageRow), { id: "browse", empty: "no records" }));
  filter.addEventListener("input", drawBrowse);
  const browse = async (offsetOverride) => {
    const p = partition.value;
    let q;
    if (offsetOverride !== undefined) q = `offset=${offsetOverride}`;
    else if (fromKind.value === "offset") {
      const o = Number(fromValue.value);
      if (fromValue.value.trim() === "" || !Number.isInteger(o) || o < 0) return showError(new Error("Give the offset to start from: a whole number, 0 or more."));
      q = `offset=${o}`;
    } else if (fromKind.value === "timestamp") {
      const t = parseTime(fromValue.value);
      if (t === null) return showError(new Error("Give the time to start from, e.g. 2026-12-01T10:00 (UTC)."));
      q = `timestamp=${t}`;
    } else q = `offset=${fromKind.value}`;
    try {
      const got = await api(`/topics/${enc(name)}/partitions/${p}/records?${q}&max_bytes=1048576`, { accept: "application/vnd.kafka.binary.v2+json" });
      browsed = got.slice(0, Number(limit.value) || 50);
      next = browsed.length ? browsed[browsed.length - 1].offset + 1 : null;
      browseStatus.textContent = browsed.length ? `offsets ${browsed[0].offset}–${browsed[browsed.length - 1].offset} of partition ${p}` : "no records there";
      clearError();
      drawBrowse();
    } catch (e) { showError(e); }
  };
  const browseForm = h("form", { class: "inline", id: "browse-form", onsubmit: (e) => { e.preventDefault(); browse(); } },
    h("label", {}, "Partition", partition), h("label", {}, "From", fromKind), h("label", {}, "Offset / time", fromValue),
    h("label", {}, "Records", limit), h("button", { type: "submit", text: "Browse" }),
    h("button", { type: "button", class: "secondary", text: "Next page", onclick: () => next !== null && browse(next) }),
    h("label", {}, "Filter", filter));

  // Live tail over the WebSocket API.
  const tailBox = h("div", {});
  const tailStatus = h("div", { class: "status-line", id: "tail-status", role: "status", "aria-live": "polite", text: "not tailing" });
  const tailFilter = h("input", { id: "tail-filter", type: "search", placeholder: "Filter key/value", "aria-label": "Filter live records" });
  let tailRows = [], ws = null, wanted = false, paused = false, positions = {}, retry = null;
  const drawTail = () => tailBox.replaceChildren(table(headers, tailRows.filter((r) => matches(r, tailFilter.value)).map(messageRow), { id: "tail", empty: "waiting for records…" }));
  // Frames can come faster than the page paints: redraw at most once a frame.
  let drawPending = false;
  const drawTailSoon = () => {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => { drawPending = false; drawTail(); });
  };
  tailFilter.addEventListener("input", drawTail);
  const startBtn = h("button", { id: "tail-start", text: "Start live tail" });
  const pauseBtn = h("button", { id: "tail-pause", class: "secondary", text: "Pause", disabled: true });
  const stopBtn = h("button", { id: "tail-stop", class: "secondary", text: "Stop", disabled: true });
  const connect = () => {
    const sock = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    ws = sock;
    sock.onopen = () => {
      // After a reconnect, carry on after the last record shown.
      const from = Object.keys(positions).length ? { offsets: positions } : "end";
      sock.send(JSON.stringify({ type: "subscribe", sub: "tail", topic: name, from, format: "binary", credit: 500 }));
      if (paused) sock.send(JSON.stringify({ type: "pause", sub: "tail" }));
    };
    sock.onmessage = (e) => {
      const f = JSON.parse(e.data);
      if (f.type === "subscribed") {
        for (const p of f.partitions) if (!(p.partition in positions)) positions[p.partition] = p.offset;
        tailStatus.textContent = paused ? "paused" : `live: following ${f.partitions.length} partition(s)`;
      } else if (f.type === "records") {
        for (const r of f.records) {
          tailRows.unshift({ partition: f.partition, offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value });
          positions[f.partition] = r.offset + 1;
        }
        tailRows = tailRows.slice(0, 500);
        drawTailSoon();
        sock.send(JSON.stringify({ type: "credit", sub: "tail", records: f.records.length }));
      } else if (f.type === "error") {
        showError(new ApiError(0, f.error_code, f.message));
        // Records deleted by retention before they came: the tail goes on from here.
        if (f.partition !== undefined && f.position !== undefined) positions[f.partition] = f.position;
        tailStatus.textContent = `error: ${f.message}`;
      } else if (f.type === "paused" || f.type === "resumed") {
        if (f.reason === "send_buffer_full") tailStatus.textContent = f.type === "paused" ? "catching up (the page is slower than the topic)" : "live";
        else tailStatus.textContent = f.type === "paused" ? "paused" : "live";
      }
    };
    sock.onclose = () => {
      if (ws !== sock || !wanted) return;
      tailStatus.textContent = "connection lost — reconnecting…";
      retry = setTimeout(connect, 1000);
    };
  };
  startBtn.addEventListener("click", () => {
    wanted = true; paused = false; positions = {};
    startBtn.disabled = true; pauseBtn.disabled = false; stopBtn.disabled = false; pauseBtn.textContent = "Pause";
    tailStatus.textContent = "connecting…";
    connect();
  });
  pauseBtn.addEventListener("click", () => {
    paused = !paused;
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: paused ? "pause" : "resume", sub: "tail" }));
  });
  const stop = () => {
    wanted = false; clearTimeout(retry);
    if (ws) ws.close();
    ws = null;
    startBtn.disabled = false; pauseBtn.disabled = true; stopBtn.disabled = true;
    tailStatus.textContent = "not tailing";
  };
  stopBtn.addEventListener("click", stop);
  cleanups.push(stop);

  // Produce a test record.
  const produceStatus = h("div", { class: "status-line", id: "produce-status", role: "status", "aria-live": "polite" });
  const produceForm = h("form", { class: "inline", id: "produce-form" },
    h("label", {}, "Key (optional)", h("input", { name: "key", id: "produce-key" })),
    h("label", {}, "Value", h("textarea", { name: "value", id: "produce-value", rows: 1, required: true })),
    h("label", {}, "Value type", h("select", { name: "type" }, h("option", { value: "STRING", text: "text" }), h("option", { value: "JSON", text: "JSON" }))),
    h("label", {}, "Partition (optional)", h("input", { name: "partition", type: "number", min: 0 })),
    h("button", { type: "submit", id: "produce-submit", text: "Produce" }));
  produceForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(produceForm);
    try {
      const type = f.get("type");
      const raw = String(f.get("value"));
      const record = { value: { type, data: type === "JSON" ? JSON.parse(raw) : raw } };
      if (f.get("key")) record.key = { type: "STRING", data: String(f.get("key")) };
      if (f.get("partition") !== "") record.partition_id = Number(f.get("partition"));
      const r = await v3(`/topics/${enc(name)}/records`, { method: "POST", body: record });
      // v3 produce reports a refused record in band, with HTTP 200 (as Confluent's).
      if (r.error_code !== 200) throw new ApiError(200, r.error_code, r.message);
      produceStatus.textContent = `Written to partition ${r.partition_id} at offset ${r.offset}.`;
      clearError();
    } catch (err) {
      showError(err instanceof SyntaxError ? new Error("The value is not valid JSON: " + err.message) : err);
    }
  });

  $main.replaceChildren(
    h("h1", {}, "Messages of ", h("a", { href: `#/topics/${enc(name)}`, text: name })),
    h("section", { class: "panel" }, h("h2", { text: "Live tail" }), h("div", { class: "row" }, startBtn, pauseBtn, stopBtn, h("label", {}, "Filter", tailFilter)), tailStatus, tailBox),
    h("section", { class: "panel" }, h("h2", { text: "Browse a partition" }), browseForm, browseStatus, browseBox),
    h("section", { class: "panel" }, h("h2", { text: "Produce a test record" }), produceForm, produceStatus));
  drawTail();
  every(5000, () => api("/health"));
  v3(`/topics/${enc(name)}`).then((t) => {
    partition.replaceChildren(...Array.from({ length: t.partitions_count }, (_, i) => h("option", { value: i, text: i })));
  }).catch(showError);
}

function pageGroups() {
  const box = h("div", {});
  $main.replaceChildren(h("h1", { text: "Consumer groups" }), h("section", { class: "panel" }, box));
  every(3000, async () => {
    const groups = (await v3("/consumer-groups")).data;
    const rows = await Promise.all(groups.map(async (g) => {
      const lag = await v3(`/consumer-groups/${enc(g.consumer_group_id)}/lag-summary`).catch(() => null);
      return h("tr", { "data-group": g.consumer_group_id },
        h("td", {}, h("a", { href: `#/groups/${enc(g.consumer_group_id)}`, text: g.consumer_group_id })),
        h("td", { text: g.state }), h("td", { class: "num", text: g.members_count }),
        h("td", { text: g.partition_assignor || "–" }), h("td", { class: "num", text: lag ? fmtNum(lag.total_lag) : "–" }));
    }));
    keepFocus("data-group", () => box.replaceChildren(table(["Group", "State", { label: "Members", num: true }, "Assignor", { label: "Total lag", num: true }], rows, { id: "groups", empty: "no consumer groups" })));
  });
}

function pageGroup(id) {
  const summary = h("div", { class: "cards" }), members = h("div", {}), lags = h("div", {});
  const chart = lineChart("Total lag", "records");
  if (!lagHistory.has(id)) lagHistory.set(id, []);
  const history = lagHistory.get(id);
  for (const v of history) chart.push(v);
  const resetStatus = h("div", { class: "status-line", role: "status", "aria-live": "polite" });
  const resetForm = h("form", { class: "inline", id: "reset-form" },
    h("label", {}, "Topic", h("input", { name: "topic", required: true })),
    h("label", {}, "To", h("select", { name: "to" }, ["earliest", "latest", "timestamp", "offset"].map((t) => h("option", { value: t, text: t })))),
    h("label", {}, "Partitions (optional)", h("input", { name: "partitions", placeholder: "0, 2 (default: all)" })),
    h("label", {}, "Offset / time", h("input", { name: "at", placeholder: "42 or 2026-12-01T10:00" })),
    h("button", { type: "submit", text: "Reset offsets" }));
  resetForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(resetForm), to = f.get("to"), at = String(f.get("at") || "").trim();
    const body = { topic_name: f.get("topic"), to };
    const parts = String(f.get("partitions") || "").split(",").map((p) => p.trim()).filter(Boolean);
    if (parts.length) {
      if (!parts.every((p) => /^\d+$/.test(p))) return showError(new Error("Partitions are whole numbers separated by commas."));
      body.partitions = parts.map(Number);
    }
    if (to === "offset") {
      if (!/^\d+$/.test(at)) return showError(new Error("Give the offset to reset to: a whole number, 0 or more."));
      body.offset = Number(at);
    }
    if (to === "timestamp") {
      const t = parseTime(at);
      if (t === null) return showError(new Error("Give the time to reset to, e.g. 2026-12-01T10:00 (UTC)."));
      body.timestamp = t;
    }
    try {
      const r = await v3(`/consumer-groups/${enc(id)}/offsets:reset`, { method: "POST", body });
      resetStatus.textContent = `Reset ${r.data.length} partition(s).`;
      clearError();
    } catch (err) { showError(err); resetStatus.textContent = ""; }
  });
  $main.replaceChildren(h("h1", {}, "Consumer group ", h("span", { id: "group-name", text: id })), summary,
    h("div", { class: "charts" }, chart.el),
    h("section", { class: "panel" }, h("h2", { text: "Members and assignments" }), members),
    h("section", { class: "panel" }, h("h2", { text: "Lag per partition" }), lags),
    h("section", { class: "panel" }, h("h2", { text: "Reset offsets (only while the group has no members)" }), resetForm, resetStatus));
  const card = (label, value, attrs) => h("div", { class: "card" }, h("div", { class: "label", text: label }), h("div", Object.assign({ class: "value", text: value }, attrs || {})));
  every(2000, async () => {
    // A group with no committed offsets has no lag summary (404, as Confluent's).
    const noLag = (e) => { if (e.status === 404) return { total_lag: 0, max_lag: 0 }; throw e; };
    const [g, lagList, lag] = await Promise.all([v3(`/consumer-groups/${enc(id)}`), v3(`/consumer-groups/${enc(id)}/lags`), v3(`/consumer-groups/${enc(id)}/lag-summary`).catch(noLag)]);
    summary.replaceChildren(card("State", g.state), card("Members", g.members_count), card("Generation", g.generation_id),
      card("Assignor", g.partition_assignor || "–"), card("Total lag", fmtNum(lag.total_lag), { id: "total-lag" }), card("Max lag", fmtNum(lag.max_lag)));
    chart.push(lag.total_lag);
    history.push(lag.total_lag);
    if (history.length > 60) history.shift();
    const consumers = (await v3(`/consumer-groups/${enc(id)}/consumers`)).data;
    // A member may leave between the two requests: it is then just not listed.
    const assigned = await Promise.all(consumers.map(async (c) => {
      const a = await v3(`/consumer-groups/${enc(id)}/consumers/${enc(c.consumer_id)}/assignments`).then((r) => r.data).catch(() => null);
      return { c, a };
    }));
    const rows = assigned.filter((x) => x.a !== null).map(({ c, a }) => h("tr", {}, h("td", { text: c.consumer_id }), h("td", { text: c.client_id }), h("td", { text: c.client_host }),
      h("td", { text: a.map((x) => `${x.topic_name}-${x.partition_id}`).join(", ") || "none" })));
    members.replaceChildren(table(["Member", "Client id", "Host", "Assigned partitions"], rows, { id: "members", empty: "no members" }));
    // Assigned partitions with nothing committed yet show too (as Kafka's tool: "–").
    const lagRows = lagList.data.map((l) => ({ topic: l.topic_name, partition: l.partition_id, committed: l.current_offset, end: l.log_end_offset, lag: l.lag, member: l.consumer_id }));
    for (const { c, a } of assigned) {
      for (const x of a || []) {
        if (!lagRows.some((r) => r.topic === x.topic_name && r.partition === x.partition_id)) {
          lagRows.push({ topic: x.topic_name, partition: x.partition_id, committed: null, end: null, lag: null, member: c.consumer_id });
        }
      }
    }
    lagRows.sort((x, y) => x.topic.localeCompare(y.topic) || x.partition - y.partition);
    lags.replaceChildren(table(["Topic", { label: "Partition", num: true }, { label: "Committed", num: true }, { label: "Log end", num: true }, { label: "Lag", num: true }, "Member"],
      lagRows.map((l) => h("tr", { "data-lag": `${l.topic}-${l.partition}` }, h("td", { text: l.topic }), h("td", { class: "num", text: l.partition }),
        h("td", { class: "num", text: fmtNum(l.committed) }), h("td", { class: "num", text: fmtNum(l.end) }),
        h("td", { class: "num", text: fmtNum(l.lag) }), h("td", { text: l.member || "–" }))), { id: "lags", empty: "nothing assigned or committed" }));
  });
}

// Users and their SCRAM credentials: list, create, set a password, delete. Passwords
// go to the broker and are never shown; the broker answers mechanisms and iterations.
function pageUsers() {
  const list = h("div", {});
  const status = h("div", { class: "status-line", id: "users-status", role: "status", "aria-live": "polite" });
  const mechanisms = () => h("select", { name: "mechanisms", "aria-label": "Mechanisms" },
    h("option", { value: "both", text: "SCRAM-SHA-256 and SCRAM-SHA-512" }),
    h("option", { value: "SCRAM-SHA-256", text: "SCRAM-SHA-256" }),
    h("option", { value: "SCRAM-SHA-512", text: "SCRAM-SHA-512" }));
  const chosen = (f) => (f.get("mechanisms") === "both" ? undefined : [f.get("mechanisms")]);
  const form = h("form", { class: "inline", id: "create-user", "aria-label": "Create user" },
    h("label", {}, "Name", h("input", { name: "name", id: "new-user-name", required: true, autocomplete: "off" })),
    h("label", {}, "Password", h("input", { name: "password", id: "new-user-password", type: "password", required: true, autocomplete: "new-password" })),
    h("label", {}, "Mechanisms", mechanisms()),
    h("button", { type: "submit", id: "create-user-submit", text: "Create user" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(form);
    try {
      await v3("/users", { method: "POST", body: { user_name: f.get("name"), password: f.get("password"), mechanisms: chosen(f) } });
      status.textContent = `User ${f.get("name")} created.`;
      form.reset();
      clearError();
      await refresh();
    } catch (err) { showError(err); status.textContent = ""; }
  });
  const passwordForm = h("form", { class: "inline", id: "set-password", "aria-label": "Set a password" },
    h("label", {}, "User", h("input", { name: "name", id: "password-user", required: true, autocomplete: "off" })),
    h("label", {}, "New password", h("input", { name: "password", id: "password-new", type: "password", required: true, autocomplete: "new-password" })),
    h("label", {}, "Mechanisms", mechanisms()),
    h("button", { type: "submit", id: "set-password-submit", text: "Set password" }));
  passwordForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(passwordForm);
    const name = f.get("name");
    try {
      await v3(`/users/${enc(name)}`, { method: "PUT", body: { password: f.get("password"), mechanisms: chosen(f) } });
      status.textContent = `Password of ${name} set.`;
      passwordForm.reset();
      clearError();
      await refresh();
    } catch (err) { showError(err); status.textContent = ""; }
  });
  $main.replaceChildren(h("h1", { text: "Users" }),
    h("section", { class: "panel" }, h("h2", { text: "Create a user" }), form),
    h("section", { class: "panel" }, h("h2", { text: "Set a password" }), passwordForm, status),
    h("section", { class: "panel" }, list));
  const setPassword = (name) => {
    document.getElementById("password-user").value = name;
    document.getElementById("password-new").focus();
  };
  const remove = async (name) => {
    if (!(await confirmDelete(name, `Delete user ${name}? Its clients can no longer log in.`))) return;
    try {
      await v3(`/users/${enc(name)}`, { method: "DELETE" });
      status.textContent = `User ${name} deleted.`;
      await refresh();
    } catch (err) { showError(err); }
  };
  const refresh = async () => {
    const users = (await v3("/users")).data;
    keepFocus("data-user", () => list.replaceChildren(table(["User", "Credentials", "Actions"],
      users.map((u) => h("tr", { "data-user": u.user_name },
        h("td", { text: u.user_name }),
        h("td", { text: u.credentials.map((c) => `${c.mechanism} (${c.iterations})`).join(", ") }),
        h("td", {},
          h("button", { type: "button", class: "secondary", "aria-label": `Set the password of ${u.user_name}`, onclick: () => setPassword(u.user_name), text: "Set password" }), " ",
          h("button", { type: "button", class: "danger", "aria-label": `Delete user ${u.user_name}`, onclick: () => remove(u.user_name), text: "Delete" })))),
      { id: "users", empty: "no users" })));
  };
  every(10000, refresh);
}

// ACLs (Kafka's model): list, add, delete. What the broker enforces once its
// authorizer is on (authorizer.class.name); the page says whether it is.
function pageAcls() {
  const list = h("div", {});
  const status = h("div", { class: "status-line", id: "acls-status", role: "status", "aria-live": "polite" });
  const options = (name, label, values) => h("select", { name, "aria-label": label },
    values.map((v) => h("option", { value: v, text: v })));
  const form = h("form", { class: "inline", id: "create-acl", "aria-label": "Add an ACL" },
    h("label", {}, "Principal", h("input", { name: "principal", id: "acl-principal", required: true, placeholder: "User:alice", autocomplete: "off" })),
    h("label", {}, "Permission", options("permission", "Permission", ["ALLOW", "DENY"])),
    h("label", {}, "Operation", options("operation", "Operation",
      ["READ", "WRITE", "DESCRIBE", "CREATE", "DELETE", "ALTER", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "CLUSTER_ACTION", "ALL"])),
    h("label", {}, "Resource type", options("resource_type", "Resource type", ["TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"])),
    h("label", {}, "Name", h("input", { name: "resource_name", id: "acl-resource", required: true, placeholder: "orders, or * for all", autocomplete: "off" })),
    h("label", {}, "Pattern", options("pattern_type", "Pattern", ["LITERAL", "PREFIXED"])),
    h("label", {}, "Host", h("input", { name: "host", id: "acl-host", value: "*", required: true, autocomplete: "off" })),
    h("button", { type: "submit", id: "create-acl-submit", text: "Add ACL" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const acl = Object.fromEntries(new FormData(form).entries());
    try {
      await v3("/acls", { method: "POST", body: acl });
      status.textContent = `ACL added: ${describeAcl(acl)}.`;
      form.reset();
      clearError();
      await refresh();
    } catch (err) { showError(err); status.textContent = ""; }
  });
  const enforced = h("p", { id: "acls-enforced", class: "muted" });
  $main.replaceChildren(h("h1", { text: "ACLs" }), enforced,
    h("section", { class: "panel" }, h("h2", { text: "Add an ACL" }), form, status),
    h("section", { class: "panel" }, list));
  const remove = async (acl) => {
    if (!(await confirmDelete(acl.principal, `Delete the ACL ${describeAcl(acl)}?`))) return;
    const fields = ["resource_type", "resource_name", "pattern_type", "principal", "host", "operation", "permission"];
    const query = fields.map((f) => `${f}=${enc(acl[f])}`).join("&");
    try {
      await v3(`/acls?${query}`, { method: "DELETE" });
      status.textContent = `ACL deleted: ${describeAcl(acl)}.`;
      await refresh();
    } catch (err) { showError(err); }
  };
  const key = (a) => [a.resource_type, a.resource_name, a.pattern_type, a.principal, a.host, a.operation, a.permission].join("|");
  const refresh = async () => {
    const [acls, state] = await Promise.all([v3("/acls"), api("/dashboard/status")]);
    enforced.textContent = state && state.authorizer
      ? "The authorizer is on: every request on every listener is checked against these ACLs."
      : "The authorizer is off (authorizer.class.name is empty): these ACLs are kept but not enforced.";
    keepFocus("data-acl", () => list.replaceChildren(table(["Principal", "Permission", "Operation", "Resource", "Pattern", "Host", "Actions"],
      acls.data.map((a) => h("tr", { "data-acl": key(a) },
        h("td", { text: a.principal }), h("td", { text: a.permission }), h("td", { text: a.operation }),
        h("td", { text: `${a.resource_type} ${a.resource_name}` }), h("td", { text: a.pattern_type }), h("td", { text: a.host }),
        h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Delete the ACL ${describeAcl(a)}`, onclick: () => remove(a), text: "Delete" })))),
      { id: "acls", empty: "no ACLs" })));
  };
  every(10000, refresh);
}

function describeAcl(a) {
  return `${a.permission} ${a.principal} ${a.operation} on ${a.resource_type} ${a.resource_name} (${a.pattern_type}) from ${a.host}`;
}

// ------------------------------------------------------------------ router

function route() {
  // In-page anchors (the skip link) are not pages.
  if (location.hash && !location.hash.startsWith("#/")) return;
  pageSerial++;
  for (const c of cleanups) c();
  cleanups = [];
  clearError();
  const parts = (location.hash.replace(/^#\/?/, "") || "overview").split("/").map(decodeURIComponent);
  const section = parts[0];
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (section === "topics" && parts[1] && parts[2] === "messages") pageMessages(parts[1]);
  else if (section === "topics" && parts[1]) pageTopic(parts[1]);
  else if (section === "topics") pageTopics();
  else if (section === "groups" && parts[1]) pageGroup(parts[1]);
  else if (section === "groups") pageGroups();
  else if (section === "users") pageUsers();
  else if (section === "acls") pageAcls();
  else pageOverview();
  document.title = `Troupe — ${parts.filter(Boolean).join(" / ") || "overview"}`;
  $main.focus({ preventScroll: true });
}

// The broker says whether it is reachable beyond this machine with no authentication;
// the page then keeps a warning on screen. Asked once: it cannot change while the
// page's broker runs.
async function showExposure() {
  try {
    const status = await api("/dashboard/status");
    document.getElementById("exposed").hidden = !(status && status.exposed);
    // Who is logged in, and the way out.
    if (status && status.authentication && status.user) {
      document.getElementById("who-user").textContent = status.user;
      document.getElementById("who").hidden = false;
    }
  } catch { /* the pages show the broker as unreachable */ }
}

document.getElementById("logout").addEventListener("click", async () => {
  try { await fetch("/logout", { method: "POST" }); } finally { location.href = "/login"; }
});

window.addEventListener("hashchange", route);
route();
showExposure();
