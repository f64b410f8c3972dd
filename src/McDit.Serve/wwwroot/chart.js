// A small SVG line chart (no library, no network): lines with gaps at missing values, optional points,
// a log-scale y axis, vertical markers and a legend. McDitChart.line(container, spec) replaces the container's content.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 640, H = 280, M = { left: 62, right: 16, top: 34, bottom: 40 };

  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Round tick values covering [lo, hi]: 1, 2 or 5 times a power of ten apart.
  function niceTicks(lo, hi, count, minStep) {
    if (!(hi > lo)) { const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1; lo -= d; hi += d; }
    const raw = Math.max((hi - lo) / Math.max(1, count), minStep || 0);
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(m => m * p).find(s => s >= raw) || 10 * p;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
    return { lo: Math.min(lo, ticks[0]), hi: Math.max(hi, ticks[ticks.length - 1]), ticks };
  }

  function logTicks(lo, hi) {
    const a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
    const ticks = [];
    for (let e = a; e <= b; e++)
      for (const m of (b - a <= 2 ? [1, 2, 5] : [1])) { const t = m * Math.pow(10, e); if (t >= lo * 0.999 && t <= hi * 1.001) ticks.push(t); }
    if (ticks.length < 2) return null;
    return ticks;
  }

  function format(v) {
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 1e5 || a < 1e-3) return v.toExponential(0);
    if (a >= 100) return v.toFixed(0);
    return String(Number(v.toPrecision(3)));
  }

  function line(container, spec) {
    container.replaceChildren();
    const series = (spec.series || []).map(s => ({ ...s, pts: s.x.map((x, i) => [x, s.y[i]]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!spec.logY || y > 0)) }));
    const all = series.flatMap(s => s.pts);
    if (all.length === 0) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = (spec.title ? spec.title + ": " : "") + (spec.empty || "no data yet");
      container.append(p);
      return;
    }
    const xs = all.map(p => p[0]), ys = all.map(p => p[1]);
    // Steps are whole numbers: no tick between two of them.
    const xr = niceTicks(Math.min(...xs), Math.max(...xs), 6, xs.every(Number.isInteger) ? 1 : 0);
    let ylo = Math.min(...ys), yhi = Math.max(...ys), yticks, fy;
    const top = M.top, bottom = H - M.bottom, left = M.left, right = W - M.right;
    const lt = spec.logY && yhi / ylo > 3 ? logTicks(ylo, yhi) : null;
    if (lt) {
      const l0 = Math.log10(ylo), l1 = Math.log10(yhi);
      fy = y => bottom - (Math.log10(y) - l0) / (l1 - l0 || 1) * (bottom - top);
      yticks = lt;
    } else {
      const yr = niceTicks(ylo, yhi, 5);
      ylo = yr.lo; yhi = yr.hi; yticks = yr.ticks;
      fy = y => bottom - (y - ylo) / (yhi - ylo || 1) * (bottom - top);
    }
    const fx = x => left + (x - xr.lo) / (xr.hi - xr.lo || 1) * (right - left);

    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": spec.title || "chart", class: "chart-svg" });
    svg.append(el("rect", { x: 0, y: 0, width: W, height: H, fill: "#fff" }));
    svg.append(el("text", { x: left, y: 18, "font-size": 14, "font-weight": 600, fill: "#1b1f24" }, spec.title || ""));
    for (const t of yticks) {
      const y = fy(t);
      svg.append(el("line", { x1: left, x2: right, y1: y, y2: y, stroke: "#e6eaf0" }));
      svg.append(el("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#5f6b7a" }, format(t)));
    }
    for (const t of xr.ticks) {
      const x = fx(t);
      svg.append(el("line", { x1: x, x2: x, y1: bottom, y2: bottom + 4, stroke: "#8893a2" }));
      svg.append(el("text", { x, y: bottom + 17, "text-anchor": "middle", "font-size": 11, fill: "#5f6b7a" }, format(t)));
    }
    svg.append(el("line", { x1: left, x2: right, y1: bottom, y2: bottom, stroke: "#8893a2" }));
    svg.append(el("line", { x1: left, x2: left, y1: top, y2: bottom, stroke: "#8893a2" }));
    if (spec.xLabel) svg.append(el("text", { x: (left + right) / 2, y: H - 6, "text-anchor": "middle", "font-size": 12, fill: "#5f6b7a" }, spec.xLabel));
    if (spec.yLabel) svg.append(el("text", { x: 14, y: (top + bottom) / 2, "text-anchor": "middle", "font-size": 12, fill: "#5f6b7a", transform: `rotate(-90 14 ${(top + bottom) / 2})` }, spec.yLabel + (lt ? " (log)" : "")));
    for (const m of spec.markers || []) {
      if (!Number.isFinite(m.x) || m.x < xr.lo || m.x > xr.hi) continue;
      const x = fx(m.x);
      svg.append(el("line", { x1: x, x2: x, y1: top, y2: bottom, stroke: "#b0b8c4", "stroke-dasharray": "4 3" }));
      svg.append(el("text", { x: x + 4, y: top + 11, "font-size": 11, fill: "#5f6b7a" }, m.label || ""));
    }
    const clip = "clip" + Math.random().toString(36).slice(2);
    const defs = el("defs");
    const cp = el("clipPath", { id: clip });
    cp.append(el("rect", { x: left, y: top - 2, width: right - left, height: bottom - top + 4 }));
    defs.append(cp);
    svg.append(defs);
    const plot = el("g", { "clip-path": `url(#${clip})` });
    for (const s of series) {
      // Break the line where a value is missing.
      let d = "", pen = false;
      s.x.forEach((x, i) => {
        const y = s.y[i];
        if (!Number.isFinite(x) || !Number.isFinite(y) || (spec.logY && lt && y <= 0)) { pen = false; return; }
        d += (pen ? "L" : "M") + fx(x).toFixed(1) + " " + fy(y).toFixed(1);
        pen = true;
      });
      if (d && !s.pointsOnly) plot.append(el("path", { d, fill: "none", stroke: s.color, "stroke-width": s.width || 1.5, "stroke-opacity": s.opacity || 1, "stroke-dasharray": s.dash || "none", "stroke-linejoin": "round" }));
      if (s.points || s.pts.length === 1) for (const [x, y] of s.pts) plot.append(el("circle", { cx: fx(x), cy: fy(y), r: 3, fill: s.color }));
    }
    svg.append(plot);
    // Legend, right-aligned above the plot.
    let lx = right;
    for (const s of [...series].reverse()) {
      if (!s.name) continue;
      const label = el("text", { y: 18, "font-size": 11, fill: "#1b1f24", "text-anchor": "end" }, s.name);
      const width = 6.6 * s.name.length;
      label.setAttribute("x", lx);
      svg.append(label);
      svg.append(el("rect", { x: lx - width - 14, y: 10, width: 10, height: 10, fill: s.color, "fill-opacity": s.opacity || 1 }));
      lx -= width + 30;
    }
    container.append(svg);
  }

  window.McDitChart = { line, niceTicks };
})();
