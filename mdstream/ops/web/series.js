// mdstream's chart view on lightweight-charts: candles, volume pane, session VWAP, Bollinger bands, gap shading,
// revision markers and the crosshair legend, fed with mdstream's columnar series payloads. No drawing of its own.
window.MdstreamChart = function (container, legendBox, features) {
  'use strict';
  const L = window.LightweightCharts;
  const COLOR = {
    up: '#26a69a', down: '#ef5350', vwap: '#f2c94c', bb: '#9b8cff', revision: '#ffa726',
    gap: {feed: 'rgba(255,23,68,0.28)', quiet: 'rgba(139,148,158,0.22)'},
    volume: {up: 'rgba(38,166,154,0.55)', down: 'rgba(239,83,80,0.55)'},
  };
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const fmt = (x) => {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    const a = Math.abs(x);
    if (Number.isInteger(x)) return String(x);
    if (a >= 1000) return x.toFixed(2);
    if (a >= 1) return x.toFixed(4);
    return x.toPrecision(4);
  };
  const iso = (seconds) => new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');

  // ---- chart and series (all drawing is lightweight-charts') ----
  // Sized now, not by autoSize's first (asynchronous) measurement, so a range set right away is kept exactly.
  const chart = L.createChart(container, {
    width: container.clientWidth, height: container.clientHeight,
    layout: {background: {type: 'solid', color: '#101418'}, textColor: '#d8dee4', panes: {separatorColor: '#30363d'}},
    grid: {vertLines: {color: '#1a1f26'}, horzLines: {color: '#1a1f26'}},
    rightPriceScale: {borderColor: '#30363d'},
    timeScale: {borderColor: '#30363d', timeVisible: true, rightOffset: 4, maxBarSpacing: 40},
    crosshair: {mode: L.CrosshairMode.Normal},
  });
  new ResizeObserver(() => chart.resize(container.clientWidth, container.clientHeight)).observe(container);
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

  const state = {key: null, data: null, index: new Map(), appliedAt: {}, updates: 0};

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
    const box = legendBox;
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
    for (const name of features) if (d.f[name]) feats.append(el('span', 'f', `${name} ${fmt(d.f[name][i])}`));
    box.append(head, ohlc, more, feats);
  }
  chart.subscribeCrosshairMove((param) => showLegend(param.time === undefined ? null : param.time));

  // Show a whole series; `range` {from, to} in epoch seconds (either may be null) or fit everything.
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
  }

  return {chart, series: {gaps, candles, vwap, bbUpper, bbMid, bbLower, volume}, markers, state, show, merge,
          showLegend, fmt, iso, el};
};
