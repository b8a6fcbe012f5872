// The tidemark dashboard: polls /api/stats every second and draws it with uPlot (served by the
// database's own server from the uplot npm package: the page loads nothing from elsewhere).
'use strict';

const POOL_COLORS = {
  wal: '#1f77b4',
  memtable: '#ff7f0e',
  checkpoint: '#d62728',
  replay: '#9467bd',
  cache: '#2ca02c',
  merge: '#8c564b',
  io: '#e377c2',
  meta: '#7f7f7f',
};
const KIB = 1024;

function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Text for innerHTML: an error message may hold anything. */
function esc(text) {
  return String(text).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function ms(n) {
  if (n === null || n === undefined) return '–';
  return n >= 100 ? `${n.toFixed(0)} ms` : `${n.toFixed(n >= 10 ? 1 : 2)} ms`;
}

const state = { charts: {}, updates: 0, window: [0, 0] };
window.tidemark = state;

function width(el) {
  return Math.max(300, el.clientWidth - 4);
}

function makeChart(id, opts, data) {
  const el = document.getElementById(id);
  const chart = new uPlot({ width: width(el), height: 260, ...opts }, data, el);
  state.charts[id] = chart;
  return chart;
}

function poolsChart(names) {
  return makeChart(
    'chart-pools',
    {
      scales: { y: { distr: 3, log: 2 } },
      axes: [{}, { values: (u, ticks) => ticks.map(bytes), size: 70 }],
      series: [
        {},
        ...names.map((n) => ({
          label: n,
          stroke: POOL_COLORS[n] || '#333',
          width: 1.5,
          value: (u, v) => bytes(v),
        })),
        { label: 'limit', stroke: '#000', dash: [6, 4], width: 1.5, value: (u, v) => bytes(v) },
      ],
    },
    [[], ...names.map(() => []), []],
  );
}

function commitsChart() {
  return makeChart(
    'chart-commits',
    {
      scales: { y: {}, rate: {} },
      axes: [
        {},
        { label: 'ms', size: 60 },
        { scale: 'rate', side: 1, label: 'commits/s', grid: { show: false }, size: 60 },
      ],
      series: [
        {},
        { label: 'p50', stroke: '#1f77b4', width: 1.5, value: (u, v) => ms(v), spanGaps: true },
        { label: 'p99', stroke: '#d62728', width: 1.5, value: (u, v) => ms(v), spanGaps: true },
        { label: 'commits/s', scale: 'rate', stroke: '#2ca02c', width: 1, dash: [4, 3] },
      ],
    },
    [[], [], [], []],
  );
}

function walChart() {
  return makeChart(
    'chart-wal',
    {
      axes: [{}, { values: (u, ticks) => ticks.map(bytes), size: 70 }],
      series: [
        {},
        {
          label: 'WAL',
          stroke: '#1f77b4',
          fill: 'rgba(31,119,180,0.12)',
          width: 1.5,
          value: (u, v) => bytes(v),
        },
        { label: 'pinned', stroke: '#ff7f0e', width: 1.5, value: (u, v) => bytes(v) },
      ],
    },
    [[], [], []],
  );
}

function checkpointsChart() {
  const marks = (color) => ({
    stroke: color,
    fill: color,
    width: 0,
    paths: () => null,
    points: { show: true, size: 9, fill: color },
    value: (u, v) => ms(v),
  });
  return makeChart(
    'chart-checkpoints',
    {
      axes: [{}, { label: 'ms', size: 60 }],
      series: [
        {},
        { label: 'incremental', ...marks('#1f77b4') },
        { label: 'global', ...marks('#9467bd') },
        { label: 'failed', ...marks('#d62728') },
      ],
    },
    [[], [], [], []],
  );
}

function tile(label, value) {
  return `<div class="tile"><div class="label">${label}</div><div class="value">${value}</div></div>`;
}

function render(body) {
  const s = body.stats;
  const h = body.history;
  document.getElementById('dir').textContent = body.dir;
  const poolNames = Object.keys(s.memory.pools);
  if (state.charts['chart-pools'] === undefined) {
    poolsChart(poolNames);
    commitsChart();
    walChart();
    checkpointsChart();
  }
  const xs = h.map((p) => p.t);
  state.window = [xs[0], xs[xs.length - 1]];
  state.charts['chart-pools'].setData([
    xs,
    ...poolNames.map((n) => h.map((p) => Math.max(KIB, p.pools[n] || 0))),
    h.map((p) => p.limitBytes),
  ]);
  state.charts['chart-commits'].setData([
    xs,
    h.map((p) => p.commitP50Ms),
    h.map((p) => p.commitP99Ms),
    h.map((p) => p.commits),
  ]);
  state.charts['chart-wal'].setData([xs, h.map((p) => p.walBytes), h.map((p) => p.walPinnedBytes)]);
  const cps = body.checkpoints.filter((c) => c.kind !== 'none' || !c.ok);
  const only = (pred) => cps.map((c) => (pred(c) ? c.ms : null));
  state.charts['chart-checkpoints'].setData([
    cps.map((c) => c.at / 1000),
    only((c) => c.ok && c.kind === 'incremental'),
    only((c) => c.ok && c.kind === 'global'),
    only((c) => !c.ok),
  ]);
  // The same time window as the other charts, however few marks there are.
  const first = cps.length > 0 ? cps[0].at / 1000 : state.window[0];
  state.charts['chart-checkpoints'].setScale('x', {
    min: Math.min(first, state.window[0]),
    max: Math.max(state.window[1], state.window[0] + 1),
  });

  const last = h[h.length - 1];
  const t = s.transactions;
  const ck = s.checkpoints;
  document.getElementById('tiles').innerHTML = [
    tile('memory in pools', `${bytes(s.memory.bytes)} <small>of ${bytes(s.memory.limitBytes)}</small>`),
    tile('commits/s', last ? String(last.commits) : '–'),
    tile('commit p99', last ? ms(last.commitP99Ms) : '–'),
    tile('transactions', String(t.committed + t.aborted)),
    tile('tables', String(s.tables)),
    tile('objects', `${s.storage.objects} <small>${bytes(s.storage.objectBytes)}</small>`),
    tile('WAL', `${bytes(s.wal.bytes)} <small>${s.wal.segments} seg.</small>`),
    tile(
      'checkpoints',
      `${ck.incremental} + ${ck.global} gl.${ck.failed > 0 ? ` <small>${ck.failed} failed</small>` : ''}`,
    ),
    tile('checkpoint lag', `${(ck.lagMs / 1000).toFixed(1)} s`),
    tile('open files', String(s.files.open)),
    tile('leaks detected', String(Object.values(s.memory.pools).reduce((a, p) => a + p.leaksDetected, 0))),
  ].join('');

  const rows = body.checkpoints
    .slice(-12)
    .reverse()
    .map(
      (c) =>
        `<tr><td>${new Date(c.at).toLocaleTimeString()}</td><td>${esc(c.kind)}</td><td>${esc(c.trigger)}</td>` +
        `<td>${ms(c.ms)}</td><td class="${c.ok ? 'ok' : 'failed'}">${c.ok ? 'ok' : `failed: ${esc(c.error || '')}`}</td></tr>`,
    );
  document.querySelector('#checkpoints tbody').innerHTML = rows.join('');
}

async function refresh() {
  const status = document.getElementById('status');
  try {
    const res = await fetch('/api/stats', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    render(await res.json());
    state.updates++;
    document.body.dataset.updates = String(state.updates);
    status.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    status.classList.remove('error');
  } catch (e) {
    status.textContent = `cannot reach the database: ${e.message}`;
    status.classList.add('error');
  }
}

window.addEventListener('resize', () => {
  for (const [id, chart] of Object.entries(state.charts))
    chart.setSize({ width: width(document.getElementById(id)), height: 260 });
});

refresh();
setInterval(refresh, 1000);
