"use strict";
/* The map: the site drawn from its own geometry (no tiles), and one canvas layer that
   draws every vessel, tail, dark target and alert marker in a single pass. */
const SWMap = (function () {
  const HEALTH = { online: "#1f7a3f", degraded: "#d97706", offline: "#b3261e", unknown: "#6b7a8c" };

  const FastLayer = L.Layer.extend({
    initialize(opts) { this.vessels = new Map(); this.alerts = []; this.trail = null; this.cursor = null; this.opts = opts; this.drawTimes = []; },
    onAdd(map) {
      this._map = map;
      this._canvas = L.DomUtil.create("canvas", "sw-fast");
      this._canvas.style.pointerEvents = "none";
      map.getPanes().overlayPane.appendChild(this._canvas);
      map.on("moveend zoomend resize", this._reset, this);
      this._reset();
    },
    onRemove(map) { L.DomUtil.remove(this._canvas); map.off("moveend zoomend resize", this._reset, this); },
    _reset() {
      const size = this._map.getSize();
      const ratio = window.devicePixelRatio || 1;
      this._canvas.width = size.x * ratio; this._canvas.height = size.y * ratio;
      this._canvas.style.width = size.x + "px"; this._canvas.style.height = size.y + "px";
      L.DomUtil.setPosition(this._canvas, this._map.containerPointToLayerPoint([0, 0]));
      this.draw();
    },
    schedule() {
      if (this._pending) return;
      this._pending = true;
      requestAnimationFrame(() => { this._pending = false; this.draw(); });
    },
    draw() {
      if (!this._map) return;
      const t0 = performance.now();
      const map = this._map, ctx = this._canvas.getContext("2d");
      const ratio = window.devicePixelRatio || 1;
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, this._canvas.width, this._canvas.height);
      const size = map.getSize();
      // Web Mercator by hand: one projection per point without allocating LatLng objects
      const z = map.getZoom(), scale = 256 * Math.pow(2, z);
      const origin = map.getPixelOrigin(), pane = map._getMapPanePos();
      const ox = -origin.x + pane.x, oy = -origin.y + pane.y;
      const px = (lon) => (lon + 180) / 360 * scale + ox;
      const py = (lat) => {
        const s = Math.sin(lat * Math.PI / 180);
        return (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * scale + oy;
      };
      this._px = px; this._py = py;
      // tails, then vessels as triangles along heading (or course); no-name vessels orange.
      // Paths are flushed every CHUNK shapes: one huge path is slow to stroke and fill.
      const CHUNK = 64;
      ctx.lineWidth = 1; ctx.strokeStyle = "rgba(20,60,120,0.45)";
      let n = 0;
      ctx.beginPath();
      for (const v of this.vessels.values()) {
        const tail = v[7];
        if (!tail || tail.length < 2) continue;
        ctx.moveTo(px(tail[0][0]), py(tail[0][1]));
        for (let i = 1; i < tail.length; i++) ctx.lineTo(px(tail[i][0]), py(tail[i][1]));
        if (++n % CHUNK === 0) { ctx.stroke(); ctx.beginPath(); }
      }
      ctx.stroke();
      const groups = [["#1d4ed8", false], ["#ea580c", true]];
      for (const [colour, noname] of groups) {
        ctx.fillStyle = colour; ctx.beginPath(); n = 0;
        for (const v of this.vessels.values()) {
          if (!!v[6] !== noname) continue;
          const x = px(v[1]), y = py(v[2]);
          if (x < -10 || y < -10 || x > size.x + 10 || y > size.y + 10) continue;
          const hd = v[3];
          if (hd === null || hd === undefined) { ctx.rect(x - 2.5, y - 2.5, 5, 5); }
          else {
            const a = hd * Math.PI / 180, s = Math.sin(a), c = Math.cos(a);
            ctx.moveTo(x + 7 * s, y - 7 * c);
            ctx.lineTo(x - 4 * s + 3.5 * c, y + 4 * c + 3.5 * s);
            ctx.lineTo(x - 4 * s - 3.5 * c, y + 4 * c - 3.5 * s);
            ctx.closePath();
          }
          if (++n % CHUNK === 0) { ctx.fill(); ctx.beginPath(); }
        }
        ctx.fill();
      }
      // selected alert's trail
      if (this.trail && this.trail.length > 1) {
        ctx.strokeStyle = "#b3261e"; ctx.lineWidth = 2.5; ctx.setLineDash([6, 3]); ctx.beginPath();
        ctx.moveTo(px(this.trail[0][0]), py(this.trail[0][1]));
        for (const p of this.trail) ctx.lineTo(px(p[0]), py(p[1]));
        ctx.stroke(); ctx.setLineDash([]);
      }
      if (this.cursor) {
        ctx.fillStyle = "#b3261e"; ctx.beginPath(); ctx.arc(px(this.cursor[0]), py(this.cursor[1]), 6, 0, 2 * Math.PI); ctx.fill();
      }
      // alerts: dark targets as magenta diamonds, others as circles by severity; bucketed
      // by style so that each bucket is filled and stroked in a few calls
      const buckets = new Map();
      for (const a of this.alerts) {
        const x = px(a.lon), y = py(a.lat);
        if (x < -20 || y < -20 || x > size.x + 20 || y > size.y + 20) continue;
        const fill = a.dark ? "#c026d3" : a.severity >= 70 ? "#b3261e" : a.severity >= 40 ? "#d97706" : "#2563eb";
        const key = `${fill}|${a.unacked ? "#111" : "#fff"}|${a.silenced ? 0.35 : 0.9}|${a.selected ? 3 : 1.5}`;
        let b = buckets.get(key);
        if (!b) buckets.set(key, (b = []));
        b.push(x, y, a.dark ? 1 : 0);
      }
      for (const [key, pts] of buckets) {
        const [fill, stroke, alpha, width] = key.split("|");
        ctx.fillStyle = fill; ctx.strokeStyle = stroke; ctx.globalAlpha = Number(alpha); ctx.lineWidth = Number(width);
        ctx.beginPath();
        for (let i = 0; i < pts.length; i += 3) {
          const x = pts[i], y = pts[i + 1];
          if (pts[i + 2]) { ctx.moveTo(x, y - 9); ctx.lineTo(x + 9, y); ctx.lineTo(x, y + 9); ctx.lineTo(x - 9, y); ctx.closePath(); }
          else { ctx.moveTo(x + 7, y); ctx.arc(x, y, 7, 0, 2 * Math.PI); }
          if ((i / 3 + 1) % CHUNK === 0) { ctx.fill(); ctx.stroke(); ctx.beginPath(); }
        }
        ctx.fill(); ctx.stroke();
      }
      ctx.globalAlpha = 1;
      const dt = performance.now() - t0;
      this.drawTimes.push(dt);
      if (this.drawTimes.length > 2000) this.drawTimes.splice(0, 1000);
    },
    /* the alert or vessel nearest a container point, within 10 px */
    pick(pt) {
      if (!this._px) return null;
      let best = null, bd = 100;
      for (const a of this.alerts) {
        const dx = this._px(a.lon) - pt.x, dy = this._py(a.lat) - pt.y, d = dx * dx + dy * dy;
        if (d < bd) { bd = d; best = { alert: a.id }; }
      }
      if (best) return best;
      for (const v of this.vessels.values()) {
        const dx = this._px(v[1]) - pt.x, dy = this._py(v[2]) - pt.y, d = dx * dx + dy * dy;
        if (d < bd) { bd = d; best = { vessel: v[0] }; }
      }
      return best;
    },
  });

  function destination(lon, lat, bearingDeg, distM) {
    const R = 6371008.8, b = bearingDeg * Math.PI / 180, f1 = lat * Math.PI / 180, l1 = lon * Math.PI / 180, d = distM / R;
    const f2 = Math.asin(Math.sin(f1) * Math.cos(d) + Math.cos(f1) * Math.sin(d) * Math.cos(b));
    const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(f1), Math.cos(d) - Math.sin(f1) * Math.sin(f2));
    return [l2 * 180 / Math.PI, f2 * 180 / Math.PI];
  }

  function create(el, site) {
    const map = L.map(el, { preferCanvas: true, zoomAnimation: false, attributionControl: false, zoomSnap: 0.25 });
    const b = site.bbox;
    map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
    const renderer = L.canvas({ padding: 0.2 });
    L.geoJSON(site.land, { renderer, interactive: false, style: { color: "#a39066", weight: 0, fillColor: "#efe6cf", fillOpacity: 1 } }).addTo(map);
    L.polyline(site.coast.map((s) => [[s[1], s[0]], [s[3], s[2]]]), { renderer, interactive: false, color: "#5b4a2a", weight: 1.2 }).addTo(map);
    for (const z of site.zones) {
      L.polygon(z.ring.map((p) => [p[1], p[0]]), { renderer, interactive: false, color: "#15803d", weight: 1, fillOpacity: 0.15 }).addTo(map);
    }
    const cams = {};
    for (const c of site.cameras) {
      const pts = [[c.lat, c.lon]];
      for (let i = 0; i <= 12; i++) {
        const d = destination(c.lon, c.lat, c.heading_deg - c.hfov_deg / 2 + (c.hfov_deg * i) / 12, site.coverage_range_m);
        pts.push([d[1], d[0]]);
      }
      const cone = L.polygon(pts, { renderer, interactive: false, weight: 1, color: HEALTH.unknown, fillOpacity: 0.12 }).addTo(map);
      const dot = L.circleMarker([c.lat, c.lon], { renderer, radius: 5, weight: 2, color: "#fff", fillColor: HEALTH.unknown, fillOpacity: 1 }).addTo(map);
      cams[c.id] = { cone, dot };
    }
    const uncovered = L.polyline([], { renderer, interactive: false, color: "#e11d48", weight: 2, opacity: 0.7, dashArray: "3 5" }).addTo(map);
    const fast = new FastLayer({});
    fast.addTo(map);
    return {
      map, fast,
      setCameraHealth(id, status) {
        const c = cams[id];
        if (!c) return;
        const col = HEALTH[status] || HEALTH.unknown;
        c.cone.setStyle({ color: col, fillColor: col });
        c.dot.setStyle({ fillColor: col });
      },
      setUncovered(segs) { uncovered.setLatLngs(segs.map((s) => [[s[1], s[0]], [s[3], s[2]]])); },
    };
  }
  return { create };
})();
