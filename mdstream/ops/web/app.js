// The mdstream chart page: lightweight-charts series over mdstream candles, from data embedded in the file
// (mode "file") or from `mdstream serve` with live updates over server-sent events (mode "live").
(function () {
  'use strict';
  const L = window.LightweightCharts;
  const config = JSON.parse(document.getElementById('mdstream-config').textContent);
  const params = new URLSearchParams(window.location.search);
  const live = config.mode === 'live';
  const COLOR = {
    up: '#26a69a', down: '#ef5350', vwap: '#f2c94c', bb: '#9b8cff', revision: '#ffa726',
    gap: {feed: 'rgba(255,23,68,0.28)', quiet: 'rgba(139,148,158,0.22)'},
    volume: {up: 'rgba(38,166,154,0.55)', down: 'rgba(239,83,80,0.55)'},
  };
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  // ---- chart and series (all drawing is lightweight-charts') ----
  const chart = L.createChart($('chart'), {
    autoSize: true,
    layout: {background: {type: 'solid', color: '#101418'}, textColor: '#d8dee4', panes: {separatorColor: '#30363d'}},
    grid: {vertLines: {color: '#1a1f26'}, horzLines: {color: '#1a1f26'}},
    rightPriceScale: {borderColor: '#30363d'},
    timeScale: {borderColor: '#30363d', timeVisible: true, rightOffset: 4, maxBarSpacing: 40},
    crosshair: {mode: L.CrosshairMode.Normal},
  });
  const quiet = {lastValueVisible: false, priceLineVisible: false};
  // Added first so that it lies beneath the candles; its own hidden scale from 0 to 1 fills the pane's height.
  const gaps = chart.addSeries(L.HistogramSeries, {...quiet, priceScaleId: 'gaps', base: 0});
  chart.priceScale('gaps').applyOptions({scaleMargins: {top: 0, bottom: 0}, visible: false});
  const candles = chart.addSeries(L.CandlestickSeries, {
    upColor: COLOR.up, downColor: COLOR.down, wickUpColor: COLOR.up, wickDownColor: COLOR.down, borderVisible: false,
  });
  const line = (options) => chart.addSeries(L.LineSeries, {...quiet, crosshairMarkerVisible: false, ...options});
  const vwap = line({color: COLOR.vwap, lineWidth: 2});
  const bbUpper = line({color: COLOR.bb, lineWidth: 1});
  const bbMid = line({color: COLOR.bb, lineWidth: 1, lineStyle: L.LineStyle.Dashed});
  const bbLower = line({color: COLOR.bb, lineWidth: 1});
  const volume = chart.addSeries(L.HistogramSeries, {...quiet, priceFormat: {type: 'volume'}}, 1);
  chart.panes()[0].setStretchFactor(4);
  chart.panes()[1].setStretchFactor(1);
  const markers = L.createSeriesMarkers(candles, []);

  // ---- state ----
  const state = {key: null, data: null, index: new Map(), appliedAt: {}, updates: 0, source: null, error: null};
  const seriesByKey = new Map();
  window.mdstream = {chart, series: {gaps, candles, vwap, bbUpper, bbMid, bbLower, volume}, markers, state, config};

  const fmt = (x) => {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    const a = Math.abs(x);
    if (Number.isInteger(x)) return String(x);
    if (a >= 1000) return x.toFixed(2);
    if (a >= 1) return x.toFixed(4);
    return x.toPrecision(4);
  };
  // Milliseconds as a short duration: 850 ms, 12.5 s, 3.2 min, 5.1 h, 1062 d (a backfill's latency is days).
  const fmtMs = (ms) => {
    if (ms === null || ms === undefined) return '–';
    const steps = [[86400000, ' d'], [3600000, ' h'], [60000, ' min'], [1000, ' s']];
    for (const [size, unit] of steps) if (Math.abs(ms) >= size) return (ms / size).toFixed(ms >= 100 * size ? 0 : 1) + unit;
    return Math.round(ms) + ' ms';
  };
  const iso = (seconds) => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
  const parseTime = (text) => {
    if (!text) return null;
    if (/^\d+$/.test(text)) return Number(text);
    const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : text + 'Z');
    return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
  };

  // ---- payload (columnar) -> series items ----
  const dayOf = (t) => Math.floor(t / 86400);
  function items(d, i) {
    const t = d.t[i];
    const up = d.c[i] >= d.o[i];
    const point = (value) => (value === null || value === undefined ? {time: t} : {time: t, value});
    // The session VWAP restarts at UTC midnight: a point's colour is that of the segment to the next point,
    // so the last point of a day hides the jump into the next.
    const vw = point(d.vw[i]);
    if (i + 1 < d.t.length && dayOf(d.t[i + 1]) !== dayOf(t) && vw.value !== undefined) vw.color = 'transparent';
    return {
      candle: {time: t, open: d.o[i], high: d.h[i], low: d.l[i], close: d.c[i]},
      volume: {time: t, value: d.v[i], color: up ? COLOR.volume.up : COLOR.volume.down},
      gap: d.g[i] ? {time: t, value: 1, color: COLOR.gap[d.g[i]] || COLOR.gap.feed} : {time: t},
      vwap: vw, bbUpper: point(d.bu[i]), bbMid: point(d.bm[i]), bbLower: point(d.bl[i]),
    };
  }
  const TARGETS = {candle: candles, volume, gap: gaps, vwap, bbUpper, bbMid, bbLower};

  function decimals(d) {
    let most = 0;
    for (let i = Math.max(0, d.t.length - 300); i < d.t.length; i++) {
      const text = String(d.c[i]);
      const dot = text.indexOf('.');
      if (dot >= 0 && !text.includes('e')) most = Math.max(most, Math.min(8, text.length - dot - 1));
    }
    return Math.max(2, most);
  }

  function renderAll(d) {
    const lists = {candle: [], volume: [], gap: [], vwap: [], bbUpper: [], bbMid: [], bbLower: []};
    state.index = new Map();
    for (let i = 0; i < d.t.length; i++) {
      state.index.set(d.t[i], i);
      const row = items(d, i);
      for (const name in lists) lists[name].push(row[name]);
    }
    for (const name in lists) TARGETS[name].setData(lists[name]);
    const precision = decimals(d);
    candles.applyOptions({priceFormat: {type: 'price', precision, minMove: Math.pow(10, -precision)}});
    chart.applyOptions({timeScale: {secondsVisible: d.tf_s < 60}});
    renderMarkers(d);
  }

  function renderMarkers(d) {
    const list = [];
    for (let i = 0; i < d.t.length; i++) {
      if (d.r[i] > 0) list.push({time: d.t[i], position: 'aboveBar', shape: 'circle', color: COLOR.revision, text: 'r' + d.r[i]});
    }
    markers.setMarkers(list);
  }

  const COLUMNS = ['t', 'o', 'h', 'l', 'c', 'v', 'n', 'vwap', 'g', 'r', 'lt', 'vw', 'bu', 'bm', 'bl'];

  // Replace every row from `update.t[0]` on with the update's rows; appends go through series.update().
  function merge(update) {
    const d = state.data;
    if (!d || !update.t.length) return;
    const from = update.t[0];
    let cut = d.t.length;
    while (cut > 0 && d.t[cut - 1] >= from) cut--;
    const appendOnly = cut === d.t.length;
    const now = Date.now();
    for (const t of update.t) if (!state.index.has(t) && !(t in state.appliedAt)) state.appliedAt[t] = now;
    for (const k of COLUMNS) d[k].splice(cut, d[k].length - cut, ...update[k]);
    for (const name in update.f) if (d.f[name]) d.f[name].splice(cut, d.f[name].length - cut, ...update.f[name]);
    d.u = Math.max(d.u || 0, update.u || 0);
    if (appendOnly) {
      // The bar before the first new one may now end a day (see items): it is still the last bar, so it can change.
      if (cut > 0) vwap.update(items(d, cut - 1).vwap);
      for (let i = cut; i < d.t.length; i++) {
        state.index.set(d.t[i], i);
        const row = items(d, i);
        for (const name in TARGETS) TARGETS[name].update(row[name]);
      }
      renderMarkers(d);
    } else {
      renderAll(d);
    }
    state.updates += 1;
    showLegend(null);
  }

  // ---- legend under the crosshair ----
  function showLegend(time) {
    const d = state.data;
    const box = $('legend');
    box.replaceChildren();
    if (!d || !d.t.length) return;
    const i = time !== null && state.index.has(time) ? state.index.get(time) : d.t.length - 1;
    const head = el('div');
    head.append(el('span', 'title', `${d.exchange} ${d.symbol} ${d.timeframe}`), el('span', 'muted', '  ' + iso(d.t[i])));
    const up = d.c[i] >= d.o[i] ? 'up' : 'down';
    const ohlc = el('div', up);
    ohlc.textContent = `O ${fmt(d.o[i])}  H ${fmt(d.h[i])}  L ${fmt(d.l[i])}  C ${fmt(d.c[i])}  V ${fmt(d.v[i])}`;
    const more = el('div');
    more.append(el('span', 'f', `trades ${fmt(d.n[i])}`), el('span', 'f', `vwap ${fmt(d.vwap[i])}`),
      el('span', 'f', `session vwap ${fmt(d.vw[i])}`));
    if (d.g[i]) more.append(el('span', 'f gap-' + d.g[i], `gap: ${d.g[i]}`));
    if (d.r[i] > 0) more.append(el('span', 'f rev', `revision ${d.r[i]} (${d.lt[i]} late trades)`));
    const feats = el('div', 'muted');
    for (const name of config.features) if (d.f[name]) feats.append(el('span', 'f', `${name} ${fmt(d.f[name][i])}`));
    box.append(head, ohlc, more, feats);
  }
  chart.subscribeCrosshairMove((param) => showLegend(param.time === undefined ? null : param.time));

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
    state.data = d;
    state.appliedAt = {};
    renderAll(d);
    if (range && range.from !== null) {
      const to = range.to !== null ? range.to : d.t[d.t.length - 1] + d.tf_s;
      chart.timeScale().setVisibleRange({from: range.from, to: to});
    } else {
      chart.timeScale().fitContent();
    }
    showLegend(null);
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
      merge(JSON.parse(event.data));
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
