"""A self-contained offline HTML candlestick chart (inline SVG + JS) of candles_latest in a DuckDB file."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import orjson
import polars as pl

from ..contract import columns as c
from ..contract import timeframes
from ..contract.errors import ConfigError, InputError

BB_WINDOW, BB_STD = 20, 2.0
BB_UPPER, BB_MID, BB_LOWER, VWAP_LINE = "bb_upper", "bb_mid", "bb_lower", "vwap_line"
CHART_COLUMNS = (c.TIMESTAMP_IN, c.OPEN, c.HIGH, c.LOW, c.CLOSE, c.VOLUME, c.QUOTE_VOLUME, c.TRADES, c.VWAP, c.GAP, c.REVISION)


def load_candles(
    path: str | Path, symbol: str, timeframe: str, *, exchange: str | None = None,
    start: datetime | None = None, end: datetime | None = None, limit: int = 2000,
) -> pl.DataFrame:
    """Latest-revision candles of one series from `candles_latest`, oldest first (the newest `limit` when unbounded)."""
    path, tf = Path(path), timeframes.normalize(timeframe)
    if not path.is_file():
        raise InputError("DuckDB file not found", path=str(path))
    where, params = [f"{c.SYMBOL} = ?", f"{c.TIMEFRAME} = ?"], [symbol, tf]
    for clause, value in ((f"{c.EXCHANGE} = ?", exchange), (f"{c.TIMESTAMP_IN} >= ?", start), (f"{c.TIMESTAMP_IN} < ?", end)):
        if value is not None:
            where.append(clause)
            params.append(value)
    cols = ", ".join((c.EXCHANGE, *CHART_COLUMNS))
    sql = f"SELECT {cols} FROM candles_latest WHERE {' AND '.join(where)} ORDER BY {c.TIMESTAMP_IN} DESC LIMIT {int(limit)}"
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise InputError(f"cannot open DuckDB file: {exc}", path=str(path)) from exc
    try:
        con.execute("SET TimeZone = 'UTC'")
        frame = con.sql(sql, params=params).pl()
    except duckdb.CatalogException as exc:
        raise InputError("no candles_latest view; write candles with mdstream first", path=str(path)) from exc
    finally:
        con.close()
    exchanges = frame.get_column(c.EXCHANGE).unique().sort().to_list()
    if len(exchanges) > 1:
        raise ConfigError(f"{symbol} exists on several exchanges ({', '.join(exchanges)}); pass --exchange")
    if frame.height == 0:
        raise InputError(f"no {tf} candles for {symbol} in the requested range", path=str(path))
    return frame.sort(c.TIMESTAMP_IN)


def overlays(candles: pl.LazyFrame) -> pl.LazyFrame:
    """Add Bollinger bands (SMA20 of close +- 2 population std) and the session VWAP (cum quote / cum volume per UTC day)."""
    close = pl.col(c.CLOSE)
    mid = close.rolling_mean(BB_WINDOW)
    std = close.rolling_std(BB_WINDOW, ddof=0)
    day = pl.col(c.TIMESTAMP_IN).dt.convert_time_zone("UTC").dt.date()
    cum_volume = pl.col(c.VOLUME).cum_sum().over(day)
    return candles.sort(c.TIMESTAMP_IN).with_columns(
        mid.alias(BB_MID),
        (mid + BB_STD * std).alias(BB_UPPER),
        (mid - BB_STD * std).alias(BB_LOWER),
        pl.when(cum_volume > 0).then(pl.col(c.QUOTE_VOLUME).cum_sum().over(day) / cum_volume).alias(VWAP_LINE),
    )


def chart_data(candles: pl.DataFrame, exchange: str, symbol: str, timeframe: str) -> dict:
    """Columnar JSON-ready payload: times in epoch ms, prices, volumes, gap markers and overlays."""
    frame = overlays(candles.lazy()).collect()
    millis = frame.get_column(c.TIMESTAMP_IN).dt.epoch("ms").to_list()
    pick = {"o": c.OPEN, "h": c.HIGH, "l": c.LOW, "c": c.CLOSE, "v": c.VOLUME, "n": c.TRADES, "g": c.GAP,
            "vw": VWAP_LINE, "bu": BB_UPPER, "bm": BB_MID, "bl": BB_LOWER}
    series = {key: frame.get_column(name).to_list() for key, name in pick.items()}
    return {"exchange": exchange, "symbol": symbol, "timeframe": timeframe,
            "tf_ms": timeframes.duration_us(timeframe) // 1000, "t": millis, **series}


def render_html(data: dict) -> str:
    """The whole HTML page: styles, the data as inline JSON and the SVG renderer; no network needed."""
    # "</" would end the script element early; JSON allows the escaped form.
    payload = orjson.dumps(data).decode().replace("</", "<\\/")
    title = html.escape(f"{data['exchange']} {data['symbol']} {data['timeframe']}")
    return _PAGE.replace("__TITLE__", title).replace("__DATA__", payload).replace("__SCRIPT__", _SCRIPT)


def write_chart(
    db_path: str | Path, symbol: str, timeframe: str, output: str | Path, *, exchange: str | None = None,
    start: datetime | None = None, end: datetime | None = None, limit: int = 2000,
) -> int:
    """Render the chart of one series from `db_path` into `output`; returns the number of candles drawn."""
    candles = load_candles(db_path, symbol, timeframe, exchange=exchange, start=start, end=end, limit=limit)
    exchange_name = candles.get_column(c.EXCHANGE)[0]
    page = render_html(chart_data(candles, exchange_name, symbol, timeframes.normalize(timeframe)))
    Path(output).write_text(page, encoding="utf-8")
    return candles.height


def as_utc(value: datetime | None) -> datetime | None:
    """`value` as an aware UTC datetime (naive values are taken to be UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{margin:0;font:13px system-ui,sans-serif;background:#101418;color:#d8dee4}
header{padding:8px 14px}h1{font-size:16px;margin:0 0 4px}#legend span{margin-right:14px}
svg{display:block;width:100%;height:auto}.axis text{fill:#8b949e;font-size:11px}.axis line{stroke:#30363d}
.up rect,.up line{fill:#26a69a;stroke:#26a69a}.down rect,.down line{fill:#ef5350;stroke:#ef5350}
.vol{fill:#3d5a80}.vwap{fill:none;stroke:#f2c94c;stroke-width:1.4}.bb{fill:none;stroke:#9b8cff;stroke-width:1}
.bb-mid{stroke-dasharray:4 3}.gap-feed{fill:#ff1744;fill-opacity:.22}.gap-quiet{fill:#8b949e;fill-opacity:.12}
#tip{position:fixed;pointer-events:none;background:#1f2630;border:1px solid #30363d;padding:6px;display:none;white-space:pre}
</style></head><body>
<header><h1>__TITLE__</h1><div id="legend"><span style="color:#f2c94c">VWAP (session)</span>
<span style="color:#9b8cff">Bollinger 20, 2&sigma;</span><span style="color:#ff1744">feed gap (source down)</span>
<span style="color:#8b949e">quiet (no trades)</span><span id="count"></span></div></header>
<div id="chart"></div><div id="tip"></div>
<script type="application/json" id="chart-data">__DATA__</script>
<script>__SCRIPT__</script>
</body></html>
"""

_SCRIPT = r"""
(function () {
  const d = JSON.parse(document.getElementById('chart-data').textContent);
  const N = d.t.length, W = 1200, H = 720, L = 70, R = 20, T = 10, PH = 500, VT = 530, VH = 150;
  const NS = 'http://www.w3.org/2000/svg';
  const el = (name, attrs, parent) => { const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]); if (parent) parent.appendChild(e); return e; };
  const t0 = d.t[0], t1 = d.t[N - 1] + d.tf_ms, slot = (W - L - R) / Math.max(1, (t1 - t0) / d.tf_ms);
  const x = t => L + (t - t0) / (t1 - t0) * (W - L - R);
  const finite = v => v !== null && isFinite(v);
  const prices = [].concat(d.l, d.h, d.bu, d.bl, d.vw).filter(finite);
  let lo = Math.min(...prices), hi = Math.max(...prices); if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.04; lo -= pad; hi += pad;
  const y = p => T + (hi - p) / (hi - lo) * PH;
  const vmax = Math.max(1e-12, ...d.v.filter(finite));
  const vy = v => VT + VH - v / vmax * VH;
  const svg = el('svg', {viewBox: `0 0 ${W} ${H}`, id: 'candles-svg', 'data-candles': N});
  const shade = el('g', {id: 'gaps'}, svg), axis = el('g', {class: 'axis'}, svg);
  for (let i = 0; i < 6; i++) { const p = lo + (hi - lo) * i / 5;
    el('line', {x1: L, x2: W - R, y1: y(p), y2: y(p)}, axis);
    el('text', {x: 4, y: y(p) + 4}, axis).textContent = p.toPrecision(7); }
  const step = Math.max(1, Math.ceil(N / 8));
  for (let i = 0; i < N; i += step) { const s = new Date(d.t[i]).toISOString();
    el('text', {x: x(d.t[i]), y: H - 8}, axis).textContent = s.slice(5, 10) + ' ' + s.slice(11, 19); }
  const body = Math.max(1, slot * 0.7), candles = el('g', {id: 'candles'}, svg), vols = el('g', {id: 'volume'}, svg);
  for (let i = 0; i < N; i++) {
    const cx = x(d.t[i]) + slot / 2, up = d.c[i] >= d.o[i];
    if (d.g[i]) el('rect', {class: 'gap-' + d.g[i], x: x(d.t[i]), y: T, width: slot, height: VT + VH - T}, shade);
    const g = el('g', {class: 'candle ' + (up ? 'up' : 'down'), 'data-i': i}, candles);
    el('line', {x1: cx, x2: cx, y1: y(d.h[i]), y2: y(d.l[i])}, g);
    const top = y(Math.max(d.o[i], d.c[i]));
    el('rect', {x: cx - body / 2, y: top, width: body, height: Math.max(1, y(Math.min(d.o[i], d.c[i])) - top)}, g);
    el('rect', {class: 'vol', x: cx - body / 2, y: vy(d.v[i]), width: body, height: VT + VH - vy(d.v[i])}, vols);
  }
  const line = (key, cls) => { let path = '', pen = 'M';
    for (let i = 0; i < N; i++) { if (!finite(d[key][i])) { pen = 'M'; continue; }
      if (key === 'vw' && i > 0 && Math.floor(d.t[i] / 864e5) !== Math.floor(d.t[i - 1] / 864e5)) pen = 'M';
      path += `${pen}${(x(d.t[i]) + slot / 2).toFixed(2)},${y(d[key][i]).toFixed(2)} `; pen = 'L'; }
    if (path) el('path', {class: cls, d: path, id: 'line-' + key}, svg); };
  line('bu', 'bb'); line('bm', 'bb bb-mid'); line('bl', 'bb'); line('vw', 'vwap');
  document.getElementById('chart').appendChild(svg);
  document.getElementById('count').textContent = N + ' candles';
  const tip = document.getElementById('tip');
  svg.addEventListener('mousemove', ev => { const r = svg.getBoundingClientRect();
    const tm = t0 + ((ev.clientX - r.left) * W / r.width - L) / (W - L - R) * (t1 - t0);
    let k = -1; for (let i = 0; i < N && d.t[i] <= tm; i++) k = i;
    if (k < 0 || tm >= t1) { tip.style.display = 'none'; return; }
    tip.textContent = `${new Date(d.t[k]).toISOString()}\nO ${d.o[k]}  H ${d.h[k]}\nL ${d.l[k]}  C ${d.c[k]}\n` +
      `V ${d.v[k]}  trades ${d.n[k]}` + (d.g[k] ? `\ngap: ${d.g[k]}` : '');
    tip.style.display = 'block'; tip.style.left = ev.clientX + 12 + 'px'; tip.style.top = ev.clientY + 12 + 'px'; });
  svg.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
})();
"""
