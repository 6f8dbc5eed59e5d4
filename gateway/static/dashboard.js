// Live routing dashboard: polls /v1/gateway/stats and draws plain <canvas> charts. No libraries,
// no build step, nothing fetched from another origin (the page's CSP forbids it anyway).
// Rendered state is mirrored into data-* attributes so headless tests can assert on it.
"use strict";
(() => {
  // Ten categorical colours picked for a dark background: any two differ by at least 32 in CIELAB
  // (tests/observability/test_dashboard_palette.py checks it), so no two deployments look alike.
  // Past ten deployments the colours repeat with dashed lines.
  const PALETTE = ["#4c8dff", "#ff9f1c", "#2ecc71", "#ff4d4d", "#b57bff", "#f4f26a", "#26d9e8", "#ff66c4",
                   "#b0b0b0", "#c68642"];
  const params = new URLSearchParams(location.search);
  const intervalMs = Math.max(250, Number(params.get("interval")) || 2000);
  const view = { polls: 0, windowS: Math.max(10, Number(params.get("window")) || 900), colors: new Map(), data: null };

  // An API key, when the gateway needs one, comes in the URL fragment (#key=...): fragments are
  // never sent to servers or written to access logs. It is kept for this tab only.
  function authHeaders() {
    const m = /(?:^|[#&])key=([^&]+)/.exec(location.hash);
    if (m) {
      try { sessionStorage.setItem("gateway.key", decodeURIComponent(m[1])); } catch (e) { /* private mode */ }
      history.replaceState(null, "", location.pathname + location.search);
    }
    let key = null;
    try { key = sessionStorage.getItem("gateway.key"); } catch (e) { /* private mode */ }
    return key ? { Authorization: "Bearer " + key } : {};
  }

  // -- formatting ------------------------------------------------------------------------------
  const fmtMs = (v) => v == null ? "–" : v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + " s" : Math.round(v) + " ms";
  const fmtPct = (v) => v == null ? "–" : (v * 100).toFixed(v < 0.1 ? 1 : 0) + "%";
  function fmtUsd(v) {
    if (v == null) return "–";
    if (v === 0) return "$0";
    if (v >= 1) return "$" + v.toFixed(2);
    if (v >= 0.01) return "$" + v.toFixed(3);
    if (v >= 1e-4) return "$" + Number(v.toPrecision(2));
    // Plain decimals with two significant digits ($0.0000042), as the gateway's messages print them.
    const digits = Math.min(15, 1 - Math.floor(Math.log10(v)));
    return "$" + v.toFixed(digits).replace(/\.?0+$/, "");
  }
  const fmtTime = (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  const FORMAT = { ms: fmtMs, "%": (v) => fmtPct(v / 100), $: fmtUsd };

  function indexOf(name) {
    if (!view.colors.has(name)) view.colors.set(name, view.colors.size);
    return view.colors.get(name);
  }
  const colorOf = (name) => PALETTE[indexOf(name) % PALETTE.length];
  const dashOf = (name) => indexOf(name) < PALETTE.length ? [] : [5, 3];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k === "style") node.style.cssText = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
    return node;
  }

  // -- canvas plumbing ----------------------------------------------------------------------------
  function prepare(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 300, h = canvas.clientHeight || 170;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    return { ctx, w, h, left: 60, right: w - 8, top: 8, bottom: h - 20 };
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function axes(g, t0, t1, ymax, fmt) {
    const { ctx, left, right, top, bottom } = g;
    ctx.strokeStyle = "#26303b";
    ctx.fillStyle = "#8391a0";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    // Five divisions: every "nice" maximum (1, 2, 2.5, 5, 10 x 10^k) then has round tick labels.
    for (let i = 0; i <= 5; i++) {
      const y = bottom - (bottom - top) * i / 5;
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(right, y); ctx.stroke();
      ctx.fillText(fmt(ymax * i / 5), left - 4, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const step = [5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find((s) => (t1 - t0) / s <= 5) || 7200;
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      const x = left + (right - left) * (t - t0) / (t1 - t0);
      ctx.fillText(fmtTime(t).slice(0, step < 60 ? 8 : 5), x, bottom + 4);
    }
  }

  function noData(g, text) {
    g.ctx.fillStyle = "#8391a0";
    g.ctx.textAlign = "center";
    g.ctx.textBaseline = "middle";
    g.ctx.fillText(text, (g.left + g.right) / 2, (g.top + g.bottom) / 2);
  }

  // series: [{name, points: [[t, v], ...]}]; a gap longer than one bucket breaks the line.
  function lineChart(fig, series, t0, t1, bucketS) {
    const g = prepare(fig.querySelector("canvas"));
    const fmt = FORMAT[fig.dataset.unit] || String;
    let ymax = 0, points = 0, drawn = 0;
    for (const s of series) for (const [, v] of s.points) ymax = Math.max(ymax, v);
    ymax = niceMax(ymax);
    axes(g, t0, t1, ymax, fmt);
    const X = (t) => g.left + (g.right - g.left) * (t - t0) / (t1 - t0);
    const Y = (v) => g.bottom - (g.bottom - g.top) * v / ymax;
    for (const s of series) {
      const pts = s.points.filter(([t]) => t >= t0);
      if (!pts.length) continue;
      drawn += 1;
      points += pts.length;
      g.ctx.strokeStyle = g.ctx.fillStyle = colorOf(s.name);
      g.ctx.lineWidth = 1.8;
      g.ctx.setLineDash(dashOf(s.name));
      g.ctx.beginPath();
      pts.forEach(([t, v], i) => {
        const broken = i === 0 || t - pts[i - 1][0] > bucketS * 1.5;
        broken ? g.ctx.moveTo(X(t), Y(v)) : g.ctx.lineTo(X(t), Y(v));
      });
      g.ctx.stroke();
      g.ctx.setLineDash([]);
      for (const [t, v] of pts) { g.ctx.beginPath(); g.ctx.arc(X(t), Y(v), 2, 0, 2 * Math.PI); g.ctx.fill(); }
    }
    if (!drawn) noData(g, "no data in this window");
    fig.dataset.series = String(drawn);
    fig.dataset.points = String(points);
  }

  // One stacked bar per bucket: the share of each model among the router's first choices.
  function shareChart(fig, buckets, t0, t1, bucketS) {
    const g = prepare(fig.querySelector("canvas"));
    axes(g, t0, t1, 100, (v) => Math.round(v) + "%");
    const bw = Math.max(1, (g.right - g.left) * bucketS / (t1 - t0) - 1);
    let bars = 0;
    for (const b of buckets) {
      if (b.t < t0) continue;
      const entries = Object.entries(b.counts);
      const total = entries.reduce((a, [, n]) => a + n, 0);
      if (!total) continue;
      bars += 1;
      let y = g.bottom;
      const x = g.left + (g.right - g.left) * (b.t - t0) / (t1 - t0);
      for (const [name, n] of entries.sort()) {
        const hgt = (g.bottom - g.top) * n / total;
        g.ctx.fillStyle = colorOf(name);
        g.ctx.fillRect(x, y - hgt, bw, hgt);
        y -= hgt;
      }
    }
    if (!bars) noData(g, "no routed requests in this window");
    fig.dataset.points = String(bars);
  }

  // -- panels -------------------------------------------------------------------------------------
  function renderCharts(data) {
    const series = data.series || { bucket_s: 5, now: Date.now() / 1000, buckets: [] };
    const t1 = series.now, t0 = t1 - view.windowS, bs = series.bucket_s;
    const per = (field, scale) => Object.keys(data.deployments).map((name) => ({
      name,
      points: series.buckets
        .filter((b) => b.models[name] && b.models[name][field] != null)
        .map((b) => [b.t, b.models[name][field] * scale]),
    }));
    lineChart(document.getElementById("chart-latency"), per("latency_ms", 1), t0, t1, bs);
    lineChart(document.getElementById("chart-ttft"), per("ttft_ms", 1), t0, t1, bs);
    lineChart(document.getElementById("chart-errors"), per("error_rate", 100), t0, t1, bs);
    lineChart(document.getElementById("chart-cost"), per("cost_usd", 1), t0, t1, bs);

    const byPipeline = new Map();
    for (const b of series.buckets) {
      for (const [p, counts] of Object.entries(b.pipelines)) {
        if (!byPipeline.has(p)) byPipeline.set(p, []);
        byPipeline.get(p).push({ t: b.t, counts });
      }
    }
    const holder = document.getElementById("shares");
    const names = [...byPipeline.keys()].sort();
    for (const p of names) {
      let fig = holder.querySelector(`figure[data-pipeline="${CSS.escape(p)}"]`);
      if (!fig) {
        fig = el("figure", { class: "chart", "data-pipeline": p }, el("figcaption", {}, p), el("canvas"));
        holder.append(fig);
      }
      shareChart(fig, byPipeline.get(p), t0, t1, bs);
    }
    holder.dataset.pipelines = String(names.length);
  }

  function renderLegend(data) {
    const legend = document.getElementById("legend");
    legend.replaceChildren(...Object.keys(data.deployments).map((name) => el("span",
      Object.assign({ style: `--c: ${colorOf(name)}` }, dashOf(name).length ? { "data-dashed": "1" } : {}), name)));
    legend.dataset.models = String(legend.children.length);
  }

  // The error rate, saying what it rests on: the prior the router assumes for an unseen model, a
  // figure whose samples have all decayed away, one over a few recent samples, or a live one.
  function errorCell(d, data) {
    const halfLife = data.stats_half_life_s == null ? "" : ` (half-life ${data.stats_half_life_s} s)`;
    const basis = d.error_rate_basis || (d.error_rate == null ? "prior" : "live");
    const cell = (text, note, title) => el("td", { class: "num", "data-basis": basis, title },
      text, note ? el("span", { class: "dim" }, " " + note) : "");
    if (basis === "prior") {
      return cell(data.error_rate_prior == null ? "–" : fmtPct(data.error_rate_prior), "prior",
        "no live sample yet: the router assumes this prior error rate");
    }
    if (basis === "stale") {
      return cell(fmtPct(d.error_rate), "stale", `every sample behind this figure has decayed away${halfLife}; ` +
        "the router now relies on the prior");
    }
    if (basis === "few") {
      return cell(fmtPct(d.error_rate), `few (${d.samples})`, `only ${d.samples} recent sample(s)${halfLife}: ` +
        "the router blends this with the prior, and the circuit breaker does not judge a rate on so few");
    }
    return cell(fmtPct(d.error_rate), "", `decayed over recent samples${halfLife}`);
  }

  function renderCircuits(data) {
    const rows = Object.entries(data.deployments).map(([name, d]) => el("tr", { "data-deployment": name },
      el("td", {}, el("span", { style: `color: ${colorOf(name)}` }, "■ "), name),
      el("td", {}, d.provider),
      el("td", {}, el("span", { class: `badge ${d.circuit}` }, d.circuit.replace("_", "-"))),
      el("td", { class: "num" }, fmtMs(d.latency_ms)),
      el("td", { class: "num" }, fmtMs(d.ttft_ms)),
      errorCell(d, data),
      el("td", { class: "num samples" }, d.samples == null ? "–" : String(Math.round(d.samples)))));
    const table = document.getElementById("circuits");
    table.tBodies[0].replaceChildren(...rows);
    table.dataset.rows = String(rows.length);
  }

  function budgetBar(label, spent, limit) {
    if (!limit) return el("div", {}, `${label}: ${fmtUsd(spent)} (no limit)`);
    const ratio = spent / limit;
    const cls = ratio >= 1 ? "bad" : ratio >= 0.8 ? "warn" : "";
    return el("div", {}, `${label}: ${fmtUsd(spent)} of ${fmtUsd(limit)} (${fmtPct(ratio)})`,
      el("div", { class: "bar" }, el("div", { class: cls, style: `width: ${Math.min(100, ratio * 100)}%` })));
  }

  function renderBudgets(data) {
    const boxes = Object.entries(data.budgets || {}).map(([name, b]) => el("div", { class: "budget", "data-pipeline": name },
      el("strong", {}, name), budgetBar("day", b.day_usd, b.daily_limit_usd), budgetBar("month", b.month_usd, b.monthly_limit_usd)));
    const holder = document.getElementById("budgets");
    holder.replaceChildren(...(boxes.length ? boxes : [el("div", { class: "dim" }, "no spend or budgets yet")]));
    holder.dataset.rows = String(boxes.length);
  }

  function renderDecisions(data) {
    const recent = (data.recent_decisions || []).slice(-30).reverse();
    const rows = recent.map((d) => {
      const ok = d.status === "ok";
      // The winner's reasons, then policy notes (probes, exploration, header overrides), then every
      // model ruled out by a hard constraint (an open circuit shows up here while it cools down).
      const ruledOut = Object.entries(d.rejected || {}).map(([m, rs]) => `${m} (${rs.join(", ")})`);
      const why = el("td", { class: "why" }, (d.reasons || []).join("; "));
      if ((d.notes || []).length) why.append(el("div", { class: "note" }, d.notes.join("; ")));
      if (ruledOut.length) why.append(el("div", { class: "ruled-out" }, "ruled out: " + ruledOut.join("; ")));
      return el("tr", { "data-request-id": d.request_id || "" },
        el("td", {}, fmtTime(d.ts)), el("td", {}, d.pipeline), el("td", {}, d.strategy),
        el("td", {}, d.winner, el("span", { class: "dim" }, d.score == null ? "" : ` ${d.score.toFixed(2)}`)),
        el("td", {}, d.runner_up || "–"), el("td", {}, d.served || "–"),
        el("td", {}, el("span", { class: `badge ${ok ? "ok" : "err"}` }, d.status)),
        el("td", { class: "num" }, fmtMs(d.latency_ms)), el("td", { class: "num" }, fmtUsd(d.cost_usd)), why);
    });
    const table = document.getElementById("decisions");
    table.tBodies[0].replaceChildren(...rows);
    table.dataset.rows = String(rows.length);
  }

  function render(data) {
    view.data = data;
    Object.keys(data.deployments).forEach(colorOf);  // catalog order fixes each model's colour
    renderLegend(data);
    renderCharts(data);
    renderCircuits(data);
    renderBudgets(data);
    renderDecisions(data);
  }

  function setStatus(text, error) {
    const status = document.getElementById("status");
    status.textContent = text;
    status.classList.toggle("error", !!error);
  }

  async function poll() {
    try {
      // Resolved against origin + path: a page opened as http://user:key@host/dashboard must not pass
      // its credentials into the URL (fetch refuses those); the browser re-sends them as Basic auth.
      const resp = await fetch(new URL("v1/gateway/stats", location.origin + location.pathname),
        { headers: authHeaders(), cache: "no-store" });
      if (!resp.ok) throw new Error(resp.status === 401 ? "unauthorised: reload and give a gateway key as the password" : `HTTP ${resp.status}`);
      const data = await resp.json();
      render(data);
      view.polls += 1;
      document.body.dataset.polls = String(view.polls);
      setStatus(`stats store ${data.stats_store} · policy ${data.policy_version ?? "–"}` +
        (data.policy_error ? ` · policy error: ${data.policy_error}` : "") + ` · updated ${fmtTime(Date.now() / 1000)}`);
    } catch (err) {
      setStatus(`cannot read /v1/gateway/stats: ${err.message}`, true);
    } finally {
      setTimeout(poll, intervalMs);
    }
  }

  const picker = document.getElementById("window");
  if (![...picker.options].some((o) => Number(o.value) === view.windowS)) {
    picker.append(el("option", { value: String(view.windowS) }, `${view.windowS} s`));
  }
  picker.value = String(view.windowS);
  picker.addEventListener("change", (e) => {
    view.windowS = Number(e.target.value);
    if (view.data) renderCharts(view.data);
  });
  window.addEventListener("resize", () => view.data && renderCharts(view.data));
  poll();
})();
