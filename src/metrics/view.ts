// The live web view: one page, no library and nothing fetched from elsewhere (it works offline). It
// reads /metrics (the Prometheus text, parsed here) every second and api/state when the server has
// one (the learning tables), and shows per port the rates of packets, bits and drops with a plot of
// the last two minutes, each switch's table and counters, every other counter as a rate (NFs,
// generators), and latency histograms as bars. Elements carry data-* names the browser test reads.
export const VIEW_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bunmap</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fafafa}
h1{font-size:18px;margin:0 0 .3em}h2{font-size:15px;margin:1.2em 0 .4em}
table{border-collapse:collapse;background:#fff}td,th{padding:2px 8px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th{background:#f0f0f0}td.l,th.l{text-align:left}svg.spark{vertical-align:middle}polyline{fill:none;stroke:#2a6fdb;stroke-width:1.5}
.drop{color:#b00}#status{color:#777}.bar{fill:#2a6fdb}
</style></head><body>
<h1>bunmap</h1><div id="status">connecting…</div>
<h2>Ports</h2><table id="ports"><thead><tr><th class="l">network</th><th class="l">port</th><th class="l">kind</th><th class="l">container</th>
<th>rx pps</th><th>tx pps</th><th>rx bit/s</th><th>tx bit/s</th><th>drops/s</th><th>rx total</th><th>tx total</th><th class="l">pps, 2 min</th><th class="l">bit/s</th><th class="l">drops/s</th></tr></thead><tbody></tbody></table>
<h2>Switches</h2><table id="switches"><thead><tr><th class="l">switch</th><th class="l">networks</th><th>stations</th><th>learned</th><th>moves</th><th>forwarded/s</th><th>flooded/s</th><th>busy</th></tr></thead><tbody></tbody></table>
<h2>Network functions</h2><table id="nfs"><thead><tr><th class="l">nf</th><th>packets/s</th><th>passed on/s</th><th class="l">drops/s by reason</th><th>packets</th></tr></thead><tbody></tbody></table>
<h2>Learning tables</h2><div id="fdb">—</div>
<h2>Other counters</h2><table id="other"><thead><tr><th class="l">metric</th><th class="l">labels</th><th>value</th><th>per second</th></tr></thead><tbody></tbody></table>
<h2>Latency</h2><div id="latency">—</div>
<script>
"use strict";
const hist = new Map(); // series key -> [[t, v], ...]
const KEEP = 120;
function parse(text) {
  const types = {}, out = [];
  for (const line of text.split("\\n")) {
    if (line.startsWith("# TYPE ")) { const [, , n, t] = line.split(" "); types[n] = t; continue; }
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\\{(.*)\\})? (\\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\]|\\\\.)*)"/g))
      labels[l[1]] = l[2].replace(/\\\\n/g, "\\n").replace(/\\\\(.)/g, "$1");
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { types, samples: out };
}
const key = (s) => s.name + JSON.stringify(s.labels);
function rate(k) {
  const h = hist.get(k);
  if (!h || h.length < 2) return 0;
  const [t0, v0] = h[h.length - 2], [t1, v1] = h[h.length - 1];
  return t1 > t0 ? Math.max(0, (v1 - v0) / (t1 - t0)) : 0;
}
function rates(k) {
  const h = hist.get(k) || [], r = [];
  for (let i = 1; i < h.length; i++) r.push(Math.max(0, (h[i][1] - h[i - 1][1]) / Math.max(1e-3, h[i][0] - h[i - 1][0])));
  return r;
}
const fmt = (v) => v >= 1e9 ? (v / 1e9).toFixed(2) + " G" : v >= 1e6 ? (v / 1e6).toFixed(2) + " M" : v >= 1e3 ? (v / 1e3).toFixed(1) + " k" : v.toFixed(v % 1 ? 1 : 0);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
function spark(vals) {
  const w = 160, h = 24, max = Math.max(1, ...vals);
  const pts = vals.map((v, i) => (vals.length < 2 ? 0 : (i * w) / (vals.length - 1)).toFixed(1) + "," + (h - (v / max) * (h - 2) - 1).toFixed(1)).join(" ");
  return '<svg class="spark" width="' + w + '" height="' + h + '"><polyline data-points="' + vals.length + '" data-max="' + max.toFixed(1) + '" points="' + pts + '"/></svg>';
}
const portKeys = ["network", "switch", "port", "kind", "container"];
function pick(labels, keys) { const o = {}; for (const k of keys) if (k in labels) o[k] = labels[k]; return o; }
function render(m, t) {
  for (const s of m.samples) {
    const k = key(s), h = hist.get(k) || [];
    h.push([t, s.value]);
    if (h.length > KEEP) h.shift();
    hist.set(k, h);
  }
  const byName = (n) => m.samples.filter((s) => s.name === n);
  const sk = (n, l) => key({ name: n, labels: l });
  const rows = byName("bunmap_port_rx_packets_total").map((s) => {
    const l = s.labels, base = pick(l, portKeys);
    const tx = sk("bunmap_port_tx_packets_total", base);
    const drops = m.samples.filter((d) => d.name === "bunmap_port_drops_total" && portKeys.every((k) => d.labels[k] === l[k])).reduce((a, d) => a + rate(key(d)), 0);
    const rxp = rate(key(s)), txp = rate(tx);
    const both = rates(key(s)).map((v, i) => v + (rates(tx)[i] || 0));
    const rxb = rates(sk("bunmap_port_rx_bytes_total", base)), txb = rates(sk("bunmap_port_tx_bytes_total", base));
    const bits = rxb.map((v, i) => (v + (txb[i] || 0)) * 8);
    const dropKeys = m.samples.filter((d) => d.name === "bunmap_port_drops_total" && portKeys.every((k) => d.labels[k] === l[k])).map(key);
    const dropPlot = rates(key(s)).map((_, i) => dropKeys.reduce((a, k) => a + (rates(k)[i] || 0), 0));
    const txTotal = (hist.get(tx) || []).slice(-1)[0];
    return '<tr data-port="' + esc(l.port) + '" data-network="' + esc(l.network) + '"><td class="l">' + esc(l.network) + '</td><td class="l">' + esc(l.port) + '</td><td class="l">' + esc(l.kind || "") + '</td><td class="l">' + esc((l.container || "").slice(0, 12)) +
      '</td><td class="rx-pps">' + fmt(rxp) + '</td><td class="tx-pps">' + fmt(txp) + '</td><td>' + fmt(rate(sk("bunmap_port_rx_bytes_total", base)) * 8) + '</td><td>' + fmt(rate(sk("bunmap_port_tx_bytes_total", base)) * 8) +
      '</td><td class="drop">' + fmt(drops) + '</td><td class="rx-total" data-value="' + s.value + '">' + fmt(s.value) + '</td><td class="tx-total" data-value="' + (txTotal ? txTotal[1] : 0) + '">' + fmt(txTotal ? txTotal[1] : 0) + '</td><td class="l pps-plot">' + spark(both) + '</td><td class="l bps-plot">' + spark(bits) + '</td><td class="l drop-plot">' + spark(dropPlot) + "</td></tr>";
  });
  document.querySelector("#ports tbody").innerHTML = rows.join("") || '<tr><td class="l" colspan="14">no ports</td></tr>';
  const nfs = byName("bunmap_nf_packets_total").map((s) => {
    const n = s.labels.nf, fw = byName("bunmap_nf_forwarded_packets_total").find((x) => x.labels.nf === n);
    const drops = byName("bunmap_nf_drops_total").filter((x) => x.labels.nf === n).map((x) => esc(x.labels.reason) + " " + fmt(rate(key(x)))).join(", ");
    return '<tr data-nf="' + esc(n) + '"><td class="l">' + esc(n) + '</td><td class="nf-pps">' + fmt(rate(key(s))) + "</td><td>" + (fw ? fmt(rate(key(fw))) : "") + '</td><td class="l">' + drops + '</td><td class="nf-total">' + fmt(s.value) + "</td></tr>";
  });
  document.querySelector("#nfs tbody").innerHTML = nfs.join("") || '<tr><td class="l" colspan="5">none here</td></tr>';
  const sw = byName("bunmap_switch_stations").map((s) => {
    const l = s.labels, g = (n) => byName(n).find((x) => x.labels.switch === l.switch && !x.labels.reason);
    const v = (n) => (g(n) ? g(n).value : 0), r = (n) => (g(n) ? rate(key(g(n))) : 0);
    return '<tr data-switch="' + esc(l.switch) + '"><td class="l">' + esc(l.switch) + '</td><td class="l">' + esc(l.network || "") + '</td><td class="stations">' + s.value + "</td><td>" + v("bunmap_switch_stations_learned_total") + "</td><td>" + v("bunmap_switch_station_moves_total") +
      "</td><td>" + fmt(r("bunmap_switch_forwarded_packets_total")) + "</td><td>" + fmt(r("bunmap_switch_flooded_packets_total")) + "</td><td>" + (r("bunmap_switch_busy_seconds_total") * 100).toFixed(1) + " %</td></tr>";
  });
  document.querySelector("#switches tbody").innerHTML = sw.join("") || '<tr><td class="l" colspan="8">no switches</td></tr>';
  const shown = /^bunmap_(port|switch)_|^bunmap_nf_(packets|forwarded_packets|drops)_total$|^bunmap_scrape_errors$/;
  const other = m.samples.filter((s) => !shown.test(s.name) && m.types[s.name.replace(/_(bucket|sum|count)$/, "")] !== "histogram").map((s) =>
    '<tr data-metric="' + esc(s.name) + '"><td class="l">' + esc(s.name) + '</td><td class="l">' + esc(Object.entries(s.labels).map(([k, v]) => k + "=" + v).join(" ")) + '</td><td class="value">' + fmt(s.value) + "</td><td>" + (m.types[s.name] === "counter" ? fmt(rate(key(s))) : "") + "</td></tr>");
  document.querySelector("#other tbody").innerHTML = other.join("");
  const hs = Object.keys(m.types).filter((n) => m.types[n] === "histogram");
  const lat = [];
  for (const n of hs) {
    const groups = new Map();
    for (const s of byName(n + "_bucket")) {
      const { le, ...rest } = s.labels, g = JSON.stringify(rest);
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push([le === "+Inf" ? Infinity : Number(le), s.value]);
    }
    for (const [g, b] of groups) {
      b.sort((x, y) => x[0] - y[0]);
      const counts = b.map((x, i) => x[1] - (i ? b[i - 1][1] : 0)), max = Math.max(1, ...counts);
      const bars = counts.map((c, i) => '<rect class="bar" x="' + i * 14 + '" y="' + (80 - (c / max) * 78) + '" width="12" height="' + (c / max) * 78 + '"><title>le ' + b[i][0] + ": " + c + "</title></rect>").join("");
      lat.push('<div data-histogram="' + esc(n) + '"><b>' + esc(n) + "</b> " + esc(g) + '<br><svg width="' + b.length * 14 + '" height="80">' + bars + "</svg></div>");
    }
  }
  document.getElementById("latency").innerHTML = lat.join("") || "—";
}
async function state() {
  try {
    const r = await fetch("api/state");
    if (!r.ok) return;
    const s = await r.json();
    document.getElementById("fdb").innerHTML = (s.switches || []).map((w) =>
      '<div data-fdb="' + esc(w.switch) + '"><b>' + esc(w.switch) + "</b> (" + esc(w.networks.join(", ")) + ')<table><tr><th class="l">station</th><th class="l">port</th><th class="l">container</th><th>seen, s ago</th></tr>' +
      w.stations.map((e) => '<tr><td class="l mac">' + esc(e.mac) + '</td><td class="l">' + esc(e.port) + '</td><td class="l">' + esc((e.container || "").slice(0, 12)) + "</td><td>" + e.age + "</td></tr>").join("") + "</table></div>").join("") || "—";
  } catch {}
}
async function tick() {
  try {
    const r = await fetch("metrics");
    const m = parse(await r.text());
    render(m, performance.now() / 1000);
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString() + " · " + m.samples.length + " series";
    await state();
  } catch (e) {
    document.getElementById("status").textContent = "no answer: " + e;
  }
  setTimeout(tick, 1000);
}
tick();
</script></body></html>
`;
