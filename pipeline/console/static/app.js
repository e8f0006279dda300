"use strict";
/* The console page. Every value that comes from the air (ship names, destinations, call
   signs) or from an operator (comments) is set with textContent, never as markup. */
(async function () {
  const SW = (window.__sw = { rendered: {}, received: {}, events: 0 });
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; };

  const meResp = await fetch("/api/me", { credentials: "same-origin" });
  if (meResp.status === 401) { window.location.assign("/login"); return; }
  const me = await meResp.json();
  const site = await (await fetch("/api/site")).json();
  let lang = SW_I18N.pick(me.lang);
  const t = (k, v) => SW_I18N.t(lang, k, v);

  const state = { alerts: new Map(), vessels: new Map(), cameras: new Map(), silences: [], coverage: null, selected: null, connected: false, consoleUp: false };
  const fmt = () => new Intl.DateTimeFormat(lang, { timeZone: site.timezone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  let timeFmt = fmt();
  const fmtTime = (ms) => (ms === null || ms === undefined ? "—" : timeFmt.format(new Date(ms)));
  const isoMs = (s) => Date.parse(s);

  // ------------------------------------------------------------------ header
  $("site-name").textContent = site.name;
  $("user-name").textContent = me.user;
  $("user-role").textContent = me.role;
  for (const l of SW_I18N.langs) { const o = el("option", l === "en" ? "English" : "简体中文"); o.value = l; $("lang-select").appendChild(o); }
  $("lang-select").value = lang;
  $("lang-select").addEventListener("change", async () => {
    lang = $("lang-select").value; timeFmt = fmt(); applyLang();
    await post("/api/me/lang", { lang });
  });
  $("logout").addEventListener("click", async () => { await post("/api/logout", {}); window.location.assign("/login"); });
  function tzLabel() {
    const parts = new Intl.DateTimeFormat("en", { timeZone: site.timezone, timeZoneName: "shortOffset" }).formatToParts(new Date());
    const off = (parts.find((p) => p.type === "timeZoneName") || {}).value || "";
    $("tz-label").textContent = `${t("zone_label")} ${site.timezone} (${off})`;
  }
  function brokerBadge() {
    const b = $("broker-state");
    const s = !state.consoleUp ? "console_down" : state.connected ? "connected" : "disconnected";
    b.dataset.state = s; b.textContent = t(s);
  }

  async function post(url, body) {
    const r = await fetch(url, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "X-CSRF-Token": me.csrf }, body: JSON.stringify(body) });
    let j = {}; try { j = await r.json(); } catch (e) { /* empty */ }
    if (!r.ok) { window.alert((j && j.error) || r.status); }
    return { ok: r.ok, status: r.status, body: j };
  }

  // ------------------------------------------------------------------ map
  const M = SWMap.create($("map"), site);
  SW.map = M;
  M.map.on("click", (ev) => {
    const hit = M.fast.pick(ev.containerPoint);
    if (hit && hit.alert) selectAlert(hit.alert);
    else if (hit && hit.vessel) showVessel(hit.vessel, ev.latlng);
  });
  async function showVessel(mmsi, latlng) {
    const r = await fetch(`/api/vessels/${mmsi}`);
    if (!r.ok) return;
    const v = await r.json();
    const box = el("div", null, "vessel-pop"); box.id = "vessel-popup";
    box.appendChild(el("strong", v.name || t("no_name"), "vessel-name"));
    const dl = el("dl");
    const row = (k, val) => { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", val)); };
    row(t("mmsi"), v.mmsi); row("Call sign", v.call_sign || "—"); row("IMO", v.imo || "—");
    row(t("course"), v.cog_deg === null ? "—" : `${v.cog_deg.toFixed(0)}°`); row(t("speed"), v.sog_kn === null ? "—" : `${v.sog_kn.toFixed(1)} kn`);
    row("Flags", (v.flags || []).join(", ") || "—");
    box.appendChild(dl);
    box.appendChild(el("div", t("last_fixes"), "muted"));
    const ol = el("ol");
    for (const f of v.fixes.slice(-5).reverse()) ol.appendChild(el("li", `${fmtTime(f[2])}  ${f[1].toFixed(5)}, ${f[0].toFixed(5)}`));
    box.appendChild(ol);
    L.popup({ maxWidth: 320 }).setLatLng(latlng).setContent(box).openOn(M.map);
  }

  // ------------------------------------------------------------------ alerts
  const KINDS = ["unusual_landing", "dark_approach", "dark_vessel", "rendezvous", "loitering", "identity_anomaly", "impossible_speed", "ais_not_seen", "landing_site", "cloned_mmsi", "outside_home_harbour"];
  function fillSelect(id, opts) { const s = $(id); const v = s.value; s.textContent = ""; for (const [val, label] of opts) { const o = el("option", label); o.value = val; s.appendChild(o); } if (v) s.value = v; }
  function fillFilters() {
    fillSelect("f-kind", [["", t("all")], ...KINDS.map((k) => [k, t("kind_" + k)])]);
    fillSelect("f-status", [["queue", t("in_queue")], ["", t("all")], ...["new", "acknowledged", "in_progress", "resolved", "dismissed"].map((s) => [s, t("state_" + s)])]);
    const areas = new Set(); for (const a of state.alerts.values()) areas.add(areaOf(a));
    fillSelect("f-area", [["", t("all")], ...[...areas].sort().map((a) => [a, a])]);
    fillSelect("f-time", [["", t("any_time")], ...[1, 6, 24].map((h) => [String(h), t("last_h", { n: h })])]);
    fillSelect("f-sort", [["severity", t("by_severity")], ["time", t("by_time")]]);
  }
  const areaOf = (a) => (a.zone && a.zone.name) || a.site;
  function silenced(a) {
    const now = Date.now();
    for (const s of state.silences) {
      if (s.until_t_ms <= now) continue;
      if (s.mmsi !== null && s.mmsi === a.vessel.mmsi) return true;
      if (s.lonlat) {
        const dx = (a.position.lon - s.lonlat[0]) * 111320 * Math.cos(a.position.lat * Math.PI / 180), dy = (a.position.lat - s.lonlat[1]) * 110540;
        if (Math.hypot(dx, dy) <= (s.radius_m || 500)) return true;
      }
    }
    return false;
  }
  function escalated(a) {
    return a.triage.escalated || (a.triage.state === "new" && a.severity >= me.escalate_severity && Date.now() - a.first_seen_t_ms >= me.escalate_after_s * 1000);
  }
  function inQueue(a) {
    const s = a.triage.state;
    if (s === "resolved" || s === "dismissed") return false;
    return !(a.status === "closed" && s === "acknowledged");
  }
  function groupKey(a) {
    const who = a.vessel.mmsi !== null ? `m${a.vessel.mmsi}` : `p${Math.round(a.position.lon * 200)}:${Math.round(a.position.lat * 200)}`;
    return `${a.kind}|${who}`;
  }
  function filtered() {
    const k = $("f-kind").value, st = $("f-status").value, ar = $("f-area").value, h = $("f-time").value;
    const since = h ? Date.now() - Number(h) * 3600e3 : null;
    let list = [...state.alerts.values()].filter((a) =>
      (!k || a.kind === k) && (st === "" ? true : st === "queue" ? inQueue(a) : a.triage.state === st) &&
      (!ar || areaOf(a) === ar) && (since === null || isoMs(a.event_time) >= since));
    const bySev = $("f-sort").value !== "time";
    list.sort((x, y) => (silenced(x) - silenced(y)) || (bySev ? y.severity - x.severity : 0) || (isoMs(y.event_time) - isoMs(x.event_time)));
    if ($("f-group").checked) {
      const groups = new Map();
      for (const a of list) { const g = groups.get(groupKey(a)); if (g) g.n++; else groups.set(groupKey(a), { a, n: 1 }); }
      return [...groups.values()];
    }
    return list.map((a) => ({ a, n: 1 }));
  }
  const sevClass = (s) => (s >= 70 ? "hi" : s >= 40 ? "mid" : "lo");
  function renderQueue() {
    const ol = $("queue"); ol.textContent = "";
    const rows = filtered();
    $("queue-count").textContent = t("count", { n: rows.length });
    const now = Date.now();
    for (const { a, n } of rows) {
      const li = el("li"); li.dataset.alertId = a.alert_id;
      if (a.alert_id === state.selected) li.classList.add("selected");
      if (silenced(a)) li.classList.add("silenced");
      if (escalated(a)) li.classList.add("escalated");
      li.appendChild(el("span", a.severity, "sev " + sevClass(a.severity)));
      const mid = el("span");
      mid.appendChild(el("strong", t("kind_" + a.kind)));
      mid.appendChild(document.createTextNode(" "));
      mid.appendChild(el("span", a.vessel.dark ? t("dark") : (a.vessel.name || t("no_name")), "q-vessel"));
      if (n > 1) mid.appendChild(el("span", " " + t("repeats", { n }), "muted"));
      mid.appendChild(el("div", `${fmtTime(isoMs(a.event_time))} · ${areaOf(a)}`, "muted"));
      li.appendChild(mid);
      const right = el("span");
      right.appendChild(el("div", t("state_" + a.triage.state), "state q-state"));
      right.appendChild(el("div", (escalated(a) ? t("escalated") + " · " : "") + t("det_" + a.status), "muted"));
      li.appendChild(right);
      li.addEventListener("click", () => selectAlert(a.alert_id));
      ol.appendChild(li);
      if (SW.rendered[a.alert_id] === undefined) SW.rendered[a.alert_id] = now;
    }
    // the map shows the open alerts (all of them, filters aside)
    M.fast.alerts = [...state.alerts.values()].filter(inQueue).map((a) => ({ id: a.alert_id, lon: a.position.lon, lat: a.position.lat, severity: a.severity, dark: a.vessel.dark, unacked: a.triage.state === "new", silenced: silenced(a), selected: a.alert_id === state.selected }));
    M.fast.schedule();
  }
  let queueTimer = null;
  function renderQueueSoon() { if (queueTimer) return; queueTimer = setTimeout(() => { queueTimer = null; renderQueue(); }, 30); }

  // ------------------------------------------------------------------ detail
  let detailData = null;
  async function selectAlert(id) {
    state.selected = id; showTab("detail");
    const r = await fetch(`/api/alerts/${encodeURIComponent(id)}`);
    if (!r.ok) return;
    detailData = await r.json();
    renderDetail(); renderQueueSoon();
    const p = detailData.position; M.map.panTo([p.lat, p.lon]);
  }
  function dlRows(dl, rows) { dl.textContent = ""; for (const [k, v] of rows) { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); } }
  const fmtM = (m) => (m === null || m === undefined ? "—" : m >= 1000 ? `${(m / 1000).toFixed(2)} km` : `${Math.round(m)} m`);
  function renderDetail() {
    const a = detailData; if (!a) return;
    const live = state.alerts.get(a.alert_id); if (live) a.triage = live.triage;
    $("detail-empty").hidden = true; $("detail").hidden = false;
    $("d-kind").textContent = t("kind_" + a.kind);
    $("d-severity").textContent = a.severity; $("d-severity").className = "sev " + sevClass(a.severity);
    $("d-triage").textContent = t("state_" + a.triage.state) + (a.triage.assignee ? ` → ${a.triage.assignee}` : "") + (escalated(a) ? ` · ${t("escalated")}` : "");
    $("d-triage").dataset.state = a.triage.state;
    $("d-detector").textContent = t("det_" + a.status);
    $("d-time").textContent = fmtTime(isoMs(a.event_time));
    const v = a.vessel;
    const tr = v.mmsi !== null ? state.vessels.get(v.mmsi) : null;
    const card = [[t("mmsi"), v.mmsi === null ? "—" : v.mmsi], [t("name"), v.dark ? t("dark") : (v.name || t("no_name"))], ["Track", v.track_id], ["Alert", a.alert_id]];
    const reg = v.registry; // the vessel's registry record, when it has one
    if (reg) card.push([t("reg_no"), reg.registration_no], [t("reg_name"), reg.name || "—"], [t("reg_hull"), reg.hull_number || "—"], [t("reg_port"), [reg.port_of_registry, reg.vessel_type, reg.length_m ? `${reg.length_m} m` : null].filter(Boolean).join(" · ") || "—"], [t("reg_owner"), reg.owner || "—"], [t("reg_home"), (reg.home_harbours || []).join(", ") || "—"], [t("reg_until"), reg.valid_until || "—"]);
    for (const w of v.watchlist || []) card.push([t("watchlist"), `${w.reason} (${w.added_by}${w.until ? ", " + w.until : ""})`]);
    dlRows($("d-vessel"), card);
    if (tr) $("d-vessel").dataset.live = "1";
    const z = a.zone;
    dlRows($("d-zone"), [[t("zone"), z.name ? `${z.name} (${z.kind})` : "—"], [t("zone_distance"), fmtM(z.distance_m)], [t("shore_distance"), fmtM(z.coast_distance_m)]]);
    const tb = $("d-factors"); tb.textContent = "";
    for (const f of a.factors) { const row = el("tr"); row.appendChild(el("td", `+${f.weight}`)); row.appendChild(el("td", f.name)); row.appendChild(el("td", f.explanation)); tb.appendChild(row); }
    const ev = $("d-evidence"); ev.textContent = "";
    if (!a.evidence_urls.length) ev.appendChild(el("p", t("no_evidence"), "muted"));
    for (const u of a.evidence_urls) { const img = document.createElement("img"); img.src = u; img.alt = "evidence"; img.className = "evidence"; img.loading = "lazy"; ev.appendChild(img); }
    const hist = $("d-history"); hist.textContent = "";
    for (const act of a.actions || []) hist.appendChild(el("li", `${fmtTime(act.t_ms)} ${act.user}: ${t(act.action)}${act.reason ? " (" + t("reason_" + act.reason) + ")" : ""}${act.assignee ? " → " + act.assignee : ""}${act.text ? " — " + act.text : ""}`));
    renderActions(a);
    M.fast.trail = a.evidence.trail; M.fast.cursor = null; M.fast.schedule();
    $("d-scrub").value = 1000; $("d-play-time").textContent = "";
  }
  function button(label, onClick, id) { const b = el("button", label); if (id) b.id = id; b.addEventListener("click", onClick); return b; }
  function renderActions(a) {
    const box = $("d-actions"); box.textContent = "";
    if (me.role === "viewer") return;
    const s = a.triage.state, id = a.alert_id;
    const act = async (action, extra) => { const r = await post(`/api/alerts/${encodeURIComponent(id)}/actions`, Object.assign({ action }, extra || {})); if (r.ok) setTimeout(() => selectAlert(id), 300); };
    if (s === "new") box.appendChild(button(t("acknowledge"), () => act("acknowledge"), "act-acknowledge"));
    if (s === "new" || s === "acknowledged") box.appendChild(button(t("start"), () => act("start"), "act-start"));
    if (["new", "acknowledged", "in_progress"].includes(s)) {
      box.appendChild(button(t("resolve"), () => act("resolve"), "act-resolve"));
      box.appendChild(button(t("escalate"), () => act("escalate"), "act-escalate"));
      const fa = el("fieldset"); const sel = el("select"); sel.id = "assign-user";
      for (const u of me.users) { const o = el("option", u); o.value = u; sel.appendChild(o); }
      sel.value = me.user; fa.appendChild(sel); fa.appendChild(button(t("assign"), () => act("assign", { assignee: sel.value }), "act-assign")); box.appendChild(fa);
      const fd = el("fieldset"); const rs = el("select"); rs.id = "dismiss-reason";
      for (const r of me.dismiss_reasons) { const o = el("option", t("reason_" + r)); o.value = r; rs.appendChild(o); }
      const note = el("input"); note.placeholder = t("note"); note.id = "dismiss-note";
      fd.appendChild(rs); fd.appendChild(note); fd.appendChild(button(t("dismiss"), () => act("dismiss", { reason: rs.value, text: note.value }), "act-dismiss")); box.appendChild(fd);
    }
    if ((s === "resolved" || s === "dismissed") && me.role === "supervisor") box.appendChild(button(t("reopen"), () => act("reopen"), "act-reopen"));
    const fc = el("fieldset"); const ct = el("input"); ct.placeholder = t("comment"); ct.id = "comment-text";
    fc.appendChild(ct); fc.appendChild(button(t("comment"), () => ct.value.trim() && act("comment", { text: ct.value }), "act-comment")); box.appendChild(fc);
    const fs = el("fieldset"); const mins = el("input"); mins.type = "number"; mins.value = "60"; mins.min = "1"; mins.max = "1440"; mins.style.width = "60px";
    fs.appendChild(mins); fs.appendChild(el("span", t("minutes")));
    if (a.vessel.mmsi !== null) fs.appendChild(button(t("silence_vessel"), () => post("/api/silences", { alert_id: id, mmsi: a.vessel.mmsi, minutes: Number(mins.value) })));
    fs.appendChild(button(t("silence_place"), () => post("/api/silences", { alert_id: id, lon: a.position.lon, lat: a.position.lat, radius_m: 500, minutes: Number(mins.value) })));
    box.appendChild(fs);
  }
  // playback of the episode: the trail's points replayed over 8 s, or scrubbed by hand
  function cursorAt(frac) {
    const tr = detailData && detailData.evidence.trail; if (!tr || !tr.length) return;
    const t0 = tr[0][2], t1 = tr[tr.length - 1][2], tt = t0 + (t1 - t0) * frac;
    let i = 0; while (i < tr.length - 1 && tr[i + 1][2] <= tt) i++;
    M.fast.cursor = tr[i]; M.fast.trail = tr.slice(0, i + 1); M.fast.schedule();
    $("d-play-time").textContent = fmtTime(tr[i][2]);
  }
  $("d-scrub").addEventListener("input", () => cursorAt(Number($("d-scrub").value) / 1000));
  $("d-play").addEventListener("click", () => {
    const t0 = performance.now();
    const step = () => { const f = Math.min(1, (performance.now() - t0) / 8000); $("d-scrub").value = String(Math.round(f * 1000)); cursorAt(f); if (f < 1) requestAnimationFrame(step); };
    requestAnimationFrame(step);
  });

  // ------------------------------------------------------------------ cameras
  function renderCameras() {
    const tb = $("cam-table"); tb.textContent = "";
    const head = el("tr"); for (const h of ["ID", t("status"), t("reason"), t("fps"), t("last_frame")]) head.appendChild(el("th", h)); tb.appendChild(head);
    for (const c of site.cameras) {
      const st = state.cameras.get(c.id); const s = st ? st.status : "unknown";
      const row = el("tr"); row.dataset.camera = c.id;
      row.appendChild(el("td", c.name ? `${c.id} — ${c.name}` : c.id));
      row.appendChild(el("td", t(s), "cam-" + s));
      row.appendChild(el("td", (st && st.reason) || ""));
      row.appendChild(el("td", st && st.fps !== null && st.fps !== undefined ? st.fps.toFixed(1) : "—"));
      row.appendChild(el("td", st ? fmtTime(st.last_frame_t_ms) : "—"));
      tb.appendChild(row);
      M.setCameraHealth(c.id, s);
    }
    const cv = state.coverage;
    if (cv) {
      $("cam-share").textContent = cv.share_online === null ? "—" : `${(cv.share_online * 100).toFixed(1)}% (${cv.online}/${cv.cameras})`;
      $("cam-uncovered").textContent = `${cv.uncovered_km} / ${cv.coast_km} km ${t("coast")}`;
      M.setUncovered(cv.uncovered);
    }
  }
  let covTimer = null;
  function refreshCoverage() { if (covTimer) return; covTimer = setTimeout(async () => { covTimer = null; const r = await fetch("/api/coverage"); if (r.ok) { state.coverage = await r.json(); renderCameras(); } }, 500); }

  // ------------------------------------------------------------------ audit
  async function renderAudit() {
    const q = new URLSearchParams();
    if ($("a-user").value) q.set("user", $("a-user").value);
    if ($("a-alert").value) q.set("alert", $("a-alert").value);
    if ($("a-hours").value) q.set("since_t_ms", String(Date.now() - Number($("a-hours").value) * 3600e3));
    const r = await fetch("/api/audit?" + q.toString()); if (!r.ok) return;
    const rows = (await r.json()).actions;
    const tb = $("audit-table"); tb.textContent = "";
    const head = el("tr"); for (const h of [t("when"), t("who"), t("what"), t("audit_alert"), t("note")]) head.appendChild(el("th", h)); tb.appendChild(head);
    for (const a of rows) {
      const row = el("tr");
      row.appendChild(el("td", fmtTime(a.t_ms))); row.appendChild(el("td", `${a.user} (${a.role})`));
      row.appendChild(el("td", t(a.action) + (a.assignee ? ` → ${a.assignee}` : "") + (a.reason ? ` (${t("reason_" + a.reason)})` : "")));
      row.appendChild(el("td", a.alert_id)); row.appendChild(el("td", a.text || ""));
      tb.appendChild(row);
    }
  }
  $("a-go").addEventListener("click", renderAudit);

  // ------------------------------------------------------------------ tabs, language
  function showTab(name) {
    for (const b of document.querySelectorAll("nav .tab")) b.classList.toggle("active", b.dataset.tab === name);
    for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== "tab-" + name;
    if (name === "audit") renderAudit();
  }
  for (const b of document.querySelectorAll("nav .tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
  for (const id of ["f-kind", "f-status", "f-area", "f-time", "f-sort", "f-group"]) $(id).addEventListener("change", renderQueue);
  function applyLang() { SW_I18N.apply(document, lang); tzLabel(); brokerBadge(); fillFilters(); renderQueue(); renderCameras(); if (detailData) renderDetail(); }

  // ------------------------------------------------------------------ notification
  let audio = null;
  function notify(a) {
    if (a.severity < me.notify_severity || silenced(a)) return;
    const b = $("notify-banner");
    b.textContent = `${t("new_alert")}: ${t("kind_" + a.kind)} ${a.severity}`;
    b.hidden = false; b.style.animation = "none"; void b.offsetWidth; b.style.animation = "";
    clearTimeout(notify.timer); notify.timer = setTimeout(() => { b.hidden = true; }, 8000);
    SW.notified = (SW.notified || 0) + 1;
    if (!$("sound-on").checked) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = a.severity >= 70 ? 880 : 660; g.gain.value = 0.15;
      o.connect(g); g.connect(audio.destination); o.start(); o.stop(audio.currentTime + 0.35);
      SW.beeps = (SW.beeps || 0) + 1;
    } catch (e) { /* no audio device */ }
  }

  // ------------------------------------------------------------------ live events
  function onAlert(a) {
    const isNew = !state.alerts.has(a.alert_id);
    state.alerts.set(a.alert_id, a);
    SW.received[a.alert_id] = Date.now();
    if (isNew && a.status !== "closed") notify(a);
    if (isNew) fillFilters();
    renderQueueSoon();
    if (detailData && detailData.alert_id === a.alert_id) { Object.assign(detailData, a); renderDetail(); }
  }
  function connect() {
    const es = new EventSource("/api/events");
    SW.es = es;
    es.addEventListener("snapshot", (m) => {
      const s = JSON.parse(m.data);
      state.consoleUp = true; state.connected = s.connected;
      state.alerts = new Map(s.alerts.map((a) => [a.alert_id, a]));
      state.vessels = new Map(s.vessels.map((v) => [v[0], v]));
      state.cameras = new Map(s.cameras.map((c) => [c.camera_id, c]));
      state.silences = s.silences; state.coverage = s.coverage;
      M.fast.vessels = state.vessels;
      brokerBadge(); fillFilters(); renderQueue(); renderCameras(); M.fast.schedule();
    });
    es.addEventListener("alert", (m) => { SW.events++; onAlert(JSON.parse(m.data)); });
    es.addEventListener("vessels", (m) => {
      const d = JSON.parse(m.data);
      for (const v of d.update) state.vessels.set(v[0], v);
      for (const g of d.gone) state.vessels.delete(g);
      M.fast.schedule();
    });
    es.addEventListener("camera", (m) => { const c = JSON.parse(m.data); state.cameras.set(c.camera_id, c); renderCameras(); refreshCoverage(); });
    es.addEventListener("broker", (m) => { state.connected = JSON.parse(m.data).connected; brokerBadge(); });
    es.addEventListener("action", (m) => {
      const d = JSON.parse(m.data);
      if (d.action.action === "silence") {
        const a = d.action; state.silences.push({ user: a.user, until_t_ms: a.silence_until_t_ms, mmsi: a.silence_mmsi, lonlat: a.silence_lonlat, radius_m: a.silence_radius_m });
      } else {
        const a = state.alerts.get(d.action.alert_id);
        if (a && d.triage) a.triage = d.triage;
      }
      renderQueueSoon();
      if (detailData && detailData.alert_id === d.action.alert_id) selectAlert(d.action.alert_id);
    });
    es.onerror = () => { state.consoleUp = es.readyState === EventSource.OPEN; brokerBadge(); };
    es.onopen = () => { state.consoleUp = true; brokerBadge(); };
  }
  applyLang();
  showTab("queue");
  connect();
  setInterval(renderQueueSoon, 15000); // escalation and silences expire with time
  SWHistory.init({ map: M.map, site, lang: () => lang, fmtTime });
  SW.ready = true;
})();
