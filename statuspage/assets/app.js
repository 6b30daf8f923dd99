// The raftlvs status page: GET /v1/status?counters=true every two seconds, GET /v1/events
// as a long poll, the DOM rebuilt from each answer. Every figure says which director
// answered and how old it is; ages of the director's own timestamps are taken on its
// clock (its "at"), plus the time since the answer came, so clock skew does not matter.
"use strict";

const POLL_MS = 2000;
const EVENTS_WAIT = "25s";
const MAX_SERVICES = 200; // rendered at once; the filter reaches the others
const MAX_EVENTS = 200;
const STALE_MS = 3 * POLL_MS;

const page = {
  status: null, // the last answer of /v1/status
  statusAt: 0, // when it came, by this browser's clock
  failure: "", // why the last poll failed, "" when it did not
  failingSince: 0,
  events: [],
  eventsLog: "",
  eventsLast: 0,
  eventsAt: 0,
  eventsDirector: "",
};

// el builds an element; strings become text nodes, never HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function $(id) { return document.getElementById(id); }

function human(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return s + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  if (s < 2 * 86400) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " d";
}

function clock(t) {
  const d = new Date(t);
  return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
}

// sinceServer is how long ago a timestamp of the answering director's clock was.
function sinceServer(t) {
  const st = page.status;
  if (!t || !st) return NaN;
  return Date.parse(st.at) - Date.parse(t) + (Date.now() - page.statusAt);
}

function isZeroTime(t) { return !t || t.startsWith("0001-"); }

function num(n) {
  if (n === undefined || n === null) return "-";
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + "K";
  return String(n);
}

function hostPort(addr, port) {
  return (addr.includes(":") ? "[" + addr + "]" : addr) + ":" + port;
}

function serviceLabel(s) {
  if (s.fwmark) return "FWM  " + s.fwmark + (s.family === "ipv6" ? " IPv6" : "");
  return (s.protocol || "").toUpperCase().padEnd(4) + " " + hostPort(s.vip, s.port);
}

function forwardName(f) { return { nat: "Masq", dr: "Route", tun: "Tunnel" }[f] || f; }

function role(st, id) {
  const n = st.node;
  const d = (st.directors || []).find((x) => x.id === id);
  if (id === n.leader_id) return "leader";
  const v = (n.voters || []).find((x) => x.id === id);
  // Its own state this director knows (a candidate says so); the others' only through a
  // leader: without one they are just voters.
  let base = id === n.node_id ? n.state.toLowerCase() : n.leader_id ? "follower" : "voter";
  if (v && v.suffrage !== "Voter") base = v.suffrage.toLowerCase();
  return d && d.witness ? base + " (witness)" : base;
}

// ---- rendering -------------------------------------------------------------------

function render() {
  const st = page.status;
  if (!st) return;
  $("cluster-id").textContent = st.cluster_id ? "cluster " + st.cluster_id : "(not bootstrapped)";
  renderDirectors(st);
  renderVIPs(st);
  renderServices(st);
  renderAgents(st);
  renderAges();
}

function renderAges() {
  const st = page.status;
  const banner = $("answer");
  const now = Date.now();
  let state = "waiting";
  if (st) {
    const n = st.node;
    const r = role(st, n.node_id);
    $("answered-by").textContent = "answered by " + n.node_id + " (" + r + ") at " + clock(st.at);
    $("answered-by").dataset.director = n.node_id;
    const age = now - page.statusAt;
    state = page.failure ? "failing" : age > STALE_MS ? "stale" : "fresh";
    $("answer-age").textContent = page.failure
      ? " — no answer for " + human(now - page.failingSince) + " (" + page.failure + "): everything below is " + human(age) + " old"
      : " — " + human(age) + " ago";
    renderWarning(st);
  } else if (page.failure) {
    state = "failing";
    $("answer-age").textContent = " — " + page.failure;
  }
  banner.className = "banner " + (state === "fresh" ? "fresh" : state === "failing" ? "bad" : "stale");
  banner.dataset.state = state;
  for (const s of document.querySelectorAll("[data-stamp]")) {
    const src = s.dataset.stamp;
    if (src === "events") {
      s.textContent = page.eventsAt ? "· " + page.eventsDirector + ", " + human(now - page.eventsAt) + " ago" : "";
    } else if (st) {
      s.textContent = "· " + st.node.node_id + ", " + human(now - page.statusAt) + " ago";
    }
  }
  for (const t of document.querySelectorAll("[data-server-time]")) {
    const ms = sinceServer(t.dataset.serverTime);
    t.textContent = isNaN(ms) ? "" : human(ms) + " ago";
  }
}

// renderWarning says when the answering director's view may be old or partial.
function renderWarning(st) {
  const n = st.node;
  const w = $("warning");
  let msg = "";
  if (!n.leader_id) {
    msg = n.node_id + " knows no leader: an election is under way, or it is cut off from the others. Its figures are its last view; ask another director.";
  } else if (!n.serving) {
    const lc = isZeroTime(n.last_contact) ? "never" : human(sinceServer(n.last_contact)) + " ago";
    msg = n.node_id + " is not serving: it has not caught up, or lost its leader " + n.leader_id + " (last contact " + lc + "). Its figures may be stale.";
  } else if (n.leader_id !== n.node_id) {
    msg = "";
  }
  w.hidden = msg === "";
  w.textContent = msg;
  w.dataset.warning = msg ? "yes" : "";
}

function renderDirectors(st) {
  const n = st.node;
  const lag = Math.max(0, (n.leader_commit_index || 0) - n.applied_index);
  $("raft-summary").textContent = "term " + n.term + " · leader " + (n.leader_id || "none known") +
    " · " + n.node_id + ": commit " + n.commit_index + ", applied " + n.applied_index + ", lag " + lag +
    (lag === 1 ? " entry" : " entries") + " · state version " + n.state_version;
  const rows = [];
  const voters = [...(n.voters || [])].sort((a, b) => a.id.localeCompare(b.id));
  const self = voters.find((v) => v.id === n.node_id);
  const leading = n.leader_id === n.node_id;
  // Lag in entries: the answering director's own (committed but not applied yet), and
  // on the leader each follower's log behind its own, as of the follower's last answer.
  const lagOf = (v) => {
    if (v.id === n.node_id) return String(lag);
    if (leading && self && self.last_log_index && v.last_log_index) return String(Math.max(0, self.last_log_index - v.last_log_index));
    return "—";
  };
  for (const v of voters) {
    const r = role(st, v.id);
    let contact = v.contact || "unknown";
    let last = "—";
    if (contact === "self") last = "this director";
    else if (!isZeroTime(v.last_contact)) last = el("span", { "data-server-time": v.last_contact });
    else if (contact === "unreachable") last = "not since " + st.node.node_id + " leads";
    if (contact === "unknown") last = "only the leader knows";
    let contactText = contact;
    if (contact === "unreachable" && !isZeroTime(v.failing_since)) {
      contactText = el("span", {}, "unreachable since ", clock(v.failing_since));
    }
    const lagText = lagOf(v);
    rows.push(el("tr", { "data-director": v.id, "data-role": r, "data-contact": contact, "data-lag": lagText },
      el("td", { class: "mono" }, v.id),
      el("td", { class: "role-" + r.split(" ")[0] }, r),
      el("td", { class: "c-" + contact }, contactText),
      el("td", {}, last),
      el("td", { class: "num" }, lagText),
      el("td", { class: "mono" }, v.raft_addr),
      el("td", { class: "mono" }, v.api_addr ? el("a", { href: "http://" + v.api_addr + "/" }, v.api_addr) : "-")));
  }
  if (n.error) rows.push(el("tr", {}, el("td", { colspan: 7 }, "voters unknown: " + n.error)));
  $("director-rows").replaceChildren(...rows);
}

function renderVIPs(st) {
  const n = st.node;
  const held = new Set(((st.dataplane && st.dataplane.vips) || []).map((v) => v.addr));
  const byVIP = new Map();
  for (const s of st.services || []) {
    if (!s.vip) continue;
    if (!byVIP.has(s.vip)) byVIP.set(s.vip, []);
    byVIP.get(s.vip).push(s.name);
  }
  for (const v of held) if (!byVIP.has(v)) byVIP.set(v, []);
  const rows = [];
  for (const [addr, names] of [...byVIP].sort()) {
    let holder = "";
    let text;
    if (held.has(addr)) {
      holder = n.node_id;
      text = n.node_id + " (this director)";
    } else if (!st.dataplane && n.leader_id === n.node_id) {
      text = "nobody: " + n.node_id + " is a witness";
    } else if (n.leader_id && n.leader_id !== n.node_id) {
      holder = n.leader_id;
      text = n.leader_id + " (the leader; not held here)";
    } else {
      text = n.leader_id ? "not held yet by " + n.leader_id : "nobody known: no leader";
    }
    rows.push(el("tr", { "data-vip": addr, "data-holder": holder },
      el("td", { class: "mono" }, addr), el("td", {}, text), el("td", {}, names.join(", "))));
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 3 }, "no VIPs")));
  $("vip-rows").replaceChildren(...rows);
  const dp = st.dataplane;
  $("sync-daemons").textContent = !dp ? n.node_id + " has no data plane (witness)" :
    "sync daemons on " + n.node_id + ": " + (dp.sync_daemons.length ? dp.sync_daemons.map((d) => d.role + " (" + d.interface + ", id " + d.sync_id + ")").join(", ") : "none");
}

function countersOf(st) {
  const byService = new Map();
  for (const sc of (st.dataplane && st.dataplane.services) || []) {
    const rs = new Map();
    for (const c of sc.real_servers || []) rs.set(hostPort(c.addr, c.port), c);
    byService.set(sc.service, { stats: sc.stats, rs });
  }
  return byService;
}

function healthCell(rs) {
  const since = isZeroTime(rs.health_since) ? null : el("span", { class: "reason" }, " since ", clock(rs.health_since), " (", el("span", { "data-server-time": rs.health_since }), ")");
  return el("td", { class: "h-" + rs.health },
    rs.health, rs.health_reason ? el("span", { class: "reason" }, ": " + rs.health_reason) : null, since);
}

function renderServices(st) {
  const filter = $("filter").value.trim().toLowerCase();
  const counters = countersOf(st);
  const all = st.services || [];
  const shown = [];
  for (const s of all) {
    if (shown.length >= MAX_SERVICES) break;
    if (filter && !matches(s, filter)) continue;
    shown.push(s);
  }
  const out = [];
  for (const s of shown) {
    const c = counters.get(s.name);
    const flags = (s.sched_flags || []).join(",");
    const rates = c ? "CPS " + num(c.stats.cps) + " · InPPS " + num(c.stats.in_pps) + " · InBPS " + num(c.stats.in_bps) + " · Conns " + num(c.stats.conns) : "no counters from this director";
    const head = el("h3", {}, serviceLabel(s) + " " + s.scheduler + (flags ? " (" + flags + ")" : "") +
      (s.persistence ? " persistent " + s.persistence : "") + " ", el("span", { class: "name" }, "[" + s.name + "] " + forwardName(s.forwarding) + " · " + rates));
    const rows = [];
    for (const rs of s.real_servers) {
      const key = hostPort(rs.addr, rs.port);
      const k = c && c.rs.get(key);
      const method = forwardName(rs.forwarding || s.forwarding);
      const kernelWeight = k && k.weight !== undefined ? k.weight : null;
      const weight = kernelWeight !== null && kernelWeight !== rs.weight ? rs.weight + " (" + kernelWeight + " in IPVS)" : String(rs.weight);
      rows.push(el("tr", { "data-rs": key, "data-weight": rs.weight, "data-health": rs.health, "data-admin": rs.admin, "data-in-ipvs": k ? "yes" : "no" },
        el("td", { class: "mono" }, "-> " + key),
        el("td", {}, method),
        el("td", { class: "num" }, weight),
        el("td", { class: "num" }, k ? k.active_conns : "-"),
        el("td", { class: "num" }, k ? k.inactive_conns : "-"),
        el("td", { class: "num" }, k ? num(k.stats.conns) : "-"),
        el("td", { class: "num" }, k ? num(k.stats.cps) : "-"),
        el("td", { class: "num" }, k ? num(k.stats.in_bps) : "-"),
        healthCell(rs),
        el("td", { class: rs.admin === "draining" ? "a-draining" : "" }, rs.admin),
        el("td", { class: "reason" }, rs.origin + (k ? "" : " · not in IPVS"))));
    }
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 11 }, "no real servers")));
    out.push(el("div", { class: "svc", "data-service": s.name }, head,
      el("table", {}, el("thead", {}, el("tr", {}, ["RemoteAddress:Port", "Forward", "Weight", "ActiveConn", "InActConn", "Conns", "CPS", "InBPS", "Health", "Admin", "Origin"].map((h, i) => el("th", { class: i >= 2 && i <= 7 ? "num" : "" }, h)))),
        el("tbody", {}, rows))));
  }
  $("service-list").replaceChildren(...out);
  $("services-count").textContent = all.length + " services" + (shown.length < all.length ? ", " + shown.length + " shown" : "");
}

function matches(s, f) {
  if (s.name.toLowerCase().includes(f) || (s.vip || "").includes(f)) return true;
  return s.real_servers.some((rs) => hostPort(rs.addr, rs.port).includes(f));
}

function renderAgents(st) {
  const rows = (st.agents || []).map((a) => {
    const state = a.state === "alive" && a.draining ? "draining" : a.state;
    return el("tr", { "data-agent": a.id, "data-state": state },
      el("td", { class: "mono" }, a.id), el("td", { class: state === "alive" ? "h-up" : state === "draining" ? "a-draining" : "h-down" }, state),
      el("td", { class: "mono" }, a.addr || ""),
      el("td", {}, (a.services || []).map((sp) => sp.service + (sp.port ? ":" + sp.port : "") + "@" + sp.weight).join(" ") + (a.error ? " (unreadable: " + a.error + ")" : "")));
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 4 }, "no agents in " + st.node.node_id + "'s gossip pool")));
  $("agent-rows").replaceChildren(...rows);
}

function renderEvents() {
  const items = page.events.slice().reverse().map((e) =>
    el("li", { "data-kind": e.kind, "data-subject": e.subject, "data-to": e.to || "" },
      el("time", { datetime: e.at, title: e.at }, clock(e.at)),
      el("span", { class: "kind" }, e.kind), " ", e.message,
      el("span", { class: "reason" }, " — " + e.director)));
  if (!items.length) items.push(el("li", {}, "nothing yet"));
  $("event-list").replaceChildren(...items);
  renderAges();
}

// ---- fetching --------------------------------------------------------------------

// A secure director wants a read credential: the browser's client certificate if it has
// one, else a token the operator pastes, kept for this tab only (sessionStorage).
const TOKEN_KEY = "raftlvs-token";

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

// needCredentials shows the token form after a 401 or 403, saying what the director said.
function needCredentials(why) {
  $("login").hidden = false;
  $("login-why").textContent = why;
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("token").value.trim();
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
  $("token").value = "";
  $("login").hidden = true;
  pollStatus(true);
});

// getJSON fetches url, giving up after ms: a director that hangs must show as not
// answering, not as a page that merely stopped moving.
async function getJSON(url, ms) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  try {
    const r = await fetch(url, { cache: "no-store", headers, signal: ctl.signal });
    const body = await r.json().catch(() => null);
    const why = (body && body.error) || r.status + " " + r.statusText;
    if (r.status === 401 || r.status === 403) needCredentials(why);
    if (!r.ok) throw new Error(why);
    return body;
  } catch (e) {
    throw e.name === "AbortError" ? new Error("no answer within " + ms / 1000 + " s") : e;
  } finally {
    clearTimeout(timer);
  }
}

// pollStatus polls every POLL_MS; once (true) is an extra poll, right after a new token.
async function pollStatus(once) {
  try {
    page.status = await getJSON("/v1/status?counters=true", 10000);
    page.statusAt = Date.now();
    page.failure = "";
    render();
  } catch (e) {
    if (!page.failure) page.failingSince = Date.now();
    page.failure = e.message || String(e);
    renderAges();
  } finally {
    if (!once) setTimeout(pollStatus, POLL_MS);
  }
}

async function followEvents() {
  for (;;) {
    try {
      const list = await getJSON("/v1/events?after=" + page.eventsLast + "&wait=" + EVENTS_WAIT + "&limit=" + MAX_EVENTS, 40000);
      if (list.log !== page.eventsLog) { // another run of the director's log: start over
        page.events = [];
        page.eventsLog = list.log;
      }
      page.events = page.events.concat(list.events).slice(-MAX_EVENTS);
      page.eventsLast = list.last;
      page.eventsAt = Date.now();
      page.eventsDirector = list.director;
      renderEvents();
    } catch (e) {
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

$("filter").addEventListener("input", () => page.status && renderServices(page.status));
setInterval(renderAges, 1000);
pollStatus();
followEvents();
