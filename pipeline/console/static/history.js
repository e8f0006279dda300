"use strict";
/* The History tab: past tracks and alerts from the archive (/api/history/*). The operator
   picks a time window and a vessel (MMSI) or a place (a point, picked on the map, and a
   radius) and sees the track, who was there and the alerts raised, drawn on the map.
   Every value from the archive is set with textContent, never as markup. */
const SWHistory = (function () {
  const S = {
    en: {
      tab: "History", from: "From", to: "To", mmsi: "MMSI", show_track: "Show track",
      point: "Point", pick: "Pick on map", radius: "Radius, m", near: "Who was here",
      alerts: "Alerts in window", sites: "Landing sites", clear: "Clear",
      sites_result: "{n} hidden landing sites", nights: "Nights", visits: "Visits (dark)", picking: "Click the map to pick the point.",
      loading: "Querying the archive…", fixes: "{n} fixes of {mmsi}", no_fixes: "No fixes of {mmsi} in the window.",
      near_result: "{v} vessels, {c} camera targets, {a} alerts within {r} m",
      alerts_result: "{n} alerts in the window", vessel: "Vessel", time: "Time", first: "First", last: "Last",
      closest: "Closest, m", kind: "Kind", severity: "Severity", camera: "Camera target",
      dark: "dark", skipped: "Unreadable files skipped: {n}", window_hint: "ISO 8601 with offset, e.g. 2026-03-08T03:00+08:00",
    },
    "zh-CN": {
      tab: "历史", from: "开始", to: "结束", mmsi: "MMSI", show_track: "显示轨迹",
      point: "位置", pick: "在地图上选点", radius: "半径（米）", near: "谁到过这里",
      alerts: "时段内的告警", sites: "隐蔽登陆点", clear: "清除",
      sites_result: "{n} 个隐蔽登陆点", nights: "夜数", visits: "到访（无AIS）", picking: "请在地图上点击选点。",
      loading: "正在查询档案…", fixes: "{mmsi} 的 {n} 个定位点", no_fixes: "{mmsi} 在该时段内没有定位点。",
      near_result: "{r} 米内：{v} 艘船，{c} 个摄像头目标，{a} 条告警",
      alerts_result: "时段内 {n} 条告警", vessel: "船舶", time: "时间", first: "首次", last: "末次",
      closest: "最近距离（米）", kind: "类型", severity: "严重度", camera: "摄像头目标",
      dark: "无AIS", skipped: "已跳过无法读取的文件：{n}", window_hint: "ISO 8601 格式并带时区，例如 2026-03-08T03:00+08:00",
    },
  };

  function init(ctx) {
    const $ = (id) => document.getElementById(id);
    const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; };
    const tr = (k, vars) => {
      const lang = ctx.lang();
      let s = (S[lang] && S[lang][k]) || S.en[k] || k;
      if (vars) for (const v of Object.keys(vars)) s = s.replace("{" + v + "}", String(vars[v]));
      return s;
    };
    const H = (window.__sw.history = { track: null, near: null, alerts: null, sites: null, picking: false, requests: 0 });
    const layer = L.layerGroup().addTo(ctx.map);
    H.drawn = () => layer.getLayers().map((x) => (x instanceof L.Polyline ? "line" : x instanceof L.Circle ? "circle" : "marker"));

    function applyLang() {
      for (const e of document.querySelectorAll("[data-i18n-h]")) e.textContent = tr(e.dataset.i18nH);
      $("h-from").title = $("h-to").title = tr("window_hint");
    }
    document.getElementById("lang-select").addEventListener("change", () => setTimeout(applyLang, 0));

    // the default window: the last 24 h, written in the site's UTC offset
    function siteOffset(d) {
      const parts = new Intl.DateTimeFormat("en", { timeZone: ctx.site.timezone, timeZoneName: "longOffset" }).formatToParts(d);
      const m = /GMT([+-])(\d{2}):?(\d{2})?/.exec((parts.find((p) => p.type === "timeZoneName") || {}).value || "");
      return m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] || 0)) : 0;
    }
    function isoSite(ms) {
      const off = siteOffset(new Date(ms));
      const local = new Date(ms + off * 60000).toISOString().slice(0, 16);
      const sign = off < 0 ? "-" : "+", a = Math.abs(off);
      return `${local}${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
    }
    const now = Date.now();
    $("h-from").value = isoSite(now - 24 * 3600e3);
    $("h-to").value = isoSite(now + 60e3);

    function status(text, isError) { const s = $("h-status"); s.textContent = text; s.className = isError ? "error" : "muted"; }
    async function get(path, params) {
      const q = new URLSearchParams({ from: $("h-from").value.trim(), to: $("h-to").value.trim(), ...params });
      status(tr("loading"));
      H.requests += 1;
      const r = await fetch(`${path}?${q}`, { credentials: "same-origin" });
      let j = {}; try { j = await r.json(); } catch (e) { /* empty */ }
      if (!r.ok) { status((j && j.error) || String(r.status), true); return null; }
      return j;
    }
    function table(head, rows) {
      const t = $("h-results"); t.textContent = "";
      const hr = el("tr"); for (const h of head) hr.appendChild(el("th", h)); t.appendChild(hr);
      for (const r of rows) t.appendChild(r);
    }
    function skippedNote(j) { if (j.skipped_files && j.skipped_files.length) status(`${$("h-status").textContent} — ${tr("skipped", { n: j.skipped_files.length })}`, true); }

    let scrub = null;
    function noScrub() { scrub = null; $("h-scrub").disabled = true; $("h-scrub-time").textContent = ""; }
    $("h-scrub").addEventListener("input", () => { if (scrub) scrub(Number($("h-scrub").value)); });

    async function showTrack(mmsi) {
      const j = await get("/api/history/track", { mmsi: String(mmsi) });
      if (!j) return;
      H.track = j;
      layer.clearLayers(); noScrub();
      if (!j.fixes.length) { status(tr("no_fixes", { mmsi })); return; }
      const ll = j.fixes.map((f) => [f[1], f[0]]);
      const line = L.polyline(ll, { color: "#7c3aed", weight: 3 }).addTo(layer);
      L.circleMarker(ll[0], { radius: 4, color: "#7c3aed" }).bindTooltip(ctx.fmtTime(j.fixes[0][2])).addTo(layer);
      const cursor = L.circleMarker(ll[ll.length - 1], { radius: 6, color: "#7c3aed", fillOpacity: 0.8 }).bindTooltip(ctx.fmtTime(j.fixes[j.fixes.length - 1][2])).addTo(layer);
      ctx.map.fitBounds(line.getBounds(), { maxZoom: 15, padding: [30, 30] });
      // the time slider: the track up to a moment of the window, the vessel where it was then
      const t0 = j.fixes[0][2], t1 = j.fixes[j.fixes.length - 1][2];
      scrub = (v) => {
        const t = t0 + (t1 - t0) * v / 1000;
        let lo = 0, hi = j.fixes.length - 1;
        while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (j.fixes[mid][2] <= t) lo = mid; else hi = mid - 1; }
        line.setLatLngs(ll.slice(0, lo + 1)); cursor.setLatLng(ll[lo]);
        cursor.setTooltipContent(ctx.fmtTime(j.fixes[lo][2]));
        $("h-scrub-time").textContent = ctx.fmtTime(j.fixes[lo][2]);
        H.cursorIndex = lo;
      };
      $("h-scrub").disabled = false; $("h-scrub").value = "1000"; scrub(1000);
      status(tr("fixes", { n: j.n_fixes, mmsi }));
      const rows = [];
      const step = Math.max(1, Math.floor(j.fixes.length / 200));
      for (let i = 0; i < j.fixes.length; i += step) {
        const f = j.fixes[i], row = el("tr");
        row.appendChild(el("td", ctx.fmtTime(f[2]))); row.appendChild(el("td", `${f[0].toFixed(5)}, ${f[1].toFixed(5)}`));
        row.appendChild(el("td", f[3] === null ? "—" : `${f[3].toFixed(1)} kn`));
        rows.push(row);
      }
      table([tr("time"), tr("point"), "SOG"], rows);
      skippedNote(j);
    }

    function point() {
      const p = $("h-point").value.split(",").map((x) => Number(x.trim()));
      return p.length === 2 && p.every((x) => Number.isFinite(x)) ? p : null;
    }
    function alertMarker(a) {
      return L.circleMarker([a.lat, a.lon], { radius: 7, color: "#b3261e", fillColor: a.dark ? "#c026d3" : "#b3261e", fillOpacity: 0.7 })
        .bindTooltip(`${a.kind} ${ctx.fmtTime(a.first_t_ms)}`).addTo(layer);
    }
    async function showNear() {
      const p = point();
      if (!p) { status(tr("pick"), true); return; }
      const radius = Number($("h-radius").value) || 500;
      const j = await get("/api/history/near", { lon: String(p[0]), lat: String(p[1]), radius_m: String(radius) });
      if (!j) return;
      H.near = j;
      layer.clearLayers(); noScrub();
      L.circle([p[1], p[0]], { radius, color: "#0f62fe", fill: false }).addTo(layer);
      const rows = [];
      for (const v of j.vessels) {
        const row = el("tr", null, "h-vessel"); row.dataset.mmsi = v.mmsi;
        row.appendChild(el("td", v.mmsi)); row.appendChild(el("td", ctx.fmtTime(v.first_t_ms)));
        row.appendChild(el("td", ctx.fmtTime(v.last_t_ms))); row.appendChild(el("td", Math.round(v.closest_m)));
        row.addEventListener("click", () => { $("h-mmsi").value = v.mmsi; showTrack(v.mmsi); });
        L.circleMarker([v.closest_lat, v.closest_lon], { radius: 4, color: "#1d4ed8" }).bindTooltip(String(v.mmsi)).addTo(layer);
        rows.push(row);
      }
      for (const c of j.camera_targets) {
        const row = el("tr", null, "h-camera");
        row.appendChild(el("td", `${tr("camera")} ${c.camera_id}#${c.track_id}`)); row.appendChild(el("td", ctx.fmtTime(c.first_t_ms)));
        row.appendChild(el("td", ctx.fmtTime(c.last_t_ms))); row.appendChild(el("td", Math.round(c.closest_m)));
        L.circleMarker([c.closest_lat, c.closest_lon], { radius: 4, color: "#c026d3" }).addTo(layer);
        rows.push(row);
      }
      for (const a of j.alerts) {
        const row = el("tr", null, "h-alert");
        row.appendChild(el("td", `${a.kind}${a.dark ? " (" + tr("dark") + ")" : ""}`)); row.appendChild(el("td", ctx.fmtTime(a.first_t_ms)));
        row.appendChild(el("td", ctx.fmtTime(a.last_t_ms))); row.appendChild(el("td", Math.round(a.closest_m)));
        rows.push(row);
      }
      table([tr("vessel"), tr("first"), tr("last"), tr("closest")], rows);
      status(tr("near_result", { v: j.vessels.length, c: j.camera_targets.length, a: j.alerts.length, r: radius }));
      skippedNote(j);
    }
    async function showAlerts() {
      const j = await get("/api/history/alerts", {});
      if (!j) return;
      H.alerts = j;
      layer.clearLayers(); noScrub();
      const rows = [];
      for (const a of j.alerts) {
        alertMarker(a);
        const row = el("tr", null, "h-alert");
        row.appendChild(el("td", ctx.fmtTime(a.first_t_ms))); row.appendChild(el("td", a.kind));
        row.appendChild(el("td", a.severity)); row.appendChild(el("td", a.mmsi === null ? (a.dark ? tr("dark") : "—") : a.mmsi));
        if (a.mmsi !== null) row.addEventListener("click", () => { $("h-mmsi").value = a.mmsi; showTrack(a.mmsi); });
        rows.push(row);
      }
      table([tr("first"), tr("kind"), tr("severity"), tr("vessel")], rows);
      status(tr("alerts_result", { n: j.alerts.length }));
    }

    async function showSites() {
      const j = await get("/api/history/landing-sites", {});
      if (!j) return;
      H.sites = j;
      layer.clearLayers(); noScrub();
      const rows = [];
      for (const f of j.landing_sites) {
        L.circle([f.lat, f.lon], { radius: Math.max(f.radius_m, 50), color: "#c2410c", weight: 2, fillOpacity: 0.2 })
          .bindTooltip(`${f.nights.length} ${tr("nights")}`).addTo(layer);
        const row = el("tr", null, "h-site");
        row.appendChild(el("td", `${f.lon.toFixed(5)}, ${f.lat.toFixed(5)}`)); row.appendChild(el("td", f.nights.join(" ")));
        row.appendChild(el("td", `${f.visits} (${f.dark_visits})`)); row.appendChild(el("td", f.mmsis.join(" ") || "—"));
        row.addEventListener("click", () => { $("h-point").value = `${f.lon},${f.lat}`; $("h-radius").value = String(Math.max(Math.round(f.radius_m), 100)); ctx.map.setView([f.lat, f.lon], 15); });
        rows.push(row);
      }
      table([tr("point"), tr("nights"), tr("visits"), tr("vessel")], rows);
      status(tr("sites_result", { n: j.landing_sites.length }));
    }

    $("h-sites").addEventListener("click", showSites);
    $("h-track").addEventListener("click", () => { const m = $("h-mmsi").value.trim(); if (m) showTrack(m); });
    $("h-near").addEventListener("click", showNear);
    $("h-alerts").addEventListener("click", showAlerts);
    $("h-clear").addEventListener("click", () => { layer.clearLayers(); noScrub(); $("h-results").textContent = ""; status(""); });
    $("h-pick").addEventListener("click", () => { H.picking = true; status(tr("picking")); });
    ctx.map.on("click", (ev) => {
      if (!H.picking) return;
      H.picking = false;
      $("h-point").value = `${ev.latlng.lng.toFixed(5)},${ev.latlng.lat.toFixed(5)}`;
      status("");
    });
    noScrub();
    applyLang();
  }
  return { init };
})();
