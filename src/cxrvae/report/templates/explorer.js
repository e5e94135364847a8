"use strict";
const D = JSON.parse(document.getElementById("explorer-data").textContent);
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
// viridis at 0, 0.1, ..., 1
const RAMP = ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c", "#22a884",
              "#44bf70", "#7ad151", "#bddf26", "#fde725"].map((h) =>
              [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)));
const SIZE = 400, PAD = 40, RADIUS = 3.2, REACH = 10, SMALL = 360;
const state = { model: 0, colour: "cluster", hover: null, selected: null, cursor: null,
                query: "", hidden: new Set(), layers: new Set(), compare: [], compareMap: "pca",
                axis: 0, frame: 0, dim: 0, anchor: 0, step: 6, timer: null, mosaic: false };
const views = {};  // name -> {canvas, ctx, kind, model(), size, xy, proj, inv}

// ------------------------------------------------------------------ helpers
function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("cannot decode an embedded image"));
    img.src = src;
  });
}
function el(id) { return document.getElementById(id); }
function make(tag, props, ...children) {
  const e = Object.assign(document.createElement(tag), props || {});
  for (const c of children) e.append(c);
  return e;
}
function setupCanvas(canvas, w, h) {
  const r = window.devicePixelRatio || 1;
  canvas.width = w * r; canvas.height = h * r;
  canvas.style.width = w + "px"; canvas.style.height = h + "px";
  const ctx = canvas.getContext("2d");
  ctx.setTransform(r, 0, 0, r, 0, 0);
  return ctx;
}
function tile(canvas, img, index, cols, thumb) {
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (img === null) return;
  ctx.drawImage(img, (index % cols) * thumb, Math.floor(index / cols) * thumb, thumb, thumb,
                0, 0, canvas.width, canvas.height);
}
function ramp(v) {  // v in [0, 1] -> "rgb(...)"
  const x = Math.min(1, Math.max(0, v)) * (RAMP.length - 1), k = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - k, c = RAMP[k].map((a, j) => Math.round(a + f * (RAMP[k + 1][j] - a)));
  return "rgb(" + c.join(",") + ")";
}
function quantile(values, q) {
  const s = values.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))];
}
function niceTicks(lo, hi) {
  const step0 = (hi - lo) / 5, p = Math.pow(10, Math.floor(Math.log10(step0 || 1)));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= step0) || step0;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(+t.toFixed(6));
  return { ticks, digits: Math.max(0, -Math.floor(Math.log10(step))) };
}
function fmt(x, d) { return (+x).toFixed(d); }

// ------------------------------------------------------------------ what colours a point
function colouring(m) {
  const c = state.colour;
  if (c === "label" && D.labels) {
    return { kind: "category", values: D.labels, names: D.label_names, title: "label" };
  }
  if (c === "error" && m.error) {
    return { kind: "scale", values: m.error, title: "reconstruction error of " + m.name +
             " (BCE above the floor, nats per image)" };
  }
  if (c.startsWith("feature:")) {
    const f = D.features.find((f) => "feature:" + f.key === c);
    if (f) return { kind: "scale", values: f.values, title: f.words };
  }
  return { kind: "category", values: m.clusters, title: "K-means cluster of " + m.name,
           names: m.cluster_sizes.map((s, k) => "cluster " + k + " (" + s + ")") };
}
function scaleOf(col) {
  if (!col.range) col.range = [quantile(col.values, 0.02), quantile(col.values, 0.98)];
  return col.range;
}
function colourOf(col, i) {
  const v = col.values[i];
  if (col.kind === "category") return v < 0 ? "#999" : PALETTE[v % PALETTE.length];
  const [lo, hi] = scaleOf(col);
  return ramp((v - lo) / ((hi - lo) || 1));
}
function visible(col, i) {
  return !(col.kind === "category" && state.hidden.has(col.values[i]));
}
function matches(id) {
  return state.query && id.toLowerCase().includes(state.query);
}

// ------------------------------------------------------------------ maps
function extent(points) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  return [x0, x1 > x0 ? x1 : x0 + 1, y0, y1 > y0 ? y1 : y0 + 1];
}
function gridExtent(g) {  // the decoded grid's cells tile the map exactly
  const n = g.x.length, hx = (g.x[n - 1] - g.x[0]) / (n - 1) / 2, hy = (g.y[n - 1] - g.y[0]) / (n - 1) / 2;
  return [g.x[0] - hx, g.x[n - 1] + hx, g.y[0] - hy, g.y[n - 1] + hy];
}
function layout(v) {
  const m = D.models[v.model()], pts = m[v.kind];
  const [x0, x1, y0, y1] = v.kind === "pca" && m.grid ? gridExtent(m.grid) : extent(pts);
  const w = v.size - 2 * PAD, sx = w / (x1 - x0), sy = w / (y1 - y0);
  v.box = [x0, x1, y0, y1];
  v.proj = ([x, y]) => [PAD + (x - x0) * sx, v.size - PAD - (y - y0) * sy];
  v.inv = (px, py) => [x0 + (px - PAD) / sx, y0 + (v.size - PAD - py) / sy];
  v.xy = pts.map(v.proj);
  v.layerXY = {};
  for (const L of D.layers) {
    v.layerXY[L.name] = L.models[m.latent_dim][v.kind].map((p) => v.proj(p).map(
      (a) => Math.min(v.size - PAD + 6, Math.max(PAD - 6, a))));  // beyond the map: at its edge
  }
}
function drawAxes(v, m) {
  const ctx = v.ctx, s = v.size, [x0, x1, y0, y1] = v.box;
  ctx.strokeStyle = "#bbb"; ctx.lineWidth = 1;
  ctx.strokeRect(PAD - 8, PAD - 8, s - 2 * PAD + 16, s - 2 * PAD + 16);
  ctx.fillStyle = "#333"; ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "center";
  ctx.fillText(m[v.kind + "_axes"][0], s / 2, s - 6);
  ctx.save(); ctx.translate(11, s / 2); ctx.rotate(-Math.PI / 2);
  ctx.fillText(m[v.kind + "_axes"][1], 0, 0); ctx.restore();
  ctx.font = "10px system-ui, sans-serif"; ctx.fillStyle = "#666";
  const tx = niceTicks(x0, x1), ty = niceTicks(y0, y1);
  for (const t of tx.ticks) ctx.fillText(fmt(t, tx.digits), v.proj([t, y0])[0], s - PAD + 20);
  ctx.textAlign = "right";
  for (const t of ty.ticks) ctx.fillText(fmt(t, ty.digits), PAD - 10, v.proj([x0, t])[1] + 3);
  ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.fillStyle = "#333";
  ctx.fillText(m.name, PAD - 6, PAD - 14);
}
function drawMosaic(v, m) {
  const g = m.grid, n = g.x.length, ctx = v.ctx;
  const cw = (v.size - 2 * PAD) / n;
  ctx.save(); ctx.globalAlpha = 0.55; ctx.imageSmoothingEnabled = true;
  for (let iy = 0; iy < n; iy++) for (let ix = 0; ix < n; ix++) {
    const [cx, cy] = v.proj([g.x[ix], g.y[iy]]);
    ctx.drawImage(m.gridImg, ix * D.thumb, iy * D.thumb, D.thumb, D.thumb,
                  cx - cw / 2, cy - cw / 2, cw, cw);
  }
  ctx.restore();
}
function ring(ctx, x, y, r, colour, width) {
  ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.lineWidth = width; ctx.strokeStyle = colour; ctx.stroke();
}
function drawLayers(v, m) {
  const ctx = v.ctx;
  for (const L of D.layers) {
    if (!state.layers.has(L.name)) continue;
    const flagged = L.models[m.latent_dim].flagged;
    v.layerXY[L.name].forEach(([x, y], i) => {
      ctx.lineWidth = flagged[i] ? 2.2 : 1.2; ctx.strokeStyle = flagged[i] ? "#d00" : "#111";
      ctx.beginPath();
      if (flagged[i]) { ctx.moveTo(x - 4, y - 4); ctx.lineTo(x + 4, y + 4); ctx.moveTo(x + 4, y - 4); ctx.lineTo(x - 4, y + 4); }
      else { ctx.moveTo(x, y - 4.5); ctx.lineTo(x + 4.5, y); ctx.lineTo(x, y + 4.5); ctx.lineTo(x - 4.5, y); ctx.closePath(); }
      ctx.stroke();
      if (matches(L.ids[i])) ring(ctx, x, y, 8, "#e6007e", 2);
    });
  }
}
function drawMap(v) {
  const m = D.models[v.model()], ctx = v.ctx, col = colouring(m);
  layout(v);
  ctx.clearRect(0, 0, v.size, v.size);
  drawAxes(v, m);
  if (v.kind === "pca" && m.grid && state.mosaic) drawMosaic(v, m);
  const faded = state.query !== "";
  for (let i = 0; i < v.xy.length; i++) {
    if (!visible(col, i)) continue;
    ctx.globalAlpha = faded && !matches(D.ids[i]) ? 0.12 : 0.8;
    ctx.beginPath(); ctx.arc(v.xy[i][0], v.xy[i][1], RADIUS, 0, 2 * Math.PI);
    ctx.fillStyle = colourOf(col, i); ctx.fill();
  }
  ctx.globalAlpha = 1;
  drawLayers(v, m);
  if (faded) v.xy.forEach(([x, y], i) => { if (matches(D.ids[i]) && visible(col, i)) ring(ctx, x, y, 6, "#e6007e", 2); });
  const sel = state.selected;
  if (sel !== null && D.models[state.model].neighbours) {
    for (const j of D.models[state.model].neighbours[sel]) ring(ctx, v.xy[j][0], v.xy[j][1], 5.5, "#000", 1.2);
  }
  if (sel !== null) { ring(ctx, v.xy[sel][0], v.xy[sel][1], 8, "#fff", 4); ring(ctx, v.xy[sel][0], v.xy[sel][1], 8, "#000", 2.2); }
  const h = state.hover;
  if (h && h.kind === "sample") ring(ctx, v.xy[h.i][0], v.xy[h.i][1], 7, "#d62728", 2.5);
  if (h && h.kind === "layer") ring(ctx, v.layerXY[h.layer][h.i][0], v.layerXY[h.layer][h.i][1], 8, "#d62728", 2.5);
  if (v.kind === "pca" && v.main && state.cursor !== null && m.grid) {
    const n = m.grid.x.length, [cx, cy] = v.proj([m.grid.x[state.cursor % n], m.grid.y[Math.floor(state.cursor / n)]]);
    const cw = (v.size - 2 * PAD) / n;
    ctx.lineWidth = 1.5; ctx.strokeStyle = "#e6007e"; ctx.strokeRect(cx - cw / 2, cy - cw / 2, cw, cw);
  }
}
function drawAll() { for (const v of Object.values(views)) drawMap(v); }

function nearestPoint(v, x, y) {  // the sample or layer point within reach of (x, y)
  const m = D.models[v.model()], col = colouring(m);
  let best = null, bestD = REACH * REACH;
  v.xy.forEach(([px, py], i) => {
    const d = (px - x) ** 2 + (py - y) ** 2;
    if (d < bestD && visible(col, i)) { bestD = d; best = { kind: "sample", i }; }
  });
  for (const L of D.layers) {
    if (!state.layers.has(L.name)) continue;
    v.layerXY[L.name].forEach(([px, py], i) => {
      const d = (px - x) ** 2 + (py - y) ** 2;
      if (d < bestD) { bestD = d; best = { kind: "layer", layer: L.name, i }; }
    });
  }
  return best;
}
function gridNode(v, x, y) {  // the decoded grid point nearest (x, y), or null off the grid
  const g = D.models[v.model()].grid;
  if (!g) return null;
  const [dx, dy] = v.inv(x, y), n = g.x.length;
  const ix = Math.round((dx - g.x[0]) / (g.x[1] - g.x[0])), iy = Math.round((dy - g.y[0]) / (g.y[1] - g.y[0]));
  return ix < 0 || iy < 0 || ix >= n || iy >= n ? null : iy * n + ix;
}

// ------------------------------------------------------------------ panels
function describe(i, m) {
  const parts = [D.ids[i]];
  if (D.labels) parts.push(D.label_names[D.labels[i]]);
  parts.push("cluster " + m.clusters[i] + " of " + m.name);
  if (m.error) parts.push("error " + fmt(m.error[i], 1) + " nats above the floor");
  return parts.join(" · ");
}
function showHover(h) {
  state.hover = h;
  const m = D.models[state.model];
  if (h === null) { drawAll(); return; }
  if (h.kind === "sample") {
    tile(el("hover-original"), D.imagesImg, h.i, D.cols, D.thumb);
    tile(el("hover-recon"), m.reconImg, h.i, D.cols, D.thumb);
    el("hover-info").textContent = describe(h.i, m);
  } else {
    const L = D.layers.find((L) => L.name === h.layer), s = L.models[m.latent_dim];
    tile(el("hover-original"), L.img, h.i, L.cols, D.thumb);
    tile(el("hover-recon"), null);
    el("hover-info").textContent = "scored batch '" + L.name + "': " + L.ids[h.i] + " · " +
      fmt(s.percentile[h.i], 1) + "th percentile of the test images' scores" +
      (s.flagged[h.i] ? " · flagged by " + m.name : " · not flagged") + " (reconstruction not kept)";
  }
  drawAll(); drawCompareHover();
}
function showDecoded(node) {
  const m = D.models[state.model], c = el("decoded");
  state.cursor = node;
  if (node === null || !m.grid) { tile(c, null); return; }
  const n = m.grid.x.length;
  tile(c, m.gridImg, node, n, D.thumb);
  el("decoded-info").textContent = "Decoded by " + m.name + " at " + m.pca_axes[0].split(" (")[0] +
    " = " + fmt(m.grid.x[node % n], 2) + ", " + m.pca_axes[1].split(" (")[0] + " = " +
    fmt(m.grid.y[Math.floor(node / n)], 2) + " (the other principal components at their mean); " +
    "point " + (node + 1) + " of the " + n + " × " + n + " grid.";
}
function select(i) {
  state.selected = i;
  const m = D.models[state.model], box = el("neighbours");
  box.innerHTML = "";
  if (i === null) { drawAll(); return; }
  tile(el("selected-original"), D.imagesImg, i, D.cols, D.thumb);
  tile(el("selected-recon"), m.reconImg, i, D.cols, D.thumb);
  const facts = make("table", { className: "facts" });
  for (const f of D.features) {
    facts.append(make("tr", {}, make("td", { textContent: f.words }), make("td", { textContent: fmt(f.values[i], 3) })));
  }
  el("selected-info").replaceChildren(make("div", { textContent: describe(i, m) }), facts);
  if (!m.neighbours) {
    box.append(make("p", { className: "muted", textContent: "Analyse the run again for neighbours." }));
  } else {
    m.neighbours[i].forEach((j, r) => {
      const c = make("canvas", { className: "img", width: 88, height: 88 });
      tile(c, D.imagesImg, j, D.cols, D.thumb);
      const b = make("button", { type: "button", title: D.ids[j] }, c, make("br"),
        "#" + (r + 1) + "  d = " + fmt(m.distances[i][r], 2), make("span", { className: "nid", textContent: D.ids[j] }));
      b.dataset.index = j; b.setAttribute("role", "listitem");
      b.setAttribute("aria-label", "neighbour " + (r + 1) + ": " + D.ids[j] + ", distance " + fmt(m.distances[i][r], 2));
      b.addEventListener("click", () => select(j));
      box.append(b);
    });
  }
  drawAll(); drawCompareHover();
}
function drawLegend() {
  const m = D.models[state.model], col = colouring(m), box = el("legend");
  box.replaceChildren(make("span", { className: "head", textContent: col.title + ":" }));
  if (col.kind === "category") {
    col.names.forEach((n, c) => {
      const b = make("button", { type: "button", title: "show or hide these points" },
        make("i", { style: "background:" + PALETTE[c % PALETTE.length] }), n);
      b.setAttribute("aria-pressed", String(!state.hidden.has(c)));
      b.addEventListener("click", () => {
        state.hidden.has(c) ? state.hidden.delete(c) : state.hidden.add(c); drawLegend(); drawAll();
      });
      box.append(b);
    });
  } else {
    const [lo, hi] = scaleOf(col), stops = RAMP.map((c, k) => "rgb(" + c + ") " + (10 * k) + "%");
    box.append(fmt(lo, 3), make("span", { className: "ramp", style: "background:linear-gradient(to right," + stops + ")" }),
               fmt(hi, 3), make("span", { className: "muted", textContent: " (2nd to 98th percentile; beyond it, the end colours)" }));
  }
  for (const L of D.layers) {
    if (!state.layers.has(L.name)) continue;
    const k = L.models[m.latent_dim].flagged.reduce((a, b) => a + b, 0);
    box.append(make("span", { className: "muted", textContent: "◇ scored '" + L.name + "' (" + L.n +
      " images), ✕ flagged by " + m.name + " (" + k + ")" }));
  }
}

// ------------------------------------------------------------------ side by side
function buildCompare() {
  const row = el("compare");
  row.innerHTML = "";
  for (const name of Object.keys(views)) if (name.startsWith("cmp")) delete views[name];
  state.compare.forEach((k) => {
    const canvas = make("canvas", { className: "map" });
    canvas.setAttribute("aria-label", D.models[k].name + " " + state.compareMap + " map");
    row.append(make("figure", {}, canvas));
    const v = { canvas, ctx: setupCanvas(canvas, SMALL, SMALL), kind: state.compareMap, model: () => k, size: SMALL };
    views["cmp" + k] = v;
    hookHover(v);
  });
  drawAll(); drawCompareHover();
}
function drawCompareHover() {
  const row = el("compare-hover"), h = state.hover;
  const i = h && h.kind === "sample" ? h.i : state.selected;
  row.innerHTML = "";
  if (i === null || i === undefined) return;
  const cell = (img, idx, text) => {
    const c = make("canvas", { className: "img", width: 112, height: 112 });
    tile(c, img, idx, D.cols, D.thumb);
    return make("div", { style: "text-align:center;font-size:0.85em;color:#555;max-width:180px;word-break:break-all" }, c, make("br"), text);
  };
  row.append(cell(D.imagesImg, i, "X-ray " + D.ids[i]));
  for (const k of state.compare) {
    const m = D.models[k];
    row.append(cell(m.reconImg, i, m.name + (m.error ? ": " + fmt(m.error[i], 1) + " nats above the floor" : "")));
  }
}

// ------------------------------------------------------------------ traversals, interpolations
function strip(canvas, img, row, cols, count, labels, current) {
  const w = 64, ctx = setupCanvas(canvas, w * count, w + 18);
  ctx.imageSmoothingEnabled = false;
  for (let k = 0; k < count; k++) {
    const idx = row * cols + k;
    ctx.drawImage(img, (idx % cols) * D.thumb, Math.floor(idx / cols) * D.thumb, D.thumb, D.thumb,
                  k * w + 2, 2, w - 4, w - 4);
    ctx.fillStyle = "#333"; ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "center";
    ctx.fillText(labels[k], k * w + w / 2, w + 14);
  }
  ctx.strokeStyle = "#d62728"; ctx.lineWidth = 3; ctx.strokeRect(current * w + 1, 1, w - 2, w - 2);
}
function fillTraversal() {
  const m = D.models[state.model], t = m.traversal;
  el("trav-none").hidden = !!t;
  for (const id of ["trav-dim", "trav-anchor", "trav-slider"]) el(id).disabled = !t;
  if (!t) { el("trav-dim").innerHTML = ""; el("trav-anchor").innerHTML = ""; return; }
  el("trav-dim").replaceChildren(...t.dims.map((d, r) => make("option", { value: r,
    textContent: "z" + d + " (KL " + fmt(t.kl[r], 2) + " nats)" })));
  el("trav-anchor").replaceChildren(...t.anchors.map((a, k) => make("option", { value: k,
    textContent: (k === 0 ? "the most typical image" : "nearest the centre of cluster " + m.clusters[a]) + ": " + D.ids[a] })));
  state.dim = Math.min(state.dim, t.dims.length - 1); state.anchor = Math.min(state.anchor, t.anchors.length - 1);
  el("trav-dim").value = state.dim; el("trav-anchor").value = state.anchor;
  el("trav-slider").max = t.steps.length - 1;
}
function drawTraversal() {
  const m = D.models[state.model], t = m.traversal;
  if (!t) { tile(el("trav-frame"), null); return; }
  const C = t.steps.length, R = t.dims.length, row = state.anchor * R + state.dim;
  tile(el("trav-frame"), m.travImg, row * C + state.step, C, D.thumb);
  const s = t.steps[state.step];
  el("trav-value").textContent = (s > 0 ? "+" : s < 0 ? "−" : "") + fmt(Math.abs(s), 1) + " SD";
  el("trav-caption").textContent = m.name + ": z" + t.dims[state.dim] + " of " +
    D.ids[t.anchors[state.anchor]] + " moved " + el("trav-value").textContent;
  strip(el("trav-strip"), m.travImg, row, C, C, t.steps.map((x) => fmt(x, 1)), state.step);
}
function drawInterp() {
  const it = D.models[state.model].interps[state.axis], f = state.frame;
  tile(el("interp-frame"), it.img, f, it.t.length, D.thumb);
  el("t-value").textContent = "t = " + it.t[f].toFixed(3);
  el("interp-caption").textContent = D.models[state.model].name + ", along " + it.label +
    ": frame " + (f + 1) + " of " + it.t.length +
    (f === 0 ? " (lowest image)" : f === it.t.length - 1 ? " (highest image)" : "");
  strip(el("interp-strip"), it.img, 0, it.t.length, it.t.length, it.t.map((t) => t.toFixed(2)), f);
}
function fillAxes() {
  const its = D.models[state.model].interps;
  el("axis").replaceChildren(...its.map((it, k) => make("option", { value: k, textContent: it.label })));
  state.axis = Math.min(state.axis, its.length - 1); el("axis").value = state.axis;
  el("t-slider").max = its[state.axis].t.length - 1;
  state.frame = Math.min(state.frame, +el("t-slider").max); el("t-slider").value = state.frame;
}

// ------------------------------------------------------------------ wiring
function fillColours() {
  const opts = [["cluster", "K-means cluster"]];
  if (D.labels) opts.push(["label", "label"]);
  if (D.models[state.model].error) opts.push(["error", "reconstruction error"]);
  for (const f of D.features) opts.push(["feature:" + f.key, f.words]);
  el("colour").replaceChildren(...opts.map(([v, t]) => make("option", { value: v, textContent: t })));
  if (!opts.some(([v]) => v === state.colour)) state.colour = "cluster";
  el("colour").value = state.colour;
}
function redraw() {
  const m = D.models[state.model];
  el("cap-pca").textContent = "PCA of the latent means (linear: distances are kept on the two " +
    "directions of largest variance)." + (m.grid ? " Every point of it decodes to an image: the " +
    "plane is decoded ahead of time on a " + m.grid.x.length + " × " + m.grid.x.length +
    " grid, and the image shown is the grid point's nearest the cursor." : "");
  fillColours(); drawLegend(); fillAxes(); drawInterp(); fillTraversal(); drawTraversal();
  drawAll();
  if (state.hover) showHover(state.hover);
  select(state.selected);
  showDecoded(m.grid ? state.cursor : null);
  el("decoded").style.display = m.grid ? "" : "none";
}
function hookHover(v) {
  v.canvas.addEventListener("mousemove", (e) => {
    const r = v.canvas.getBoundingClientRect(), x = e.clientX - r.left, y = e.clientY - r.top;
    const h = nearestPoint(v, x, y);
    if (v.kind === "pca" && v.main) showDecoded(gridNode(v, x, y));
    const same = h && state.hover && h.kind === state.hover.kind && h.i === state.hover.i && h.layer === state.hover.layer;
    if (!same) showHover(h ? h : state.hover); else drawAll();
  });
  v.canvas.addEventListener("click", (e) => {
    const r = v.canvas.getBoundingClientRect();
    const h = nearestPoint(v, e.clientX - r.left, e.clientY - r.top);
    if (h && h.kind === "sample") select(h.i);
  });
}
function keyboardOnPca(v) {
  v.canvas.addEventListener("keydown", (e) => {
    const g = D.models[state.model].grid;
    if (!g) return;
    const n = g.x.length;
    const node = state.cursor === null ? Math.floor(n / 2) * n + Math.floor(n / 2) : state.cursor;
    let ix = node % n, iy = Math.floor(node / n);
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (e.key in moves) {
      ix = Math.min(n - 1, Math.max(0, ix + moves[e.key][0])); iy = Math.min(n - 1, Math.max(0, iy + moves[e.key][1]));
      showDecoded(iy * n + ix); drawAll(); e.preventDefault();
    } else if (e.key === "Enter") {
      const [cx, cy] = v.proj([g.x[ix], g.y[iy]]);
      let best = null, bestD = Infinity;
      v.xy.forEach(([x, y], i) => { const d = (x - cx) ** 2 + (y - cy) ** 2; if (d < bestD) { bestD = d; best = i; } });
      select(best); e.preventDefault();
    }
  });
}
function wire() {
  el("model").replaceChildren(...D.models.map((m, k) => make("option", { value: k, textContent: m.name })));
  el("model").addEventListener("change", () => {
    state.model = +el("model").value; state.hidden.clear(); state.cursor = null; redraw();
  });
  el("colour").addEventListener("change", () => { state.colour = el("colour").value; state.hidden.clear(); drawLegend(); drawAll(); });
  el("search").addEventListener("input", () => {
    state.query = el("search").value.trim().toLowerCase();
    const n = state.query ? D.ids.filter(matches).length : 0;
    const l = state.query ? D.layers.reduce((a, L) => a + L.ids.filter(matches).length, 0) : 0;
    el("search-count").textContent = state.query ? n + " of " + D.n + " sampled images match" +
      (l ? ", and " + l + " scored image" + (l > 1 ? "s" : "") : "") + (n ? "; Enter selects the first (or the exact match)" : "") : "";
    drawAll();
  });
  el("search").addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    const exact = D.ids.findIndex((id) => id.toLowerCase() === state.query);
    const i = exact >= 0 ? exact : D.ids.findIndex(matches);
    if (i >= 0) select(i);
  });
  el("layers").replaceChildren(...D.layers.flatMap((L) => {
    const box = make("input", { type: "checkbox", id: "layer-" + L.name, checked: true });
    state.layers.add(L.name);
    box.addEventListener("change", () => { box.checked ? state.layers.add(L.name) : state.layers.delete(L.name); drawLegend(); drawAll(); });
    return [box, make("label", { htmlFor: box.id, textContent: "scored '" + L.name + "' (" + L.n + ")" })];
  }));
  if (D.layers.length) el("layers").prepend(make("span", { className: "head", textContent: "Layers" }));
  el("mosaic").addEventListener("change", () => { state.mosaic = el("mosaic").checked; drawAll(); });
  for (const kind of ["pca", "tsne"]) {
    const canvas = el("map-" + kind);
    views[kind] = { canvas, ctx: setupCanvas(canvas, SIZE, SIZE), kind, model: () => state.model, size: SIZE, main: true };
    hookHover(views[kind]);
  }
  views.pca.canvas.addEventListener("mouseleave", () => { showDecoded(state.cursor); });
  keyboardOnPca(views.pca);
  state.compare = D.models.map((m, k) => k).slice(0, 3);
  el("compare-models").replaceChildren(...D.models.flatMap((m, k) => {
    const box = make("input", { type: "checkbox", id: "compare-" + k, checked: k < 3 });
    box.addEventListener("change", () => {
      state.compare = D.models.map((_, j) => j).filter((j) => el("compare-" + j).checked); buildCompare();
    });
    return [box, make("label", { htmlFor: box.id, textContent: m.name + " " })];
  }));
  el("compare-map").addEventListener("change", () => { state.compareMap = el("compare-map").value; buildCompare(); });
  el("decoded").width = el("decoded").height = D.thumb * Math.max(1, Math.floor(192 / D.thumb));
  el("trav-dim").addEventListener("change", () => { state.dim = +el("trav-dim").value; drawTraversal(); });
  el("trav-anchor").addEventListener("change", () => { state.anchor = +el("trav-anchor").value; drawTraversal(); });
  el("trav-slider").addEventListener("input", () => { state.step = +el("trav-slider").value; drawTraversal(); });
  el("axis").addEventListener("change", () => { state.axis = +el("axis").value; fillAxes(); drawInterp(); });
  el("t-slider").addEventListener("input", () => { state.frame = +el("t-slider").value; drawInterp(); });
  el("play").addEventListener("click", (e) => {
    if (state.timer) { clearInterval(state.timer); state.timer = null; e.target.textContent = "Play"; return; }
    e.target.textContent = "Pause";
    let step = 1;
    state.timer = setInterval(() => {
      const n = D.models[state.model].interps[state.axis].t.length;
      if (state.frame + step < 0 || state.frame + step >= n) step = -step;
      state.frame += step; el("t-slider").value = state.frame; drawInterp();
    }, 350);
  });
}
async function init() {
  const jobs = [loadImage(D.images).then((img) => { D.imagesImg = img; })];
  for (const m of D.models) {
    jobs.push(loadImage(m.recon).then((img) => { m.reconImg = img; }));
    if (m.grid) jobs.push(loadImage(m.grid.sprite).then((img) => { m.gridImg = img; }));
    if (m.traversal) jobs.push(loadImage(m.traversal.sprite).then((img) => { m.travImg = img; }));
    for (const it of m.interps) jobs.push(loadImage(it.sprite).then((img) => { it.img = img; }));
  }
  for (const L of D.layers) {
    L.cols = Math.min(32, L.n);
    jobs.push(loadImage(L.images).then((img) => { L.img = img; }));
  }
  await Promise.all(jobs);
  wire(); redraw(); buildCompare();
  window.explorerReady = true;
  window.explorerLoadMs = performance.now();
}

// For tests and scripting: where things are drawn (relative to the canvas corner) and shown.
window.explorer = {
  state,
  ids: D.ids,
  point: (kind, i, view) => { const v = views[view || kind]; return { x: v.xy[i][0], y: v.xy[i][1] }; },
  points: (view) => views[view].xy,
  gridPoint: (ix, iy) => {
    const g = D.models[state.model].grid, p = views.pca.proj([g.x[ix], g.y[iy]]);
    return { x: p[0], y: p[1] };
  },
  gridSize: () => D.models[state.model].grid.x.length,
  pixels: (id) => {  // a canvas's grey levels at the sprite's resolution (centre of each block)
    const c = el(id), s = c.width / D.thumb, d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const out = [];
    for (let y = 0; y < D.thumb; y++) for (let x = 0; x < D.thumb; x++) {
      out.push(d[4 * (Math.floor((y + 0.5) * s) * c.width + Math.floor((x + 0.5) * s))]);
    }
    return out;
  },
  layerPoints: (view, name) => views[view].layerXY[name],
  rgbAt: (view, x, y) => {  // the colour drawn at (x, y) px of a map
    const v = views[view], r = window.devicePixelRatio || 1;
    return [...v.ctx.getImageData(Math.round(x * r), Math.round(y * r), 1, 1).data.slice(0, 3)];
  },
  neighbours: () => [...el("neighbours").querySelectorAll("button")].map((b) => +b.dataset.index),
  colourValues: () => colouring(D.models[state.model]).values,
  colourAt: (view, i) => colourOf(colouring(D.models[views[view].model()]), i),
};
init().catch((err) => { console.error(err); document.body.prepend(err.message); });
