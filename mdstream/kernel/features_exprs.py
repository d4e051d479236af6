"""Feature expressions over a frame of candle series sorted by (series, timestamp_in); pure Polars, no I/O.

Rolling windows are fixed-order sums of lagged columns, so a row's value depends only on the rows of its
window (never on how far back the frame starts): a continuation from a carried tail reproduces a full run
bit for bit. Variances and covariances are moments of differences from the window's newest value, so a
flat window gives exactly zero rather than rounding noise.
"""

from __future__ import annotations

import math

import polars as pl

from ..contract import columns as c
from ..contract.features import BY_NAME as FEATURE

# Helper columns of the frame being computed (dropped before returning).
SID = "_ft_sid"  # number of the series within this frame (one integer key groups faster than three text keys)
POS = "_ft_pos"  # position of the row within its series in this frame (0 = first row the frame holds)
N = "_ft_n"  # candles since the series began (0 = the series' first candle ever)
NEW = "_ft_new"  # True for rows being computed, False for carried prior rows
LAST_PRIOR = "_ft_last_prior"  # the last carried row of the series: recursive state resumes from it
SECS = "_ft_secs"  # window length in seconds
DAY = "_ft_day"  # UTC day number of timestamp_in
LR = "_ft_lr"  # log return
SV = "_ft_sv"  # signed volume
DP = "_ft_dp"  # close change
MACD_LINE = "_ft_macd_line"  # EMA12 - EMA26 from the slow EMA's first row on (before the TA-Lib warm-up mask)
# Window moments shared by several features, materialised once (repeating them inside when/then chains
# tripled the cost of the features that read them).
KYLE_COV = "_ft_cov_lr_sv_20"
KYLE_VAR = "_ft_var_sv_20"
ROLL_COV = "_ft_cov_dc_dc1_20"
ROLL_VAR = "_ft_var_dc_20"
SIGMA_20 = "_ft_std_close_20"

# Carried state: recursive and cumulative quantities the continuation resumes from.
ST_N = "_st_n"
ST_EMA = {p: f"_st_ema_{p}" for p in (5, 10, 20, 12, 26)}
ST_SIGNAL = "_st_macd_signal"
ST_GAIN = "_st_rsi_gain"
ST_LOSS = "_st_rsi_loss"
ST_DAY_QV = "_st_day_qv"
ST_DAY_V = "_st_day_v"
STATE_COLUMNS: tuple[str, ...] = (ST_N, *ST_EMA.values(), ST_SIGNAL, ST_GAIN, ST_LOSS, ST_DAY_QV, ST_DAY_V)

RSI_PERIOD = 5
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
MACD_SEED_ROW = MACD_SLOW - 1  # both MACD EMAs are seeded here (TA-Lib starts the fast EMA at the slow one's row)
SIGNAL_SEED_ROW = MACD_SEED_ROW + MACD_SIGNAL - 1  # first row of macd, macd_signal and macd_hist
# Earlier rows a recursion's seed reads by position (the signal's seed averages 9 MACD lines).
SEED_REACH = MACD_SIGNAL - 1
DEEPEST_LAG = FEATURE["roll_spread"].lags  # roll_spread reaches back to close 21 rows earlier, the deepest window
CS_K = 3.0 - 2.0 * math.sqrt(2.0)


def col(name: str) -> pl.Expr:
    """Shorthand for pl.col(name)."""
    return pl.col(name)


# How many earlier rows of each per-row input the windows read; lags are materialised once as columns.
LAG_DEPTH = {c.CLOSE: MACD_SLOW - 1, c.VOLUME: 19, LR: 19, SV: 19, DP: DEEPEST_LAG - 1, c.HIGH: 1, c.LOW: 1}


def lagged(name: str, k: int) -> pl.Expr:
    """name_{t-k}: the value k rows earlier in the frame (callers mask rows whose window leaves the series)."""
    return col(name) if k == 0 else col(f"_ft_{name}_{k}")


def lag_exprs() -> list[pl.Expr]:
    """One shifted copy of each windowed input per lag it is read at."""
    return [col(name).shift(k).alias(f"_ft_{name}_{k}") for name, depth in LAG_DEPTH.items() for k in range(1, depth + 1)]


def from_row(expr: pl.Expr, rows: int) -> pl.Expr:
    """expr where the frame holds at least `rows` earlier rows of the series, else null."""
    return pl.when(col(POS) >= rows).then(expr)


def total(terms: list[pl.Expr]) -> pl.Expr:
    """Pairwise sum (t0 + t1) + (t2 + t3) + ... in this fixed order; null if any term is null. Written out
    because pl.sum_horizontal associates the terms differently from run to run (last-bit differences); the
    balanced tree plans faster than a left fold."""
    terms = list(terms)
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def window_mean(name: str, w: int) -> pl.Expr:
    """(1/w) sum_{k<w} x_{t-k}."""
    return total([lagged(name, k) for k in range(w)]) / w


def centred(x: str, k: int, lag: int = 0) -> str:
    """Column name of x_{t-lag-k} - x_{t-lag}: a window's value k rows before its newest, minus the newest."""
    return f"_ft_d_{x}_{lag}_{k}"


# Inputs whose windows are centred (see window_cov) and the lags their windows end at; the differences are
# materialised once as columns: written inside each moment they were the bulk of the features' planning time.
CENTRED = {LR: (0,), SV: (0,), DP: (0, 1), c.CLOSE: (0,)}
MOMENT_WINDOW = 20


def centred_exprs() -> list[pl.Expr]:
    """x_{t-lag-k} - x_{t-lag} for k < MOMENT_WINDOW, every (x, lag) of CENTRED."""
    return [(lagged(x, k + lag) - lagged(x, lag)).alias(centred(x, k, lag))
            for x, lags in CENTRED.items() for lag in lags for k in range(1, MOMENT_WINDOW)]


def window_cov(x: str, y: str, w: int, y_lag: int = 0) -> pl.Expr:
    """Population covariance over w rows: mean(dx dy) - mean(dx) mean(dy), d = value - newest value of the window.

    Centring on the window's newest value keeps the result exact for flat windows (all d = 0) and free of
    the cancellation that raw moments of prices suffer. Reads the centred_exprs columns (w <= MOMENT_WINDOW)."""
    dx = [col(centred(x, k)) for k in range(1, w)]
    dy = [col(centred(y, k, y_lag)) for k in range(1, w)]
    return total([a * b for a, b in zip(dx, dy)]) / w - (total(dx) / w) * (total(dy) / w)


def window_std(x: str, w: int) -> pl.Expr:
    """Population standard deviation over w rows (variance floored at 0 against rounding)."""
    return pl.max_horizontal(window_cov(x, x, w), pl.lit(0.0)).sqrt()


def base_exprs() -> list[pl.Expr]:
    """Per-row inputs: log return ln(c_t/c_{t-1}), signed volume buy - sell, close change c_t - c_{t-1}."""
    prev_close = col(c.CLOSE).shift(1)
    return [
        from_row((col(c.CLOSE) / prev_close).log(), 1).alias(LR),
        (col(c.BUY_VOLUME) - col(c.SELL_VOLUME)).alias(SV),
        from_row(col(c.CLOSE) - prev_close, 1).alias(DP),
    ]


def nullify_zero(value: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """value where denominator != 0, else null."""
    return pl.when(denominator != 0).then(value)


def price_exprs() -> list[pl.Expr]:
    """sma_n = mean close over n; wma_5 = sum_k (5-k) c_{t-k} / 15; momentum_n = c_t / c_{t-n} - 1;
    velocity = (c_t - c_{t-1}) / s; acceleration = (velocity_t - velocity_{t-1}) / s, s = window seconds."""
    close, secs = col(c.CLOSE), col(SECS)
    wma = total([lagged(c.CLOSE, k) * float(5 - k) for k in range(5)]) / 15.0
    return [
        *(from_row(window_mean(c.CLOSE, n), n - 1).alias(f"sma_{n}") for n in (5, 10, 20)),
        from_row(wma, 4).alias("wma_5"),
        *(from_row(close / lagged(c.CLOSE, n) - 1.0, n).alias(f"momentum_{n}") for n in (3, 5)),
        (col(DP) / secs).alias("velocity"),
        from_row((col(DP) - lagged(DP, 1)) / (secs * secs), 2).alias("acceleration"),
    ]


def volume_exprs() -> list[pl.Expr]:
    """volume_sma_20 = mean volume over 20; volume_ratio = volume / volume_sma_20; vwap_deviation = (c - vwap)/vwap."""
    vsma = from_row(window_mean(c.VOLUME, 20), 19)
    return [
        vsma.alias("volume_sma_20"),
        nullify_zero(col(c.VOLUME) / vsma, vsma).alias("volume_ratio"),
        ((col(c.CLOSE) - col(c.VWAP)) / col(c.VWAP)).alias("vwap_deviation"),
    ]


def volatility_exprs() -> list[pl.Expr]:
    """log_return = ln(c_t/c_{t-1}); volatility_n = population std of log_return over n; high_low_ratio = high/low."""
    return [
        col(LR).alias("log_return"),
        *(from_row(window_std(LR, n), n).alias(f"volatility_{n}") for n in (5, 10)),
        (col(c.HIGH) / col(c.LOW)).alias("high_low_ratio"),
    ]


def cs_spread() -> pl.Expr:
    """Corwin-Schultz: beta = ln(H_t/L_t)^2 + ln(H_{t-1}/L_{t-1})^2, gamma = ln(max H / min L over both)^2,
    alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2)),
    S = 2 (e^alpha - 1) / (1 + e^alpha), floored at 0."""
    high, low = col(c.HIGH), col(c.LOW)
    ph, pl_ = lagged(c.HIGH, 1), lagged(c.LOW, 1)
    beta = (high / low).log().pow(2) + (ph / pl_).log().pow(2)
    gamma = (pl.max_horizontal(high, ph) / pl.min_horizontal(low, pl_)).log().pow(2)
    alpha = ((2.0 * beta).sqrt() - beta.sqrt()) / CS_K - (gamma / CS_K).sqrt()
    spread = 2.0 * (alpha.exp() - 1.0) / (1.0 + alpha.exp())
    return from_row(pl.when(spread < 0).then(0.0).otherwise(spread), 1)


def moment_exprs() -> list[pl.Expr]:
    """Population moments over 20 rows: cov(lr, sv), var(sv), cov(dc_t, dc_{t-1}), var(dc), std(close)."""
    return [
        window_cov(LR, SV, 20).alias(KYLE_COV),
        window_cov(SV, SV, 20).alias(KYLE_VAR),
        window_cov(DP, DP, 20, y_lag=1).alias(ROLL_COV),
        window_cov(DP, DP, 20).alias(ROLL_VAR),
        window_std(c.CLOSE, 20).alias(SIGMA_20),
    ]


def micro_exprs() -> list[pl.Expr]:
    """trade_intensity = trades/s; avg_trade_size = volume/trades; amihud = |lr|/quote_volume; kyle_lambda =
    cov(lr, sv)/var(sv) over 20; roll_spread = 2 sqrt(-cov(dc_t, dc_{t-1})) over 20 (population cov, null if > 0)."""
    trades = col(c.TRADES).cast(pl.Float64)
    kyle_var = col(KYLE_VAR)
    # Rounding leaves ~1e-17 of noise on a covariance that is truly 0; its sign must not decide null vs 0.
    raw_cov = col(ROLL_COV)
    roll_cov = pl.when(raw_cov.abs() <= 1e-9 * col(ROLL_VAR).abs()).then(0.0).otherwise(raw_cov)
    return [
        (trades / col(SECS)).alias("trade_intensity"),
        nullify_zero(col(c.VOLUME) / trades, trades).alias("avg_trade_size"),
        nullify_zero(col(LR).abs() / col(c.QUOTE_VOLUME), col(c.QUOTE_VOLUME)).alias("amihud"),
        from_row(nullify_zero(col(KYLE_COV) / kyle_var, kyle_var), 20).alias("kyle_lambda"),
        from_row(pl.when(roll_cov <= 0).then(2.0 * (-roll_cov).sqrt()), DEEPEST_LAG).alias("roll_spread"),
        cs_spread().alias("cs_spread"),
    ]


def bollinger_pctb() -> pl.Expr:
    """%B = (c - lower)/(upper - lower), bands = SMA20 -+ 2 sigma (population) = (2 sigma - (SMA20 - c)) / (4 sigma)."""
    sigma = col(SIGMA_20)
    above = total([col(centred(c.CLOSE, k)) for k in range(1, 20)]) / 20.0  # SMA20 - close
    return from_row(nullify_zero((2.0 * sigma - above) / (4.0 * sigma), sigma), 19).alias("bb_pctb_20")


def resume(x: pl.Expr, seed: pl.Expr, seed_row: int, state: str) -> pl.Expr:
    """Input of a recursion: the carried state on the last prior row, `seed` at series row seed_row, x after it."""
    return (
        pl.when(col(LAST_PRIOR)).then(col(state))
        .when(~col(NEW)).then(None)
        .when(col(N) == seed_row).then(seed)
        .when(col(N) > seed_row).then(x)
    )


def smooth(z: pl.Expr, alpha: float, state: str) -> pl.Expr:
    """y_t = y_{t-1} + alpha (z_t - y_{t-1}) from the first non-null z; carried rows keep their stored state."""
    y = z.ewm_mean(alpha=alpha, adjust=False, ignore_nulls=True).over(SID)
    return pl.when(col(NEW)).then(y).otherwise(col(state)).alias(state)


def seed_mean(x: pl.Expr, period: int) -> pl.Expr:
    """(1/period) sum_{k<period} x_{t-k}, for the one seed row of a recursion."""
    return total([x.shift(k) for k in range(period)]) / period


def ema(x: pl.Expr, period: int, seed_row: int, state: str, seed: pl.Expr | None = None) -> pl.Expr:
    """TA-Lib EMA, k = 2/(period+1), seeded at seed_row with the mean of the `period` values ending there."""
    seed = seed_mean(x, period) if seed is None else seed
    return smooth(resume(x, seed, seed_row, state), 2.0 / (period + 1), state)


def recursive_exprs() -> list[pl.Expr]:
    """EMA 5/10/20 (seed rows 4/9/19), MACD's EMA12 and EMA26 (both seeded at row 25), Wilder RSI gain/loss averages."""
    close, dp = col(c.CLOSE), col(DP)
    gain = pl.when(dp > 0).then(dp).otherwise(0.0)
    loss = pl.when(dp < 0).then(-dp).otherwise(0.0)
    alpha = 1.0 / RSI_PERIOD
    return [
        *(ema(close, p, p - 1, ST_EMA[p], window_mean(c.CLOSE, p)) for p in (5, 10, 20)),
        *(ema(close, p, MACD_SEED_ROW, ST_EMA[p], window_mean(c.CLOSE, p)) for p in (MACD_FAST, MACD_SLOW)),
        smooth(resume(gain, seed_mean(gain, RSI_PERIOD), RSI_PERIOD, ST_GAIN), alpha, ST_GAIN),
        smooth(resume(loss, seed_mean(loss, RSI_PERIOD), RSI_PERIOD, ST_LOSS), alpha, ST_LOSS),
    ]


def signal_expr() -> pl.Expr:
    """MACD signal: EMA9 of the MACD line, seeded at row 33 with the mean of the MACD lines of rows 25..33."""
    line = col(MACD_LINE)
    return ema(line, MACD_SIGNAL, SIGNAL_SEED_ROW, ST_SIGNAL)


def indicator_exprs() -> list[pl.Expr]:
    """ema_n; rsi_5 = 100 g/(g + l) (0 when g + l = 0, as TA-Lib); macd = EMA12 - EMA26, macd_hist = macd - signal."""
    g, l_ = col(ST_GAIN), col(ST_LOSS)
    warm = col(N) >= SIGNAL_SEED_ROW
    return [
        *(col(ST_EMA[p]).alias(f"ema_{p}") for p in (5, 10, 20)),
        pl.when(g + l_ == 0).then(0.0).otherwise(100.0 * g / (g + l_)).alias("rsi_5"),
        pl.when(warm).then(col(MACD_LINE)).alias("macd"),
        pl.when(warm).then(col(ST_SIGNAL)).alias("macd_signal"),
        pl.when(warm).then(col(MACD_LINE) - col(ST_SIGNAL)).alias("macd_hist"),
    ]
