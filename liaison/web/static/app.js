// The operator dashboard: polls the hub's JSON endpoints every second and redraws.
// No framework and no third-party code, so the page works on an isolated network.
// Untrusted text (reasons, ids from messages) only ever goes through textContent.
"use strict";

(() => {
  const POLL_MS = 1000;
  const $ = (id) => document.getElementById(id);
  const selected = new Set(); // message ids ticked for a retry, kept across redraws
  let operatorToken = null; // in memory only: never stored in the browser

  async function getJSON(path) {
    const response = await fetch(path, { cache: "no-store" });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function rowFor(tbody, attribute, key) {
    for (const row of tbody.rows) {
      if (row.getAttribute(attribute) === key) return row;
    }
    const row = document.createElement("tr");
    row.setAttribute(attribute, key);
    tbody.appendChild(row);
    return row;
  }

  function dropOthers(tbody, attribute, keep) {
    for (const row of [...tbody.rows]) {
      if (!keep.has(row.getAttribute(attribute))) row.remove();
    }
  }

  const figure = (value) => (value === null || value === undefined ? "?" : String(value));
  const rate = (value) => (value === null || value === undefined ? "-" : value.toFixed(1));

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    const s = Math.floor(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }

  function since(iso) {
    if (!iso) return "-";
    return `${age((Date.now() - Date.parse(iso)) / 1000)} ago`;
  }

  function health(element, label, state) {
    // alive is true, false, or null while the broker has no figures yet.
    const alive = state && typeof state.alive === "boolean" ? state.alive : null;
    element.dataset.alive = alive === null ? "unknown" : String(alive);
    const lag = state && state.lag !== null && state.lag !== undefined ? state.lag : "?";
    const word = alive === null ? "unknown" : alive ? "alive" : "DOWN";
    element.textContent = `${label}: ${word} · lag ${lag}`;
  }

  function renderQueues(data) {
    const tbody = $("queues").tBodies[0];
    const seen = new Set();
    for (const q of data.queues || []) {
      const row = rowFor(tbody, "data-queue", q.name);
      row.dataset.kind = q.kind;
      row.dataset.depth = q.ready === null || q.ready === undefined ? "" : String(q.ready);
      row.replaceChildren();
      cell(row, q.name, "name");
      cell(row, q.exists ? figure(q.ready) : "missing", "num depth");
      cell(row, q.unacked === null || q.unacked === undefined ? "-" : String(q.unacked), "num");
      cell(row, q.exists ? figure(q.consumers) : "-", "num");
      cell(row, rate(q.publish_rate), "num");
      cell(row, rate(q.deliver_rate), "num");
      cell(row, age(q.oldest_age_s), "num");
      const alarming = !q.exists || (q.kind === "dead" && q.ready > 0);
      row.classList.toggle("alert", alarming);
      row.classList.toggle("idle", q.exists && !q.ready);
      seen.add(q.name);
    }
    dropOthers(tbody, "data-queue", seen);

    health($("router-health"), "router", data.router);
    health($("writer-health"), "audit writer", data.audit_writer);
    const source = $("source");
    source.dataset.source = data.source || "";
    source.textContent = `source: ${data.source || "?"} · vhost ${data.vhost || "?"}`;

    const banner = $("breaches");
    const problems = [...(data.breaches || []).map((b) => b.message)];
    if (data.error) problems.push(`cannot read the broker: ${data.error}`);
    banner.replaceChildren();
    banner.hidden = problems.length === 0;
    for (const text of problems) {
      const line = document.createElement("div");
      line.textContent = text;
      banner.appendChild(line);
    }
  }

  function renderAcks(data) {
    const tbody = $("acks").tBodies[0];
    const seen = new Set();
    const awaited = data.awaited || [];
    let overdue = 0;
    for (const item of awaited) {
      const row = rowFor(tbody, "data-message-id", item.message_id);
      row.dataset.overdue = String(item.overdue);
      row.dataset.waitingOn = item.waiting_on.join(" ");
      row.replaceChildren();
      cell(row, item.message_id, "name");
      cell(row, item.type);
      cell(row, item.sender);
      cell(row, item.receipt);
      cell(row, item.waiting_on.join(", "), "waiting");
      cell(row, new Date(item.due_at).toLocaleString());
      const state = item.overdue ? (item.escalated_at ? "OVERDUE, escalated" : "OVERDUE") : "pending";
      cell(row, state, item.overdue ? "bad" : "");
      row.classList.toggle("alert", item.overdue);
      if (item.overdue) overdue += 1;
      seen.add(item.message_id);
    }
    dropOthers(tbody, "data-message-id", seen);
    const count = $("acks-count");
    count.dataset.count = String(awaited.length);
    count.textContent = String(awaited.length);
    const late = $("acks-overdue");
    late.dataset.overdue = String(overdue);
    late.textContent = overdue ? `${overdue} overdue` : "";
    $("acks-empty").hidden = awaited.length > 0;
    $("acks-panel").hidden = !data.deployed;
  }

  function renderCases(data) {
    const tbody = $("treaties").tBodies[0];
    const seen = new Set();
    let files = 0;
    for (const group of data.treaties || []) {
      const key = `${group.step}|${group.waiting_on.join(" ")}`;
      const row = rowFor(tbody, "data-group", key);
      row.dataset.files = String(group.files);
      row.replaceChildren();
      cell(row, group.step, "name");
      cell(row, group.waiting_on.join(", ") || "nobody (in force)", "waiting");
      cell(row, String(group.files), "num");
      files += group.files;
      seen.add(key);
    }
    dropOthers(tbody, "data-group", seen);
    const count = $("treaties-count");
    count.dataset.count = String(files);
    count.textContent = String(files);
    const questions = data.questions || { open: 0, overdue: [] };
    const open = $("questions-open");
    open.dataset.count = String(questions.open);
    open.textContent = String(questions.open);
    const late = $("questions-overdue");
    late.dataset.overdue = String(questions.overdue.length);
    late.textContent = questions.overdue.length ? `${questions.overdue.length} overdue` : "";
    const list = $("questions-late");
    list.replaceChildren();
    for (const text of questions.overdue) {
      const item = document.createElement("li");
      item.textContent = text;
      item.className = "bad";
      list.appendChild(item);
    }
    $("cases-panel").hidden = !data.deployed;
  }

  function renderTraffic(data) {
    const tbody = $("traffic").tBodies[0];
    const seen = new Set();
    for (const inst of data.institutions || []) {
      const row = rowFor(tbody, "data-institution", inst.code);
      row.dataset.sent = String(inst.sent);
      row.dataset.delivered = String(inst.delivered);
      row.replaceChildren();
      cell(row, inst.code, "name");
      cell(row, String(inst.sent), "num");
      cell(row, String(inst.delivered), "num");
      cell(row, String(inst.rejected), inst.rejected ? "num bad" : "num");
      cell(row, since(inst.last_seen));
      seen.add(inst.code);
    }
    dropOthers(tbody, "data-institution", seen);

    const recent = $("recent");
    recent.replaceChildren();
    for (const item of (data.recent || []).slice(0, 12)) {
      const li = document.createElement("li");
      li.dataset.messageId = item.message_id;
      li.className = item.outcome.startsWith("routed") ? "ok" : "bad";
      const to = item.recipients.length ? ` → ${item.recipients.join(", ")}` : "";
      li.textContent = `${item.type || "?"} from ${item.sender || "?"}${to}: ${item.outcome}`;
      recent.appendChild(li);
    }

    const rateLabel = $("rate");
    rateLabel.dataset.rate = String(data.rate_1m);
    rateLabel.textContent = `${data.rate_1m.toFixed(1)} msg/s over the last minute`;
    drawThroughput(data.series || []);
  }

  function drawThroughput(series) {
    const canvas = $("throughput");
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(width * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const left = 40, bottom = height - 20, top = 10, right = width - 8;
    const peak = Math.max(1, ...series.map((p) => p[1]));
    const scale = niceCeiling(peak);
    const x = (i) => left + ((right - left) * i) / Math.max(1, series.length - 1);
    const y = (v) => bottom - ((bottom - top) * v) / scale;

    g.strokeStyle = "#d8dde6";
    g.fillStyle = "#5b6473";
    g.font = "11px system-ui, sans-serif";
    g.lineWidth = 1;
    for (const fraction of [0, 0.5, 1]) {
      const value = scale * fraction;
      g.beginPath();
      g.moveTo(left, y(value));
      g.lineTo(right, y(value));
      g.stroke();
      g.fillText(Number.isInteger(value) ? String(value) : value.toFixed(1), 4, y(value) + 4);
    }
    for (let minute = 5; minute >= 0; minute -= 1) {
      const i = series.length - 1 - minute * 60;
      if (i < 0) continue;
      const label = minute ? `-${minute}m` : "now";
      const at = Math.min(x(i) - g.measureText(label).width / 2, width - g.measureText(label).width - 2);
      g.fillText(label, at, height - 4);
    }
    g.fillStyle = "rgba(200, 55, 55, 0.75)";
    series.forEach((p, i) => {
      if (p[3] > 0) g.fillRect(x(i) - 1, y(p[3]), 2, bottom - y(p[3]));
    });
    g.strokeStyle = "#1f6feb";
    g.lineWidth = 1.5;
    g.beginPath();
    series.forEach((p, i) => (i ? g.lineTo(x(i), y(p[1])) : g.moveTo(x(i), y(p[1]))));
    g.stroke();
  }

  function niceCeiling(value) {
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 5, 10]) {
      if (step * power >= value) return step * power;
    }
    return 10 * power;
  }

  function renderDeadLetters(data) {
    const tbody = $("dead-letters").tBodies[0];
    const letters = data.dead_letters || [];
    const count = $("dead-count");
    count.dataset.count = String(data.total || 0);
    count.textContent = String(data.total || 0);
    count.classList.toggle("bad", (data.total || 0) > 0);
    $("dead-empty").hidden = letters.length > 0;
    const seen = new Set();
    for (const letter of letters) {
      const key = `${letter.message_id}|${letter.recipient || ""}`;
      const row = rowFor(tbody, "data-key", key);
      row.dataset.messageId = letter.message_id;
      row.dataset.reason = letter.reason || "";
      row.replaceChildren();
      const tick = document.createElement("input");
      tick.type = "checkbox";
      tick.checked = selected.has(letter.message_id);
      tick.setAttribute("aria-label", `select ${letter.message_id}`);
      tick.addEventListener("change", () => {
        if (tick.checked) selected.add(letter.message_id);
        else selected.delete(letter.message_id);
        updateRetryButton();
      });
      cell(row, "").appendChild(tick);
      cell(row, letter.message_id, "mono");
      cell(row, letter.type || "-");
      cell(row, letter.sender || "-");
      cell(row, letter.reason || "-", "reason");
      cell(row, letter.recipient || "-");
      cell(row, letter.reason_text || "", "text");
      seen.add(key);
    }
    dropOthers(tbody, "data-key", seen);
    const present = new Set(letters.map((l) => l.message_id));
    for (const id of [...selected]) if (!present.has(id)) selected.delete(id);
    updateRetryButton();
  }

  function updateRetryButton() {
    const button = $("retry-button");
    button.disabled = selected.size === 0;
    button.textContent = selected.size ? `Retry ${selected.size} selected…` : "Retry selected…";
  }

  async function retrySelected() {
    const ids = [...selected];
    if (!ids.length) return;
    if (!operatorToken) {
      operatorToken = window.prompt("Operator token (asked once per page load):");
      if (!operatorToken) return;
    }
    const operator = window.prompt("Your name, for the audit log:");
    if (!operator) return;
    const result = $("retry-result");
    result.textContent = "retrying…";
    const response = await fetch("/api/dead-letters/retry", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${operatorToken}` },
      body: JSON.stringify({ message_ids: ids, operator }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.status === 403) operatorToken = null;
    if (!response.ok) {
      result.textContent = `refused: ${body.error || response.status}`;
      result.className = "bad";
      return;
    }
    selected.clear();
    const notes = [];
    const refused = Object.entries(body.refused || {});
    for (const [id, why] of refused) notes.push(`not retried ${id}: ${why}`);
    if (body.not_found && body.not_found.length) notes.push(`not found: ${body.not_found.join(", ")}`);
    result.textContent = [`retried ${body.retried.length} message(s)`, ...notes].join("; ");
    result.className = notes.length ? "bad" : "ok";
  }

  async function tick() {
    const updated = $("updated");
    const results = await Promise.allSettled([
      getJSON("/api/queues").then(renderQueues),
      getJSON("/api/traffic").then(renderTraffic),
      getJSON("/api/dead-letters").then(renderDeadLetters),
      getJSON("/api/acks").then(renderAcks),
      getJSON("/api/cases").then(renderCases),
    ]);
    const failed = results.filter((r) => r.status === "rejected");
    updated.dataset.ok = String(failed.length === 0);
    updated.textContent = failed.length
      ? `update failed: ${failed[0].reason.message}`
      : `updated ${new Date().toLocaleTimeString()}`;
    window.setTimeout(tick, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("retry-button").addEventListener("click", () => {
      retrySelected().catch((error) => {
        $("retry-result").textContent = `failed: ${error.message}`;
      });
    });
    tick();
  });
})();
