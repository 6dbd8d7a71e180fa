// graph2html viewer: draws the packed attribution graph of this page (libcommon/attrib/graph_html.h
// documents the data) with no library and no network. Every string from the data reaches the page
// through textContent / createTextNode / canvas fillText, never as markup.
"use strict";
(function () {
  // ---- errors are collected for the self-test (and still reported) -------------------------
  const pageErrors = [];
  window.addEventListener("error", (ev) => pageErrors.push(String(ev.message)));
  const consoleError = console.error.bind(console);
  console.error = (...a) => { pageErrors.push(a.map(String).join(" ")); consoleError(...a); };

  const $ = (id) => document.getElementById(id);
  // el("div", {class: "x", title: t}, child, "text", ...): text children become text nodes.
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      if (k === "class") e.className = attrs[k];
      else if (k === "text") e.textContent = attrs[k];
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (const c of kids) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function unb64(s, Type) {
    const bin = atob(s), n = bin.length, u = new Uint8Array(n);
    for (let i = 0; i < n; i++) u[i] = bin.charCodeAt(i);
    return new Type(u.buffer);
  }
  // A token as text with its invisible characters shown: bidi controls, zero-width characters,
  // line/paragraph separators and C0 controls become "\u{…}" (a token is exact bytes: a researcher
  // must see that " a\u200b" is not " a", and an RTL override must not flip its neighbours). Newline
  // and tab, frequent in code, are shown as the usual ↵ and ⇥.
  const INVISIBLE = /[\u0000-\u001f\u007f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]/g;
  const SHOWN = { "\n": "↵", "\t": "⇥" };
  const showToken = (t) =>
    String(t).replace(INVISIBLE, (c) => SHOWN[c] || "\\u{" + c.charCodeAt(0).toString(16).padStart(4, "0") + "}");
  const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));
  const signed = (x, d = 3) => (x >= 0 ? "+" : "−") + Math.abs(x).toFixed(d);

  // ---- data -----------------------------------------------------------------------------------
  const tScript = performance.now();
  const D = JSON.parse($("graph-data").textContent);
  const N = D.n_nodes, M = D.n_links;
  const NI = unb64(D.node_i32, Int32Array), NF = unb64(D.node_f32, Float32Array);
  const LI = unb64(D.link_i32, Int32Array), LW = unb64(D.link_f32, Float32Array);
  const meta = D.metadata, tokens = meta.prompt_tokens, T = tokens.length;
  const ids = D.node_id, clerps = D.clerp, FEAT = D.features || {}, EXPL = D.explanations || {};
  const KIND_NAME = ["feature", "error", "embedding", "logit"], GLYPH = ["●", "◆", "■", "▲"];
  const FEATURE_TYPE = ["cross layer transcoder", "mlp reconstruction error", "embedding", "logit"];
  const kind = (i) => NI[6 * i], row = (i) => NI[6 * i + 1], ctx = (i) => NI[6 * i + 2];
  const flayer = (i) => NI[6 * i + 3], fidx = (i) => NI[6 * i + 4], flags = (i) => NI[6 * i + 5];
  const infl = (i) => NF[3 * i], act = (i) => NF[3 * i + 1], prob = (i) => NF[3 * i + 2];
  const fkey = (i) => flayer(i) + "_" + fidx(i);
  const cantor = (l, f) => ((l + f) * (l + f + 1)) / 2 + f;
  let nRows = 0;
  for (let i = 0; i < N; i++) nRows = Math.max(nRows, row(i) + 1);
  const idIndex = new Map();
  for (let i = 0; i < N; i++) if (!idIndex.has(ids[i])) idIndex.set(ids[i], i);

  // inputs: links are sorted by target then |weight| descending, so a node's inputs are one
  // ranked range; outputs: a counting sort by source.
  const inStart = new Int32Array(N + 1), outStart = new Int32Array(N + 1), outLink = new Int32Array(M);
  const inAbs = new Float64Array(N);
  for (let k = 0; k < M; k++) { inStart[LI[2 * k + 1] + 1]++; outStart[LI[2 * k] + 1]++; inAbs[LI[2 * k + 1]] += Math.abs(LW[k]); }
  for (let i = 0; i < N; i++) { inStart[i + 1] += inStart[i]; outStart[i + 1] += outStart[i]; }
  { const fill = outStart.slice(0, N); for (let k = 0; k < M; k++) outLink[fill[LI[2 * k]]++] = k; }
  // share of the target's input (circuit-tracer's pctInput)
  const pct = new Float32Array(M);
  for (let k = 0; k < M; k++) pct[k] = LW[k] / Math.max(inAbs[LI[2 * k + 1]], 1e-10);
  const tDecoded = performance.now();

  function logitToken(i) {
    const m = /^Output "([\s\S]*)" \(p=/.exec(clerps[i]);
    return m ? m[1] : "#" + fidx(i);
  }
  function label(i) {
    const k = kind(i), c = clerps[i];
    if (k === 0) {
      if (c) return c;
      const x = EXPL[fkey(i)];
      if (x && x.label) return x.label;
      return fidx(i) >= 0 ? "L" + flayer(i) + " #" + fidx(i) : ids[i];
    }
    if (c) return c;
    if (k === 1) return 'Err: mlp "' + tokens[ctx(i)] + '"';
    if (k === 2) return 'Emb: "' + tokens[ctx(i)] + '"';
    return 'Output "' + logitToken(i) + '"';
  }
  const rowName = (r) => (r === 0 ? "Emb" : r === nRows - 1 && hasLogits ? "Lgt" : "L" + (r - 1));
  let hasLogits = false;
  for (let i = 0; i < N; i++) if (kind(i) === 3) hasLogits = true;

  // ---- state (mirrored in the URL hash) ---------------------------------------------------------
  const S = { pinned: [], supernodes: [], clicked: -1, hover: -1, thr: 1, allEdges: true, search: [] };
  const defaultThr = typeof meta.node_threshold === "number" ? meta.node_threshold : 1;
  S.thr = defaultThr;
  const pinnedSet = () => new Set(S.pinned);

  function stateToHash() {
    const p = new URLSearchParams();
    if (S.clicked >= 0) p.set("clickedId", ids[S.clicked]);
    if (S.pinned.length) p.set("pinnedIds", S.pinned.map((i) => ids[i]).join(","));
    if (S.supernodes.length) p.set("supernodes", JSON.stringify(S.supernodes.map((s) => [s[0], ...s.slice(1).map((i) => ids[i])])));
    if (Math.abs(S.thr - defaultThr) > 1e-9) p.set("pruningThreshold", String(S.thr));
    return p.toString();
  }
  // Reads pinnedIds, supernodes ([[label, id, ...], ...]), clickedId and pruningThreshold from a
  // hash or query string (circuit-tracer's names); unknown ids are dropped.
  function parseState(str) {
    const p = new URLSearchParams(str.replace(/^[#?]/, ""));
    const out = { pinned: [], supernodes: [], clicked: -1, thr: defaultThr };
    const look = (id) => (idIndex.has(id) ? idIndex.get(id) : -1);
    for (const id of (p.get("pinnedIds") || "").split(",")) { const i = look(id); if (i >= 0 && !out.pinned.includes(i)) out.pinned.push(i); }
    try {
      const sn = JSON.parse(p.get("supernodes") || "[]");
      for (const s of Array.isArray(sn) ? sn : []) {
        if (!Array.isArray(s) || s.length < 2) continue;
        const mem = s.slice(1).map((id) => look(String(id))).filter((i) => i >= 0);
        if (mem.length) out.supernodes.push([String(s[0]), ...mem]);
      }
    } catch (err) { /* a hand-edited hash: ignore its supernodes */ }
    for (const s of out.supernodes) for (const i of s.slice(1)) if (!out.pinned.includes(i)) out.pinned.push(i);
    out.clicked = look(p.get("clickedId") || "");
    const t = parseFloat(p.get("pruningThreshold"));
    if (Number.isFinite(t)) out.thr = Math.min(1, Math.max(0, t));
    return out;
  }
  let lastHash = null;
  function saveHash() {
    const h = stateToHash();
    if (h === lastHash) return;
    lastHash = h;
    try { history.replaceState(null, "", h ? "#" + h : location.pathname + location.search); }
    catch (err) { location.hash = h; }
  }
  function applyState(st) {
    S.pinned = st.pinned; S.supernodes = st.supernodes; S.clicked = st.clicked; S.thr = st.thr;
  }

  // ---- visibility and layout ---------------------------------------------------------------------
  const X = new Float32Array(N), Y = new Float32Array(N), vis = new Uint8Array(N);
  const G = { w: 800, h: 500, left: 44, right: 12, top: 56, bottom: 78, colX: new Float32Array(T + 1), rowY: [] };
  function computeVisible() {
    const pin = pinnedSet();
    for (let i = 0; i < N; i++) {
      const k = kind(i), f = infl(i);
      vis[i] = k >= 2 || pin.has(i) || i === S.clicked || !(f > S.thr + 1e-9) ? 1 : 0;
    }
  }
  function layout() {
    const wrap = $("graph-wrap");
    G.w = Math.max(300, wrap.clientWidth); G.h = Math.max(300, wrap.clientHeight);
    // column width ∝ the largest number of visible nodes sharing a layer at that position
    const cell = new Map();
    let maxCount = new Float64Array(T).fill(1);
    for (let i = 0; i < N; i++) if (vis[i]) {
      const key = ctx(i) * nRows + row(i);
      let a = cell.get(key); if (!a) cell.set(key, (a = [])); a.push(i);
      maxCount[ctx(i)] = Math.max(maxCount[ctx(i)], a.length);
    }
    let tot = 0; for (let c = 0; c < T; c++) { maxCount[c] = Math.sqrt(maxCount[c]) + 1; tot += maxCount[c]; }
    const W = G.w - G.left - G.right;
    G.colX[0] = G.left;
    for (let c = 0; c < T; c++) G.colX[c + 1] = G.colX[c] + (W * maxCount[c]) / tot;
    const H = G.h - G.top - G.bottom, rh = H / Math.max(1, nRows);
    G.rowY = []; for (let r = 0; r < nRows; r++) G.rowY.push(G.top + H - (r + 0.5) * rh);
    for (const [key, a] of cell) {
      const c = Math.floor(key / nRows), r = key % nRows;
      a.sort((p, q) => (Number.isNaN(infl(p)) ? 1 : infl(p)) - (Number.isNaN(infl(q)) ? 1 : infl(q)));
      // the most influential node at the right of its cell, as the anchors pack them; a crowded
      // cell wraps onto several lines inside its row band
      const x0 = G.colX[c] + 3, x1 = G.colX[c + 1] - 3, cap = Math.max(1, Math.floor((x1 - x0) / 7));
      const lines = Math.ceil(a.length / cap), perLine = Math.min(a.length, cap);
      const s = Math.min(12, (x1 - x0) / perLine), dy = Math.min(8, (rh * 0.8) / lines);
      a.forEach((i, j) => {
        const line = Math.floor(j / cap), q = j % cap;
        X[i] = a.length === 1 ? (x0 + x1) / 2 : x1 - s * q - s / 2;
        Y[i] = G.rowY[r] + (line - (lines - 1) / 2) * dy;
      });
    }
    buildGrid();
  }
  // hit-testing: nodes bucketed in 16-px cells
  let grid = new Map();
  function buildGrid() {
    grid = new Map();
    for (let i = 0; i < N; i++) if (vis[i]) {
      const k = Math.floor(X[i] / 16) * 100000 + Math.floor(Y[i] / 16);
      let a = grid.get(k); if (!a) grid.set(k, (a = [])); a.push(i);
    }
  }
  function nodeAt(x, y, radius = 10) {
    let best = -1, bd = radius * radius;
    const gx = Math.floor(x / 16), gy = Math.floor(y / 16);
    for (let a = gx - 1; a <= gx + 1; a++) for (let b = gy - 1; b <= gy + 1; b++) {
      for (const i of grid.get(a * 100000 + b) || []) {
        const d = (X[i] - x) ** 2 + (Y[i] - y) ** 2;
        if (d < bd) { bd = d; best = i; }
      }
    }
    return best;
  }

  // ---- drawing -----------------------------------------------------------------------------------
  const POS = "#2166ac", NEG = "#d95f02", KIND_FILL = ["#5c5c5c", "#b4b4b4", "#2b2b2b", "#2b2b2b"];
  const cEdges = $("edges"), cOver = $("overlay");
  function sizeCanvas(c, w, h) {
    const r = window.devicePixelRatio || 1;
    c.width = Math.round(w * r); c.height = Math.round(h * r);
    c.style.width = w + "px"; c.style.height = h + "px";
    const g = c.getContext("2d"); g.setTransform(r, 0, 0, r, 0, 0); return g;
  }
  function glyphPath(p, k, x, y, s) {
    if (k === 0) { p.moveTo(x + s, y); p.arc(x, y, s, 0, 2 * Math.PI); }
    else if (k === 1) { p.moveTo(x, y - s * 1.3); p.lineTo(x + s * 1.3, y); p.lineTo(x, y + s * 1.3); p.lineTo(x - s * 1.3, y); p.closePath(); }
    else if (k === 2) { p.rect(x - s, y - s, 2 * s, 2 * s); }
    else { p.moveTo(x, y - s * 1.4); p.lineTo(x + s * 1.3, y + s); p.lineTo(x - s * 1.3, y + s); p.closePath(); }
  }
  const widthOf = (pc) => 0.4 + 3 * Math.sqrt(Math.min(1, Math.abs(pc)));
  function drawBase() {
    const g = sizeCanvas(cEdges, G.w, G.h);
    g.fillStyle = "#fff"; g.fillRect(0, 0, G.w, G.h);
    // row bands and labels
    g.font = "11px sans-serif"; g.textBaseline = "middle"; g.textAlign = "right";
    for (let r = 0; r < nRows; r++) {
      g.fillStyle = r % 2 ? "#fafafa" : "#fff";
      const rh = (G.h - G.top - G.bottom) / nRows;
      g.fillRect(G.left, G.rowY[r] - rh / 2, G.w - G.left - G.right, rh);
      g.fillStyle = "#666"; g.fillText(rowName(r), G.left - 6, G.rowY[r]);
    }
    g.strokeStyle = "#eee"; g.lineWidth = 1;
    for (let c = 0; c <= T; c++) { g.beginPath(); g.moveTo(G.colX[c], G.top); g.lineTo(G.colX[c], G.h - G.bottom); g.stroke(); }
    // prompt tokens under their columns
    g.save(); g.fillStyle = "#333"; g.textAlign = "right"; g.font = "11px monospace";
    for (let c = 0; c < T; c++) {
      g.save(); g.translate((G.colX[c] + G.colX[c + 1]) / 2, G.h - G.bottom + 8); g.rotate(-Math.PI / 4);
      const v = showToken(tokens[c]), t = v.length > 14 ? v.slice(0, 13) + "…" : v;
      g.fillText(t, 0, 0); g.restore();
    }
    g.restore();
    // all visible edges, batched into paths by sign and width
    if (S.allEdges) {
      const paths = [];
      for (let b = 0; b < 8; b++) paths.push(new Path2D());
      let nDrawn = 0;
      for (let k = 0; k < M; k++) {
        const s = LI[2 * k], t = LI[2 * k + 1];
        if (!vis[s] || !vis[t]) continue;
        nDrawn++;
        const a = Math.abs(pct[k]), b = (LW[k] < 0 ? 4 : 0) + (a > 0.3 ? 3 : a > 0.1 ? 2 : a > 0.02 ? 1 : 0);
        paths[b].moveTo(X[s], Y[s]); paths[b].lineTo(X[t], Y[t]);
      }
      // faint enough that tens of thousands of edges stay a texture, not a solid fill
      const widths = [0.4, 0.8, 1.5, 2.5], fade = Math.min(1, Math.max(0.12, 1500 / Math.max(1, nDrawn)));
      for (let b = 0; b < 8; b++) {
        g.strokeStyle = b < 4 ? POS : NEG; g.globalAlpha = (0.12 + 0.1 * (b % 4)) * fade; g.lineWidth = widths[b % 4];
        // dashes cost a lot in software rasterisers: the faint background of a big graph draws
        // negative edges solid (its highlighted edges, the ones read, stay dashed)
        g.setLineDash(b < 4 || nDrawn > 5000 ? [] : [4, 3]); g.stroke(paths[b]);
      }
      g.setLineDash([]); g.globalAlpha = 1;
    }
    // nodes, one path per glyph kind
    const pin = pinnedSet();
    for (let k = 0; k < 4; k++) {
      const p = new Path2D();
      for (let i = 0; i < N; i++) if (vis[i] && kind(i) === k) glyphPath(p, k, X[i], Y[i], 3.6);
      g.fillStyle = KIND_FILL[k]; g.fill(p);
    }
    const pp = new Path2D();
    for (const i of pin) if (vis[i]) glyphPath(pp, kind(i), X[i], Y[i], 5.5);
    g.strokeStyle = "#7b3294"; g.lineWidth = 2; g.stroke(pp);
    // logit tokens above the top row
    g.fillStyle = "#222"; g.textAlign = "left"; g.font = "10px monospace";
    for (let i = 0; i < N; i++) if (kind(i) === 3 && vis[i]) {
      const t = logitToken(i);
      g.save(); g.translate(X[i] - 2, Y[i] - 8); g.rotate(-Math.PI / 3);
      const v = showToken(t); g.fillText(v.length > 10 ? v.slice(0, 9) + "…" : v, 0, 0); g.restore();
    }
  }
  function drawOverlay() {
    const g = sizeCanvas(cOver, G.w, G.h);
    const focus = S.hover >= 0 ? S.hover : S.clicked;
    const drawLinks = (n, strong) => {
      for (const dir of [0, 1]) {
        const a = dir ? outStart[n] : inStart[n], b = dir ? outStart[n + 1] : inStart[n + 1];
        for (let j = a; j < b; j++) {
          const k = dir ? outLink[j] : j, s = LI[2 * k], t = LI[2 * k + 1];
          if (!vis[s] || !vis[t]) continue;
          g.strokeStyle = LW[k] >= 0 ? POS : NEG; g.setLineDash(LW[k] >= 0 ? [] : [5, 3]);
          g.globalAlpha = strong ? 0.85 : 0.45; g.lineWidth = widthOf(pct[k]) * (strong ? 1.2 : 0.8);
          g.beginPath(); g.moveTo(X[s], Y[s]); g.lineTo(X[t], Y[t]); g.stroke();
          const o = s === n ? t : s;
          g.setLineDash([]); g.globalAlpha = 1; g.fillStyle = LW[k] >= 0 ? POS : NEG;
          const p = new Path2D(); glyphPath(p, kind(o), X[o], Y[o], 4.2); g.fill(p);
        }
      }
      g.setLineDash([]); g.globalAlpha = 1;
    };
    if (S.clicked >= 0 && vis[S.clicked]) drawLinks(S.clicked, S.hover < 0 || S.hover === S.clicked);
    if (S.hover >= 0 && S.hover !== S.clicked && vis[S.hover]) drawLinks(S.hover, true);
    for (const i of S.search) if (vis[i]) { g.strokeStyle = "#e0a800"; g.lineWidth = 3; g.beginPath(); g.arc(X[i], Y[i], 8, 0, 7); g.stroke(); }
    for (const [n, col, r] of [[S.clicked, "#000", 7], [focus, "#000", 6]]) {
      if (n < 0 || !vis[n]) continue;
      g.strokeStyle = col; g.lineWidth = 2; const p = new Path2D(); glyphPath(p, kind(n), X[n], Y[n], r); g.stroke(p);
    }
  }
  let firstFrameMs = null;
  function redrawAll() {
    computeVisible(); layout(); drawBase(); drawOverlay();
    if (firstFrameMs === null) firstFrameMs = performance.now();
  }

  // ---- header ------------------------------------------------------------------------------------
  function tokSpan(t, extra) { return el("span", Object.assign({ class: "tok" }, extra || {}), showToken(t)); }
  function renderHeader() {
    $("title").textContent = meta.slug || "attribution graph";
    $("counts").textContent = N + " nodes · " + M + " links · " + T + " tokens";
    const pr = $("prompt"); pr.replaceChildren();
    tokens.forEach((t, c) => pr.append(tokSpan(t, { title: "position " + c, "data-ctx": c })));
    const m = $("meta"); m.replaceChildren();
    const item = (k, v) => m.append(el("span", null, el("b", null, k + ": "), el("span", { class: "bidi" }, v)));
    const sc = D.scores || {};
    let comp = null;
    if (typeof sc.replacement !== "number" || typeof sc.completeness !== "number") comp = computeScores();
    const scoreSpan = (name, v, computed) => m.append(el("span", { class: "score", title: computed ? "computed in the page from this (pruned) graph; the unpruned graph's score is not in the JSON" : "from the graph JSON (unpruned graph)" },
      name + " " + fmt(v) + (computed ? " (of this pruned graph)" : "")));
    scoreSpan("replacement", typeof sc.replacement === "number" ? sc.replacement : comp.replacement, typeof sc.replacement !== "number");
    scoreSpan("completeness", typeof sc.completeness === "number" ? sc.completeness : comp.completeness, typeof sc.completeness !== "number");
    item("scan", meta.scan);
    const info = meta.info || {};
    if (info.model_name || meta.model_name) item("model", String(info.model_name || meta.model_name));
    if (info.clt_name || meta.clt_name) item("CLT", String(info.clt_name || meta.clt_name));
    if (Array.isArray(meta.transcoder_list) && meta.transcoder_list.length) item("transcoders", meta.transcoder_list.join(", "));
    for (const key of ["generation_settings", "pruning_settings"]) {
      const o = meta[key];
      if (o && typeof o === "object") item(key.replace("_", " "), Object.entries(o).map(([a, b]) => a + "=" + (typeof b === "object" ? JSON.stringify(b) : b)).join(" "));
    }
    if (typeof meta.node_threshold === "number") item("node threshold", String(meta.node_threshold));
    if (info.generator && info.generator.name) item("generator", String(info.generator.name) + " " + String(info.generator.version || ""));
    item("source", String(D.source));
  }
  // circuit-tracer's compute_graph_scores over the graph on this page (its links only).
  function computeScores() {
    const w = new Float64Array(N), I = new Float64Array(N);
    for (let i = 0; i < N; i++) if (kind(i) === 3) w[i] = Number.isNaN(prob(i)) ? 0 : prob(i);
    let v = w.slice();
    for (let it = 0; it < 1000; it++) {
      const nx = new Float64Array(N); let any = false;
      for (let k = 0; k < M; k++) {
        const t = LI[2 * k + 1]; if (v[t] === 0) continue;
        nx[LI[2 * k]] += (v[t] * Math.abs(LW[k])) / Math.max(inAbs[t], 1e-10); any = true;
      }
      if (!any) break;
      for (let i = 0; i < N; i++) I[i] += nx[i];
      v = nx;
    }
    let it = 0, ie = 0, num = 0, den = 0;
    for (let i = 0; i < N; i++) { if (kind(i) === 2) it += I[i]; if (kind(i) === 1) ie += I[i]; }
    for (let n = 0; n < N; n++) {
      let errShare = 0;
      for (let k = inStart[n]; k < inStart[n + 1]; k++) if (kind(LI[2 * k]) === 1) errShare += Math.abs(LW[k]) / Math.max(inAbs[n], 1e-10);
      num += (1 - errShare) * (I[n] + w[n]); den += I[n] + w[n];
    }
    return { replacement: it + ie > 0 ? it / (it + ie) : NaN, completeness: den > 0 ? num / den : NaN };
  }

  // ---- node panel --------------------------------------------------------------------------------
  const LIST_MAX = 40;
  function nodeButton(n, k, dir) {
    const w = LW[k], p = pct[k], c = ctx(n), cur = S.clicked >= 0 ? ctx(S.clicked) : c;
    // the row shows the layer and an arrow when the node sits at another position; the title has the rest
    const where = (c < cur ? "←" : c > cur ? "→" : "") + rowName(row(n));
    const b = el("button", { type: "button", class: w >= 0 ? "pos" : "neg", "data-id": ids[n],
      title: label(n) + "\n" + (dir ? "output" : "input") + " weight " + signed(w, 5) + ", " + signed(p * 100, 1) +
        "% of the target's input\n" + rowName(row(n)) + ' at position ' + c + ' "' + showToken(tokens[c]) + '" · ' + ids[n] },
      el("span", { class: "w" }, signed(p, 3)), el("span", { class: "glyph" }, GLYPH[kind(n)]), el("span", { class: "lbl" }, label(n)),
      el("span", { class: "muted bidi" }, where));
    b.addEventListener("click", (ev) => { if (ev.ctrlKey || ev.metaKey) togglePin(n); else select(n); });
    b.addEventListener("focus", () => setHover(n));
    b.addEventListener("mouseenter", () => setHover(n));
    b.addEventListener("blur", () => setHover(-1));
    b.addEventListener("mouseleave", () => setHover(-1));
    return el("li", null, b);
  }
  function rankedList(n, dir) {
    const ks = [];
    if (dir === 0) for (let k = inStart[n]; k < inStart[n + 1]; k++) ks.push(k);
    else { for (let j = outStart[n]; j < outStart[n + 1]; j++) ks.push(outLink[j]); ks.sort((a, b) => Math.abs(pct[b]) - Math.abs(pct[a])); }
    const ol = el("ol", { class: "rank", "aria-label": dir ? "outputs" : "inputs" });
    for (const k of ks.slice(0, LIST_MAX)) ol.append(nodeButton(dir ? LI[2 * k + 1] : LI[2 * k], k, dir));
    const head = el("h3", null, (dir ? "Outputs" : "Inputs") + " ", el("span", { class: "muted" }, ks.length > LIST_MAX ? "top " + LIST_MAX + " of " + ks.length : String(ks.length)));
    return el("div", null, head, ol);
  }
  function renderNodePanel() {
    const P = $("node-panel"), n = S.clicked;
    P.replaceChildren();
    if (n < 0) { P.append(el("p", { class: "muted" }, "Hover or click a node. Ctrl/Cmd-click pins it; hold G and click pinned nodes to group them.")); renderFeaturePanel(); return; }
    const k = kind(n), pinned = S.pinned.includes(n);
    const head = el("div", { class: "node-head" }, el("span", { class: "glyph" }, GLYPH[k]), el("span", { class: "lbl", id: "node-label" }, label(n)));
    P.append(head);
    const facts = [KIND_NAME[k], rowName(row(n)), 'pos ' + ctx(n) + ' "' + tokens[ctx(n)] + '"', "id " + ids[n]];
    if (k === 0 && fidx(n) >= 0) facts.push("feature " + cantor(flayer(n), fidx(n)));
    if (!Number.isNaN(act(n))) facts.push("activation " + fmt(act(n)));
    if (!Number.isNaN(infl(n))) facts.push("influence " + fmt(infl(n)));
    if (k === 3 && !Number.isNaN(prob(n))) facts.push("p " + fmt(prob(n)));
    if (flags(n) & 2) facts.push("duplicate node_id: links go to the first node with it");
    P.append(el("div", { class: "muted bidi" }, facts.join(" · ")));
    P.append(el("button", { type: "button", id: "pin-btn", onclick: () => togglePin(n) }, pinned ? "unpin" : "pin to subgraph"));
    P.append(el("div", { class: "cols" }, rankedList(n, 0), rankedList(n, 1)));
    renderFeaturePanel();
  }

  // ---- feature panel -------------------------------------------------------------------------------
  function actColor(a, max) {
    const x = Math.max(0, Math.min(1, max > 0 ? a / max : 0));
    return "rgba(255,140,0," + (x * 0.85).toFixed(3) + ")";
  }
  function renderFeaturePanel() {
    const P = $("feature-panel"), n = S.clicked;
    P.replaceChildren();
    if (n < 0 || kind(n) !== 0 || fidx(n) < 0) return;
    const key = fkey(n), F = FEAT[key], X_ = EXPL[key];
    P.append(el("h2", null, "Feature L" + flayer(n) + " #" + fidx(n) + " ", el("span", { class: "muted" }, "(id " + cantor(flayer(n), fidx(n)) + ")")));
    if (X_) {
      if (X_.label) P.append(el("div", { class: "lbl" }, el("b", null, "label: "), el("span", { class: "bidi" }, X_.label)));
      if (X_.explanation) P.append(el("p", { class: "expl" }, X_.explanation));
      const badges = el("div", { class: "badges" });
      for (const [name, v] of Object.entries(X_.scores || {})) {
        let txt = null;
        if (typeof v === "number") txt = fmt(v);
        else if (v && typeof v === "object") {
          const pick = ["balanced_accuracy", "auroc", "f1", "accuracy", "score"].find((q) => typeof v[q] === "number");
          if (pick) txt = pick.replace("balanced_accuracy", "bal. acc.") + " " + fmt(v[pick]);
        }
        if (txt) badges.append(el("span", { title: JSON.stringify(v) }, name + ": " + txt));
      }
      if (X_.explainer) badges.append(el("span", { class: "muted" }, "by " + X_.explainer));
      P.append(badges);
    }
    // the feature's activation on this prompt, from its nodes in the graph
    const acts = new Float64Array(T); let amax = 0;
    for (let i = 0; i < N; i++) if (kind(i) === 0 && flayer(i) === flayer(n) && fidx(i) === fidx(n) && !Number.isNaN(act(i))) { acts[ctx(i)] = Math.max(acts[ctx(i)], act(i)); }
    for (let c = 0; c < T; c++) amax = Math.max(amax, acts[c]);
    const scale = F && typeof F.act_max === "number" && F.act_max > 0 ? F.act_max : amax;
    const pr = el("div", { class: "ex", id: "prompt-acts" });
    tokens.forEach((t, c) => pr.append(el("span", { title: acts[c] ? "activation " + fmt(acts[c]) : "not in the graph", style: "background:" + actColor(acts[c], scale) }, showToken(t))));
    P.append(el("h3", null, "On this prompt"), pr);
    if (!F) { P.append(el("p", { class: "muted" }, "No feature file for " + key + " (graph2html --features DIR).")); return; }
    const stats = [];
    for (const [k, name] of [["density", "density"], ["activation_frequency", "frequency"], ["max_activation", "max act"], ["mean_activation", "mean act"], ["act_max", "act_max"]])
      if (typeof F[k] === "number") stats.push(name + " " + (k === "density" || k === "activation_frequency" ? (100 * F[k]).toPrecision(3) + "%" : fmt(F[k])));
    if (F.dead) stats.push("dead"); if (F.always_on) stats.push("always on");
    if (stats.length) P.append(el("div", { class: "muted" }, stats.join(" · ")));
    if (Array.isArray(F.histogram) && F.histogram.length) P.append(histogram(F, act(n)));
    const chips = (cls, toks, vals) => el("div", { class: cls }, ...toks.map((t, j) => el("span", { title: vals && typeof vals[j] === "number" ? signed(vals[j]) : "" }, showToken(t))));
    if (F.top_logits || F.bottom_logits)
      P.append(el("div", { class: "logits" },
        el("div", null, el("h3", null, "Promotes"), chips("up", F.top_logits || [], F.top_logit_values)),
        el("div", null, el("h3", null, "Suppresses"), chips("down", F.bottom_logits || [], F.bottom_logit_values))));
    if (Array.isArray(F.next_tokens) && F.next_tokens.length) P.append(el("h3", null, "Next tokens after the max"), el("div", { class: "logits" }, chips("up", F.next_tokens, F.next_token_counts)));
    const amaxF = typeof F.act_max === "number" && F.act_max > 0 ? F.act_max : null;
    for (const grp of F.examples_quantiles || []) {
      P.append(el("h3", null, grp.quantile_name || "examples"));
      for (const ex of grp.examples || []) {
        const a = ex.tokens_acts_list, t = ex.tokens;
        let im = typeof ex.train_token_ind === "number" ? ex.train_token_ind : 0;
        if (!(im >= 0 && im < t.length)) im = 0;
        let mx = 0; a.forEach((v, j) => { if (v > mx) { mx = v; if (typeof ex.train_token_ind !== "number") im = j; } });
        const lo = Math.max(0, im - 20), hi = Math.min(t.length, im + 10), sc = amaxF || mx;
        const row_ = el("div", { class: "ex" + (ex.is_repeated_datapoint ? " rep" : "") });
        for (let j = lo; j < hi; j++) row_.append(el("span", { class: j === im ? "max" : "", title: fmt(a[j]), style: "background:" + actColor(a[j], sc) }, showToken(t[j])));
        P.append(row_);
      }
    }
  }
  function histogram(F, cur) {
    const h = F.histogram, n = h.length, W = 380, H = 70, mx = Math.max(...h, 1e-12);
    const lo = typeof F.act_min === "number" ? F.act_min : 0, hi = typeof F.act_max === "number" ? F.act_max : 1;
    const s = svgEl("svg", { class: "hist", width: W, height: H + 14, role: "img", "aria-label": "activation histogram" });
    h.forEach((v, j) => { const bh = (Math.log1p(v) / Math.log1p(mx)) * H; s.append(svgEl("rect", { x: (j * W) / n, y: H - bh, width: Math.max(1, W / n - 1), height: bh })); });
    if (!Number.isNaN(cur) && hi > lo) { const x = ((cur - lo) / (hi - lo)) * W; s.append(svgEl("line", { class: "cur", x1: x, x2: x, y1: 0, y2: H })); }
    const t1 = svgEl("text", { x: 0, y: H + 12, "font-size": 10 }); t1.textContent = fmt(lo, 2);
    const t2 = svgEl("text", { x: W, y: H + 12, "font-size": 10, "text-anchor": "end" }); t2.textContent = fmt(hi, 2) + " (log counts; red: this node)";
    s.append(t1, t2);
    return el("div", null, el("h3", null, "Activation histogram"), s);
  }

  // ---- subgraph: pinned nodes and supernodes ------------------------------------------------------------
  const superOf = (i) => S.supernodes.find((s) => s.indexOf(i, 1) > 0);
  function togglePin(n) {
    const j = S.pinned.indexOf(n);
    if (j >= 0) { S.pinned.splice(j, 1); S.supernodes = S.supernodes.map((s) => s.filter((x, q) => q === 0 || x !== n)).filter((s) => s.length > 1); }
    else S.pinned.push(n);
    changed(true);
  }
  // the anchors' rule: a new group takes the label of a member's supernode, else the first label
  function group(members) {
    members = [...new Set(members)].filter((i) => i >= 0);
    if (!members.length) return;
    let lab = null;
    for (const i of members) { const s = superOf(i); if (s && lab === null) lab = s[0]; }
    const all = new Set(members);
    S.supernodes = S.supernodes.filter((s) => { if (s.slice(1).some((i) => all.has(i))) { s.slice(1).forEach((i) => all.add(i)); return false; } return true; });
    for (const i of all) if (!S.pinned.includes(i)) S.pinned.push(i);
    S.supernodes.push([lab !== null ? lab : label([...all][0]), ...all]);
    changed(true);
  }
  function renderSubgraph() {
    $("sg-count").textContent = S.pinned.length + " pinned, " + S.supernodes.length + " supernodes";
    const L = $("sg-list"); L.replaceChildren();
    S.supernodes.forEach((s, si) => {
      const inp = el("input", { type: "text", "aria-label": "supernode label" }); inp.value = s[0];
      inp.addEventListener("change", () => { s[0] = inp.value; changed(false); });
      const box = el("div", { class: "super" }, el("div", { class: "row" }, inp,
        el("button", { type: "button", title: "ungroup", onclick: () => { S.supernodes.splice(si, 1); changed(true); } }, "ungroup ×")));
      for (const i of s.slice(1)) box.append(el("div", { class: "row" }, el("span", { class: "glyph" }, GLYPH[kind(i)]), el("button", { type: "button", class: "link", onclick: () => select(i) }, label(i))));
      L.append(box);
    });
    for (const i of S.pinned) {
      if (superOf(i)) continue;
      L.append(el("div", { class: "row" }, el("input", { type: "checkbox", "data-i": i, "aria-label": "check to group" }), el("span", { class: "glyph" }, GLYPH[kind(i)]),
        el("button", { type: "button", class: "link", onclick: () => select(i) }, label(i)),
        el("button", { type: "button", title: "unpin", "aria-label": "unpin", onclick: () => togglePin(i) }, "×")));
    }
    drawSubgraph();
  }
  function drawSubgraph() {
    const c = $("sg-canvas"), w = Math.max(200, c.clientWidth), h = 300, g = sizeCanvas(c, w, h);
    g.fillStyle = "#fff"; g.fillRect(0, 0, w, h);
    const units = [], unitOf = new Map();
    for (const s of S.supernodes) { const u = { label: s[0], members: s.slice(1), sup: true }; units.push(u); for (const i of u.members) unitOf.set(i, u); }
    for (const i of S.pinned) if (!unitOf.has(i)) { const u = { label: label(i), members: [i], sup: false }; units.push(u); unitOf.set(i, u); }
    if (!units.length) { g.fillStyle = "#888"; g.font = "12px sans-serif"; g.fillText("Ctrl/Cmd-click nodes to pin them here.", 10, 20); return; }
    for (const u of units) { u.c = u.members.reduce((a, i) => a + ctx(i), 0) / u.members.length; u.r = u.members.reduce((a, i) => a + row(i), 0) / u.members.length; }
    const rows = [...new Set(units.map((u) => Math.round(u.r)))].sort((a, b) => a - b);
    for (const u of units) {
      u.y = h - 24 - (rows.indexOf(Math.round(u.r)) + 0.5) * ((h - 40) / rows.length);
      u.x = 50 + (u.c / Math.max(1, T - 1)) * (w - 100);
    }
    for (const r of rows) { // push apart units on one row
      const us = units.filter((u) => Math.round(u.r) === r).sort((a, b) => a.x - b.x);
      for (let j = 1; j < us.length; j++) if (us[j].x - us[j - 1].x < 90) us[j].x = us[j - 1].x + 90;
      const over = us.length ? us[us.length - 1].x - (w - 50) : 0;
      if (over > 0) us.forEach((u) => (u.x -= over));
    }
    // edges between units: summed weights, normalised by the target's input from outside its unit
    const agg = new Map();
    for (const u of units) for (const t of u.members) for (let k = inStart[t]; k < inStart[t + 1]; k++) {
      const su = unitOf.get(LI[2 * k]); if (!su || su === u) continue;
      const key = units.indexOf(su) + ">" + units.indexOf(u); agg.set(key, (agg.get(key) || 0) + LW[k]);
    }
    const inTot = new Map();
    for (const u of units) { let s = 0; for (const t of u.members) for (let k = inStart[t]; k < inStart[t + 1]; k++) if (unitOf.get(LI[2 * k]) !== u) s += Math.abs(LW[k]); inTot.set(u, s); }
    for (const [key, wsum] of agg) {
      const [a, b] = key.split(">").map(Number), sa = units[a], tb = units[b], p = wsum / Math.max(inTot.get(tb), 1e-10);
      g.strokeStyle = wsum >= 0 ? POS : NEG; g.setLineDash(wsum >= 0 ? [] : [5, 3]); g.lineWidth = widthOf(p) * 1.3; g.globalAlpha = 0.8;
      g.beginPath(); g.moveTo(sa.x, sa.y); g.lineTo(tb.x, tb.y); g.stroke();
      const mx = (sa.x + tb.x) / 2, my = (sa.y + tb.y) / 2, ang = Math.atan2(tb.y - sa.y, tb.x - sa.x);
      g.setLineDash([]); g.fillStyle = g.strokeStyle; g.beginPath(); g.moveTo(mx + 6 * Math.cos(ang), my + 6 * Math.sin(ang));
      g.lineTo(mx + 6 * Math.cos(ang + 2.5), my + 6 * Math.sin(ang + 2.5)); g.lineTo(mx + 6 * Math.cos(ang - 2.5), my + 6 * Math.sin(ang - 2.5)); g.fill();
    }
    g.globalAlpha = 1; g.setLineDash([]);
    g.font = "11px sans-serif"; g.textAlign = "center";
    for (const u of units) {
      const p = new Path2D();
      if (u.sup) { p.roundRect ? p.roundRect(u.x - 10, u.y - 7, 20, 14, 4) : p.rect(u.x - 10, u.y - 7, 20, 14); }
      else glyphPath(p, kind(u.members[0]), u.x, u.y, 5);
      g.fillStyle = u.sup ? "#e9dcf5" : KIND_FILL[kind(u.members[0])]; g.fill(p);
      g.strokeStyle = u.members.includes(S.clicked) ? "#000" : "#7b3294"; g.lineWidth = u.sup ? 1.5 : 1; g.stroke(p);
      g.fillStyle = "#222"; const t = u.label.length > 22 ? u.label.slice(0, 21) + "…" : u.label;
      g.fillText((u.sup ? "[" + u.members.length + "] " : "") + t, u.x, u.y + 18);
    }
  }

  // ---- export ------------------------------------------------------------------------------------------
  function nodeJson(i) {
    const k = kind(i), o = { node_id: ids[i], feature: null, layer: "", ctx_idx: ctx(i), feature_type: FEATURE_TYPE[k], jsNodeId: ids[i], clerp: clerps[i] };
    if (k === 0) { o.layer = String(flayer(i)); o.feature = fidx(i) >= 0 ? cantor(flayer(i), fidx(i)) : null; if (fidx(i) >= 0) o.jsNodeId = flayer(i) + "_" + fidx(i) + "-0"; }
    else if (k === 1) { o.layer = String(flayer(i)); o.feature = -1; }
    else if (k === 2) { o.layer = "E"; o.feature = ctx(i); }
    else { o.layer = String(row(i) - 1); o.feature = fidx(i) >= 0 ? fidx(i) : null; o.token_prob = Number.isNaN(prob(i)) ? 0 : prob(i); o.is_target_logit = !!(flags(i) & 1); }
    if (!Number.isNaN(infl(i))) o.influence = infl(i);
    if (!Number.isNaN(act(i))) o.activation = act(i);
    return o;
  }
  // The pinned subgraph (or, with nothing pinned, the graph as pruned on screen) as graph JSON that
  // graph2html, circuit-tracer's server and Neuronpedia read, with the page's state in qParams.
  function exportSubgraph() {
    const keep = new Uint8Array(N);
    if (S.pinned.length) for (const i of S.pinned) keep[i] = 1; else for (let i = 0; i < N; i++) keep[i] = vis[i];
    const nodes = [], links = [];
    for (let i = 0; i < N; i++) if (keep[i]) nodes.push(nodeJson(i));
    for (let k = 0; k < M; k++) if (keep[LI[2 * k]] && keep[LI[2 * k + 1]]) links.push({ source: ids[LI[2 * k]], target: ids[LI[2 * k + 1]], weight: LW[k] });
    const md = Object.assign({}, meta, { slug: (meta.slug || "graph") + (S.pinned.length ? "-subgraph" : "-pruned") });
    return { metadata: md, qParams: { pinnedIds: S.pinned.map((i) => ids[i]), supernodes: S.supernodes.map((s) => [s[0], ...s.slice(1).map((i) => ids[i])]),
      linkType: "both", clickedId: S.clicked >= 0 ? ids[S.clicked] : "", sg_pos: "" }, nodes, links };
  }
  function download(obj, name) {
    const url = URL.createObjectURL(new Blob([JSON.stringify(obj)], { type: "application/json" }));
    const a = el("a", { href: url, download: name }); document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // ---- search ------------------------------------------------------------------------------------------
  // a number: a feature id (Cantor pair) or node index; "L_I" / "L/I" / "L:I": layer and index; else
  // a case-insensitive substring of the label, node_id or the node's token
  function search(q) {
    q = q.trim(); const out = [];
    if (!q) return out;
    const m = /^(\d+)\s*[_:/ ]\s*(\d+)$/.exec(q), num = /^\d+$/.test(q) ? Number(q) : null, lq = q.toLowerCase();
    for (let i = 0; i < N; i++) {
      const k = kind(i);
      let hit = ids[i] === q;
      if (!hit && m && k === 0) hit = flayer(i) === Number(m[1]) && fidx(i) === Number(m[2]);
      if (!hit && num !== null && k === 0 && fidx(i) >= 0) hit = cantor(flayer(i), fidx(i)) === num;
      if (!hit && !m && num === null) hit = label(i).toLowerCase().includes(lq) || ids[i].toLowerCase().includes(lq) || (k >= 2 && tokens[ctx(i)].toLowerCase().includes(lq));
      if (hit) out.push(i);
    }
    return out;
  }
  function renderSearch() {
    const R = $("search-results"); R.replaceChildren();
    $("search-count").textContent = $("search").value.trim() ? " " + S.search.length + " found" : "";
    for (const i of S.search.slice(0, 60)) R.append(el("button", { type: "button", class: "link", role: "option", onclick: () => select(i) }, GLYPH[kind(i)] + " " + label(i) + " ", el("span", { class: "muted" }, rowName(row(i)) + " @" + ctx(i))));
  }

  // ---- interaction -------------------------------------------------------------------------------------------
  function changed(layoutToo) {
    if (layoutToo) { computeVisible(); layout(); drawBase(); }
    drawOverlay(); renderNodePanel(); renderSubgraph(); saveHash();
  }
  function select(n) { S.clicked = n; changed(n >= 0 && !vis[n]); }
  function setHover(n) {
    if (S.hover === n) return; S.hover = n; drawOverlay();
    const tip = $("tooltip");
    if (n < 0 || !vis[n]) { tip.hidden = true; return; }
    tip.replaceChildren(el("b", { class: "bidi" }, label(n)), el("br"), el("span", { class: "muted" }, KIND_NAME[kind(n)] + " · " + rowName(row(n)) + " · " + ids[n] + (Number.isNaN(infl(n)) ? "" : " · infl " + fmt(infl(n)))));
    // the strongest three inputs and outputs, ranked, with their share of the target's input
    const outs = []; for (let j = outStart[n]; j < outStart[n + 1]; j++) outs.push(outLink[j]);
    outs.sort((a, b) => Math.abs(pct[b]) - Math.abs(pct[a]));
    const ins = []; for (let k = inStart[n]; k < inStart[n + 1] && ins.length < 3; k++) ins.push(k);
    for (const [name, ks, end] of [["in", ins, 0], ["out", outs.slice(0, 3), 1]])
      for (const k of ks) tip.append(el("div", { class: pct[k] >= 0 ? "tip-pos" : "tip-neg" }, name + " " + signed(pct[k]) + " " + GLYPH[kind(LI[2 * k + end])] + " " + label(LI[2 * k + end])));
    tip.hidden = false;
    tip.style.left = Math.min(G.w - 200, X[n] + 12) + "px"; tip.style.top = Math.max(0, Y[n] - 40) + "px";
  }
  let gHeld = false, pendingGroup = [];
  function canvasPoint(ev) { const r = cOver.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; }
  function wire() {
    cOver.addEventListener("mousemove", (ev) => { const [x, y] = canvasPoint(ev); setHover(nodeAt(x, y)); });
    cOver.addEventListener("mouseleave", () => setHover(-1));
    cOver.addEventListener("click", (ev) => {
      const [x, y] = canvasPoint(ev), n = nodeAt(x, y);
      if (n >= 0 && (ev.ctrlKey || ev.metaKey)) togglePin(n);
      else if (n >= 0 && gHeld) { if (!pendingGroup.includes(n)) pendingGroup.push(n); if (!S.pinned.includes(n)) togglePin(n); }
      else select(n);
    });
    // keyboard on the focused graph: ↓ strongest input, ↑ strongest output, ← → the neighbouring
    // node on the same layer, Enter or P pins, Esc clears
    const wrap = $("graph-wrap");
    wrap.addEventListener("keydown", (ev) => {
      const n = S.clicked >= 0 ? S.clicked : -1;
      let next = -1;
      if (ev.key === "ArrowDown" && n >= 0) { for (let k = inStart[n]; k < inStart[n + 1] && next < 0; k++) if (vis[LI[2 * k]]) next = LI[2 * k]; }
      else if (ev.key === "ArrowUp" && n >= 0) {
        let bestP = -1; for (let j = outStart[n]; j < outStart[n + 1]; j++) { const k = outLink[j]; if (vis[LI[2 * k + 1]] && Math.abs(pct[k]) > bestP) { bestP = Math.abs(pct[k]); next = LI[2 * k + 1]; } }
      } else if ((ev.key === "ArrowLeft" || ev.key === "ArrowRight") ) {
        const dir = ev.key === "ArrowRight" ? 1 : -1;
        if (n < 0) { for (let i = 0; i < N; i++) if (vis[i] && kind(i) === 3) { next = i; break; } }
        else { let bd = Infinity; for (let i = 0; i < N; i++) if (vis[i] && i !== n && row(i) === row(n)) { const d = (X[i] - X[n]) * dir; if (d > 0 && d < bd) { bd = d; next = i; } } }
      } else if ((ev.key === "Enter" || ev.key === "p") && n >= 0) { togglePin(n); ev.preventDefault(); return; }
      else return;
      ev.preventDefault();
      if (next >= 0) select(next);
    });
    window.addEventListener("keydown", (ev) => {
      const typing = ev.target && (ev.target.tagName === "INPUT" || ev.target.tagName === "TEXTAREA");
      if (ev.key === "Escape") { S.clicked = -1; S.search = []; $("search").value = ""; renderSearch(); changed(false); }
      else if ((ev.key === "g" || ev.key === "G") && !typing) gHeld = true;
    });
    window.addEventListener("keyup", (ev) => {
      if (ev.key === "g" || ev.key === "G") { gHeld = false; if (pendingGroup.length) group(pendingGroup); pendingGroup = []; }
    });
    const pr = $("prune");
    pr.value = S.thr; $("prune-val").textContent = fmt(S.thr, 2);
    let timer = 0;
    pr.addEventListener("input", () => { $("prune-val").textContent = fmt(+pr.value, 2); clearTimeout(timer); timer = setTimeout(() => { S.thr = +pr.value; changed(true); }, 120); });
    $("all-edges").addEventListener("change", (ev) => { S.allEdges = ev.target.checked; drawBase(); });
    let st = 0;
    $("search").addEventListener("input", () => { clearTimeout(st); st = setTimeout(() => { S.search = search($("search").value); renderSearch(); drawOverlay(); }, 150); });
    $("search").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { S.search = search($("search").value); renderSearch(); if (S.search.length) select(S.search[0]); } });
    $("clear").addEventListener("click", () => { S.clicked = -1; changed(false); });
    $("export").addEventListener("click", () => download(exportSubgraph(), (meta.slug || "graph") + "-subgraph.json"));
    $("group").addEventListener("click", () => group([...document.querySelectorAll("#sg-list input[type=checkbox]:checked")].map((c) => +c.getAttribute("data-i"))));
    $("unpin-all").addEventListener("click", () => { S.pinned = []; S.supernodes = []; changed(true); });
    window.addEventListener("hashchange", () => { if (location.hash.slice(1) === lastHash) return; applyState(parseState(location.hash)); pr.value = S.thr; $("prune-val").textContent = fmt(S.thr, 2); changed(true); });
    let rt = 0;
    window.addEventListener("resize", () => { clearTimeout(rt); rt = setTimeout(() => { layout(); drawBase(); drawOverlay(); drawSubgraph(); }, 100); });
  }

  // ---- start -------------------------------------------------------------------------------------------
  const hashStr = location.hash.replace(/^#/, "");
  const selftest = /(^|&)selftest=1(&|$)/.test(hashStr);
  const cleanHash = hashStr.split("&").filter((p) => !p.startsWith("selftest=")).join("&");
  if (cleanHash) applyState(parseState(cleanHash));
  else if (D.qParams) {
    const q = D.qParams, p = new URLSearchParams();
    if (Array.isArray(q.pinnedIds) && q.pinnedIds.length) p.set("pinnedIds", q.pinnedIds.join(","));
    if (Array.isArray(q.supernodes) && q.supernodes.length) p.set("supernodes", JSON.stringify(q.supernodes));
    if (q.clickedId) p.set("clickedId", q.clickedId);
    applyState(parseState(p.toString()));
  }
  renderHeader();
  wire();
  redrawAll();
  renderNodePanel();
  renderSubgraph();
  if (!selftest) saveHash();
  window.graph2html = { S, D, select, togglePin, group, search, exportSubgraph, stateToHash, parseState, applyState, nodeAt, X, Y, ids, label, pageErrors,
    firstFrameMs: () => firstFrameMs, LI, LW, pct, changed };
  if (selftest) runSelfTest();

  // ---- self-test (#selftest=1): what tests/test_graph2html.sh checks in headless Chromium ---------------
  function runSelfTest() {
    const out = [], ok = (name, cond, why) => out.push((cond ? "ok " : "FAIL ") + name + (cond ? "" : ": " + why));
    try {
      out.push("first_frame_ms " + firstFrameMs.toFixed(1));
      out.push("  (script starts " + tScript.toFixed(1) + " ms, data decoded " + tDecoded.toFixed(1) + " ms)");
      out.push("nodes " + N + " links " + M);
      // the graph was drawn: many non-white pixels on the base canvas
      const g = cEdges.getContext("2d"), img = g.getImageData(0, 0, cEdges.width, cEdges.height).data;
      let ink = 0; for (let p = 0; p < img.length; p += 16) if (img[p] < 200 || img[p + 1] < 200 || img[p + 2] < 200) ink++;
      ok("page_graph_drawn", ink > 100, "only " + ink + " dark pixels");
      // a scripted click on the node with the most inputs opens its panel with its strongest
      // inputs, recomputed here by a scan of the raw links
      let tgt = -1, best = -1;
      for (let i = 0; i < N; i++) { const c = inStart[i + 1] - inStart[i]; if (vis[i] && c > best) { best = c; tgt = i; } }
      S.clicked = -1;
      const r = cOver.getBoundingClientRect();
      const at = nodeAt(X[tgt], Y[tgt], 0.5);
      cOver.dispatchEvent(new MouseEvent("mousemove", { clientX: r.left + X[tgt], clientY: r.top + Y[tgt], bubbles: true }));
      const tip = $("tooltip"), tipRows = tip.querySelectorAll("div").length;
      ok("page_hover_tooltip", !tip.hidden && tipRows === Math.min(3, best) + Math.min(3, outStart[tgt + 1] - outStart[tgt]) &&
        tip.textContent.includes(label(LI[2 * inStart[tgt]])), "tooltip hidden or with " + tipRows + " rows");
      cOver.dispatchEvent(new MouseEvent("click", { clientX: r.left + X[tgt], clientY: r.top + Y[tgt], bubbles: true }));
      ok("page_click_selects", S.clicked === tgt || (at !== tgt && S.clicked === at), "clicked " + S.clicked + ", wanted " + tgt);
      const n = S.clicked, want = [];
      for (let k = 0; k < M; k++) if (LI[2 * k + 1] === n) want.push([Math.abs(LW[k]), ids[LI[2 * k]], LW[k]]);
      want.sort((a, b) => b[0] - a[0]);
      const btns = [...document.querySelectorAll('#node-panel ol[aria-label="inputs"] button')];
      ok("page_panel_inputs", btns.length === Math.min(LIST_MAX, want.length) && btns.length > 0 &&
        btns.every((b, j) => Math.abs(want[j][0] - Math.abs(LW[inStart[n] + j])) <= 1e-6 * want[0][0]) && btns[0].getAttribute("data-id") === want[0][1] &&
        $("node-label").textContent === label(n),
        "panel has " + btns.length + " inputs, first " + (btns[0] && btns[0].getAttribute("data-id")) + "; want " + want.length + ", first " + (want[0] && want[0][1]));
      const outs = document.querySelectorAll('#node-panel ol[aria-label="outputs"] button').length;
      ok("page_panel_outputs", outs === Math.min(LIST_MAX, outStart[n + 1] - outStart[n]), outs + " output rows");
      // keyboard: the ranked rows are focusable buttons and focus highlights the node
      // (a headless page without window focus may move activeElement without firing "focus": the
      // handler is then checked with the event itself, so the test does not depend on the machine's load)
      if (btns.length) {
        const id = idIndex.get(btns[0].getAttribute("data-id"));
        btns[0].focus();
        if (S.hover !== id) btns[0].dispatchEvent(new FocusEvent("focus"));
        ok("page_keyboard_focus", document.activeElement === btns[0] && S.hover === id,
          "focus did not reach the row (active " + (document.activeElement && document.activeElement.tagName) + ", hover " + S.hover + ")");
        btns[0].blur();
      }
      // keyboard on the graph: ↓ moves to the strongest input
      $("graph-wrap").dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
      ok("page_keyboard_graph", n === S.clicked ? inStart[n + 1] === inStart[n] : S.clicked === LI[2 * inStart[n]], "↓ went to " + S.clicked);
      select(n);
      // pin, group, hash round trip
      const pins = [];
      for (let i = 0; i < N && pins.length < 3; i++) if (vis[i] && kind(i) === 0) pins.push(i);
      for (const i of pins) togglePin(i);
      if (pins.length >= 2) group(pins.slice(0, 2));
      S.thr = 0.5; changed(true);
      const h = stateToHash(), st = parseState(h);
      ok("page_hash_roundtrip", JSON.stringify(st.pinned) === JSON.stringify(S.pinned) && JSON.stringify(st.supernodes) === JSON.stringify(S.supernodes) &&
        st.clicked === S.clicked && st.thr === S.thr && location.hash.slice(1) === h, "hash " + h + " / location " + location.hash);
      // interaction costs on this graph: a click (panel + overlay) and a pruning change (layout + redraw)
      let t = performance.now(); select(tgt); const clickMs = performance.now() - t;
      t = performance.now(); S.thr = 0.4; changed(true); S.thr = 0.5; changed(true); const pruneMs = (performance.now() - t) / 2;
      out.push("click_ms " + clickMs.toFixed(1) + " prune_ms " + pruneMs.toFixed(1));
      const ex = exportSubgraph();
      const exPre = el("pre", { id: "selftest-export", hidden: "" }, JSON.stringify(ex)); document.body.append(exPre);
      const pinIds = new Set(S.pinned.map((i) => ids[i]));
      ok("page_export", ex.nodes.length === S.pinned.length && ex.links.every((l) => pinIds.has(l.source) && pinIds.has(l.target)) &&
        ex.qParams.supernodes.length === S.supernodes.length, ex.nodes.length + " nodes exported");
      const sr = search(label(pins[0] !== undefined ? pins[0] : 0));
      ok("page_search", sr.includes(pins[0] !== undefined ? pins[0] : 0), "label search missed its node");
      // escaping: every token and label is text in the page, and nothing from the data ran
      const promptSpans = [...document.querySelectorAll("#prompt .tok")].map((s) => s.textContent);
      let labelsOk = true;
      for (let i = 0, seen = 0; i < N && labelsOk && seen < 200; i++) if (clerps[i]) { seen++; select(i); labelsOk = $("node-label").textContent === clerps[i]; }
      // a feature with an explanation and a feature file: its panel shows them as text
      let explOk = true;
      for (let i = 0, seen = 0; i < N && explOk && seen < 100; i++) if (kind(i) === 0 && EXPL[fkey(i)] && EXPL[fkey(i)].explanation) {
        seen++; select(i);
        const e = document.querySelector("#feature-panel .expl");
        explOk = !!e && e.textContent === EXPL[fkey(i)].explanation && (clerps[i] || $("node-label").textContent === (EXPL[fkey(i)].label || label(i)));
      }
      const handlers = [...document.querySelectorAll("*")].filter((e) => [...e.attributes].some((a) => /^on/i.test(a.name)));
      ok("page_escaping", JSON.stringify(promptSpans) === JSON.stringify(tokens.map(showToken)) && labelsOk && explOk && handlers.length === 0 &&
        document.querySelectorAll("img, iframe, object, embed, svg script, foreignObject").length === 0 &&
        document.scripts.length === 2 && window.__pwned === undefined,
        "tokens/labels/explanations not shown as text, or markup from the data got into the page (" + [labelsOk, explOk, handlers.length, window.__pwned] + ")");
      out.push("supernodes " + S.supernodes.length + " pinned " + S.pinned.length);
    } catch (err) {
      pageErrors.push("selftest: " + (err && err.stack ? err.stack : err));
    }
    ok("page_no_errors", pageErrors.length === 0, pageErrors.join(" | "));
    const pre = $("selftest"); pre.textContent = out.join("\n"); pre.hidden = false;
  }
})();
