// The mdstream chart page: the chart view (series.js) over data embedded in the file (mode "file") or from
// `mdstream serve` with live updates over server-sent events (mode "live"); series and timeframe switches, links,
// and the live data-quality panel.
(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('mdstream-config').textContent);
  const params = new URLSearchParams(window.location.search);
  const live = config.mode === 'live';
  const $ = (id) => document.getElementById(id);
  const view = window.MdstreamChart($('chart'), $('legend'), config.features);
  const {chart, state, fmt, iso, el} = view;
  state.source = null;
  const seriesByKey = new Map();
  window.mdstream = {chart, series: view.series, markers: view.markers, state, config};

  // Milliseconds as a short duration: 850 ms, 12.5 s, 3.2 min, 5.1 h, 1062 d (a backfill's latency is days).
  const fmtMs = (ms) => {
    if (ms === null || ms === undefined) return '–';
    const steps = [[86400000, ' d'], [3600000, ' h'], [60000, ' min'], [1000, ' s']];
    for (const [size, unit] of steps) if (Math.abs(ms) >= size) return (ms / size).toFixed(ms >= 100 * size ? 0 : 1) + unit;
    return Math.round(ms) + ' ms';
  };
  const parseTime = (text) => {
    if (!text) return null;
    if (/^\d+$/.test(text)) return Number(text);
    const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : text + 'Z');
    return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
  };


  // ---- controls: series, timeframe, link ----
  const instrumentOf = (s) => `${s.exchange}|${s.symbol}`;
  function setSeriesList(list) {
    seriesByKey.clear();
    for (const s of list) seriesByKey.set(s.key, s);
    const select = $('series-select');
    const current = state.key ? instrumentOf(seriesByKey.get(state.key) || {}) : null;
    select.replaceChildren();
    const seen = new Set();
    for (const s of list) {
      const id = instrumentOf(s);
      if (seen.has(id)) continue;
      seen.add(id);
      const option = el('option', null, `${s.symbol} (${s.exchange})`);
      option.value = id;
      select.append(option);
    }
    if (current) select.value = current;
    renderTimeframes();
  }

  function renderTimeframes() {
    const box = $('timeframes');
    box.replaceChildren();
    const s = seriesByKey.get(state.key);
    for (const tf of config.timeframes) {
      const button = el('button', null, tf);
      const key = s ? `${s.exchange}|${s.symbol}|${tf}` : null;
      button.dataset.timeframe = tf;
      button.disabled = !key || !seriesByKey.has(key);
      if (key === state.key) button.className = 'active';
      button.addEventListener('click', () => open(key, {keepRange: false}));
      box.append(button);
    }
  }

  $('series-select').addEventListener('change', (event) => {
    const s = seriesByKey.get(state.key);
    const tf = s ? s.timeframe : config.timeframes[0];
    const candidates = [...seriesByKey.values()].filter((x) => instrumentOf(x) === event.target.value);
    const pick = candidates.find((x) => x.timeframe === tf) || candidates[0];
    if (pick) open(pick.key, {keepRange: false});
  });

  function permalink() {
    const s = seriesByKey.get(state.key);
    if (!s) return;
    const q = new URLSearchParams({exchange: s.exchange, symbol: s.symbol, timeframe: s.timeframe});
    const range = chart.timeScale().getVisibleRange();
    if (range) {
      q.set('from', iso(range.from));
      q.set('to', iso(range.to + s.tf_s));
    }
    $('permalink').href = '?' + q.toString();
  }
  chart.timeScale().subscribeVisibleTimeRangeChange(() => permalink());

  // URL parameters pick the series; what they leave open comes from the configured first view.
  function pickInitial() {
    const list = config.series;
    const given = ['exchange', 'symbol', 'timeframe'].filter((k) => params.get(k));
    const matches = list.filter((s) => given.every((k) => s[k] === params.get(k)));
    const pool = matches.length ? matches : list;
    const first = pool.find((s) => s.key === config.initial) ||
      pool.find((s) => s.timeframe === config.initial_timeframe) || pool[0];
    return first ? first.key : null;
  }

  // ---- data sources ----
  function setStatus(text, cls) {
    const status = $('status');
    status.textContent = text;
    status.className = 'status ' + (cls || '');
  }

  function show(d, range) {
    view.show(d, range);
    permalink();
  }

  function requestRange() {
    return {from: parseTime(params.get('from')), to: parseTime(params.get('to'))};
  }

  function open(key, {keepRange}) {
    if (!key) {
      setStatus('no candles in this database yet', 'bad');
      return;
    }
    state.key = key;
    state.data = null;  // until the new series has loaded: no legend or update of the old one meanwhile
    const s = seriesByKey.get(key);
    renderTimeframes();
    $('series-select').value = instrumentOf(s);
    if (!keepRange) {
      params.delete('from');
      params.delete('to');
    }
    params.set('exchange', s.exchange);
    params.set('symbol', s.symbol);
    params.set('timeframe', s.timeframe);
    history.replaceState(null, '', '?' + params.toString());
    if (live) openLive(s);
    else {
      const d = config.data[key];
      show(d, requestRange());
      setStatus(`${d.t.length} candles · offline file`);
    }
    if (live) loadQuality();
  }

  function query(s, extra) {
    const q = new URLSearchParams({exchange: s.exchange, symbol: s.symbol, timeframe: s.timeframe, ...extra});
    const range = requestRange();
    if (range.from !== null) q.set('from', String(range.from));
    if (range.to !== null) q.set('to', String(range.to));
    return q.toString();
  }

  function openLive(s) {
    if (state.source) state.source.close();
    state.source = null;
    const range = requestRange();
    if (range.to !== null) {
      // A closed window of time: one read, no subscription.
      setStatus('loading');
      fetch('/api/candles?' + query(s, {})).then((r) => r.json()).then((body) => {
        if (body.error) throw new Error(body.error);
        show(body, range);
        setStatus(`${body.t.length} candles · fixed range`);
      }).catch((err) => setStatus(String(err.message || err), 'bad'));
      return;
    }
    setStatus('connecting');
    const source = new EventSource('/api/live?' + query(s, {}));
    state.source = source;
    source.addEventListener('snapshot', (event) => {
      show(JSON.parse(event.data), range);
      setStatus('live', 'live');
    });
    source.addEventListener('update', (event) => {
      view.merge(JSON.parse(event.data));
      setStatus('live · updated ' + new Date().toISOString().slice(11, 19) + 'Z', 'live');
    });
    source.addEventListener('series', () => refreshSeries());
    source.addEventListener('problem', (event) => setStatus(JSON.parse(event.data).error, 'bad'));
    source.onerror = () => setStatus('reconnecting', 'bad');
  }

  function refreshSeries() {
    return fetch('/api/series').then((r) => r.json()).then((body) => setSeriesList(body.series));
  }

  // ---- data-quality panel (live) ----
  function table(headers, rows) {
    if (!rows.length) return el('div', 'muted', 'none');
    const t = el('table');
    const head = el('tr');
    for (const h of headers) head.append(el('th', null, h));
    t.append(head);
    for (const row of rows) {
      const tr = el('tr');
      for (const cell of row) tr.append(el('td', null, typeof cell === 'number' ? fmt(cell) : String(cell ?? '–')));
      t.append(tr);
    }
    return t;
  }

  function renderQuality(q) {
    const feed = $('q-feed');
    feed.replaceChildren();
    if (!q.feed) feed.append(el('div', 'muted', 'no --metrics-url given'));
    else {
      const ok = q.feed.status === 'ok' || q.feed.status === 'starting';
      feed.append(el('span', 'badge ' + (q.feed.reachable ? (ok ? 'ok' : 'bad') : 'unknown'), q.feed.status));
      if (q.feed.error) feed.append(el('div', 'muted', q.feed.error));
      feed.append(table(['metric', 'value'], q.feed.values.map((m) => [m.name, m.value])));
    }
    $('q-gaps').replaceChildren(table(['tf', 'candles', 'quiet', 'feed', 'revised', 'late'],
      q.gaps.map((g) => [g.timeframe, g.candles, g.gaps_quiet, g.gaps_feed, g.revised_candles, g.late_trades])));
    $('q-latency').replaceChildren(table(['tf', 'candles', 'p50', 'p99', 'max'],
      q.latency.map((r) => [r.timeframe, r.candles, fmtMs(r.p50_ms), fmtMs(r.p99_ms), fmtMs(r.max_ms)])));
    $('q-quarantine').replaceChildren(table(['reason', 'field', 'rows'],
      q.quarantine.map((r) => [r.reason, r.field, r.rows])));
  }

  function loadQuality() {
    const s = seriesByKey.get(state.key);
    if (!s) return;
    fetch('/api/quality?' + new URLSearchParams({exchange: s.exchange, symbol: s.symbol}))
      .then((r) => r.json()).then((q) => { if (!q.error) renderQuality(q); state.quality = q; })
      .catch(() => {});
  }

  // ---- start ----
  if (live) {
    $('quality').hidden = false;
    refreshSeries().then(() => {
      config.series = [...seriesByKey.values()];
      open(pickInitial(), {keepRange: true});
    }).catch((err) => setStatus(String(err), 'bad'));
    setInterval(loadQuality, config.quality_every_ms || 5000);
  } else {
    setSeriesList(config.series);
    open(pickInitial(), {keepRange: true});
  }
})();
