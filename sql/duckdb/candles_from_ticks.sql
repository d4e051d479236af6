-- Candles recomputed from the `ticks` table for every timeframe: the independent local truth.
-- Parameters (NULL = unbounded): $from_us, $to_us: event-time range [from, to) in epoch microseconds;
-- $symbols: list of symbols (VARCHAR[]).
-- Windows are epoch-aligned in integer microseconds (every timeframe divides a day, so this is the same
-- as counting from UTC midnight) and half-open: a trade at exactly 00:01:00 belongs to the 00:01 window.
-- Trades inside a window are ordered by (timestamp, local_timestamp, length(id), id): ids are numeric
-- strings, so the length first makes '9' sort before '10'. NULLs sort first, as in the engine. Rows tied on
-- all of these keep their arrival order: the rowid of the `ticks` table (which must be a table, not a view).
-- The dense grid spans the first to the last window with trades of each series; empty windows carry the
-- previous close, zero volumes and trades, and a NULL vwap.
-- Volumes follow each series' instrument in the relation `instruments` (exchange, symbol, kind, contract_size;
-- the caller provides it, possibly empty; a series it does not list is linear with size 1). With s the
-- contract size, window sums are scaled as the pipeline does:
--   spot, linear, quanto: base_volume = s * sum(amount),         quote_volume = s * sum(price * amount)
--   inverse:              base_volume = s * sum(amount / price),  quote_volume = s * sum(amount)
-- and vwap = quote_volume / base_volume.
WITH timeframes(timeframe, us) AS (
    VALUES ${timeframe_widths}  -- every registered timeframe (contract/timeframes.py)
),
rules AS (
    SELECT exchange, symbol, any_value(kind = 'inverse') AS is_inverse, any_value(contract_size) AS size
    FROM instruments
    GROUP BY exchange, symbol
),
trades AS (
    SELECT exchange, symbol, timestamp, local_timestamp, id, side, price, amount, epoch_us(timestamp) AS ts_us,
           rowid AS arrival
    FROM ticks
    WHERE ($from_us IS NULL OR epoch_us(timestamp) >= $from_us)
      AND ($to_us IS NULL OR epoch_us(timestamp) < $to_us)
      AND ($symbols IS NULL OR list_contains($symbols, symbol))
),
bucketed AS (
    -- floor division that stays exact (and correct for pre-1970 times) in integers
    SELECT t.*, f.timeframe, f.us, t.ts_us - (((t.ts_us % f.us) + f.us) % f.us) AS win_us
    FROM trades AS t CROSS JOIN timeframes AS f
),
windows AS (
    SELECT
        exchange, symbol, timeframe, us, win_us,
        first(price ORDER BY timestamp, local_timestamp NULLS FIRST, length(id) NULLS FIRST, id NULLS FIRST, arrival) AS open,
        max(price) AS high,
        min(price) AS low,
        last(price ORDER BY timestamp, local_timestamp NULLS FIRST, length(id) NULLS FIRST, id NULLS FIRST, arrival) AS close,
        sum(amount) AS volume,
        sum(price * amount) AS raw_quote,
        sum(amount / price) AS amount_per_price,
        coalesce(sum(amount) FILTER (WHERE side = 'buy'), 0) AS buy_volume,
        coalesce(sum(amount) FILTER (WHERE side = 'sell'), 0) AS sell_volume,
        count(*) AS trades,
        min(timestamp) AS first_trade_at,
        max(timestamp) AS last_trade_at
    FROM bucketed
    GROUP BY exchange, symbol, timeframe, us, win_us
),
scaled AS (
    SELECT w.*,
           CASE WHEN coalesce(r.is_inverse, false) THEN w.amount_per_price ELSE w.volume END
               * coalesce(r.size, 1.0) AS base_volume,
           CASE WHEN coalesce(r.is_inverse, false) THEN w.volume ELSE w.raw_quote END
               * coalesce(r.size, 1.0) AS quote_volume
    FROM windows AS w
    LEFT JOIN rules AS r USING (exchange, symbol)
),
grid AS (
    SELECT exchange, symbol, timeframe, unnest(range(min(win_us), max(win_us) + us, us)) AS win_us
    FROM windows
    GROUP BY exchange, symbol, timeframe, us
),
dense AS (
    SELECT
        g.exchange, g.symbol, g.timeframe, g.win_us, w.open, w.high, w.low, w.close,
        w.volume, w.base_volume, w.quote_volume, w.buy_volume, w.sell_volume, w.trades, w.first_trade_at, w.last_trade_at,
        last_value(w.close IGNORE NULLS) OVER (
            PARTITION BY g.exchange, g.symbol, g.timeframe ORDER BY g.win_us
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS carried_close
    FROM grid AS g
    LEFT JOIN scaled AS w USING (exchange, symbol, timeframe, win_us)
)
SELECT
    exchange, symbol, timeframe,
    timezone('UTC', make_timestamp(win_us)) AS timestamp_in,
    coalesce(open, carried_close) AS open,
    coalesce(high, carried_close) AS high,
    coalesce(low, carried_close) AS low,
    coalesce(close, carried_close) AS close,
    coalesce(volume, 0) AS volume,
    coalesce(base_volume, 0) AS base_volume,
    coalesce(quote_volume, 0) AS quote_volume,
    coalesce(buy_volume, 0) AS buy_volume,
    coalesce(sell_volume, 0) AS sell_volume,
    coalesce(trades, 0) AS trades,
    quote_volume / nullif(base_volume, 0) AS vwap,
    first_trade_at,
    last_trade_at
FROM dense
ORDER BY exchange, symbol, timeframe, win_us
