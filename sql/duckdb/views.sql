-- Reader-facing views over the tables `candles`, `ticks` and `quarantine`.
-- Same view names and columns as sql/bigquery/ so dashboards and queries port unchanged.
-- Days and hours are taken in UTC whatever the session time zone: timezone('UTC', ts) is the UTC wall time.

-- One row per (exchange, symbol, timeframe, timestamp_in): the highest revision wins (a late trade
-- produces revision + 1); equal revisions (the same key written twice) resolve to the latest timestamp_out.
-- Rows written before base_volume existed were computed with the rule every series then had (base = volume,
-- vwap = quote_volume / volume): they read with base_volume = volume, true to how they were computed.
CREATE OR REPLACE VIEW candles_latest AS
SELECT * REPLACE (coalesce(base_volume, volume) AS base_volume)
FROM candles
QUALIFY row_number() OVER (
    PARTITION BY exchange, symbol, timeframe, timestamp_in
    ORDER BY revision DESC, timestamp_out DESC NULLS LAST
) = 1;

-- One view per registered timeframe (contract/timeframes.py), rendered when the SQL is read.
${timeframe_views}

-- Key columns plus the feature columns (the registry in contract/features.py, rendered when the SQL is read),
-- latest revision only.
CREATE OR REPLACE VIEW features AS
SELECT
    exchange, symbol, timeframe, timestamp_in, close, gap,
    ${feature_columns}
FROM candles_latest;

-- One row per exchange, symbol and UTC day, from the 1d candles.
CREATE OR REPLACE VIEW daily_summary AS
SELECT
    exchange, symbol,
    CAST(timezone('UTC', timestamp_in) AS DATE) AS day,
    open, high, low, close, volume, base_volume, quote_volume, buy_volume, sell_volume, trades, vwap,
    (close / open - 1) AS change,
    (high / low - 1) AS range
FROM candles_1d;

-- Streaming SLO: how long after a window closed its candle was emitted, per UTC hour of emission.
CREATE OR REPLACE VIEW ingest_latency AS
SELECT
    exchange, symbol, timeframe,
    date_trunc('hour', timezone('UTC', timestamp_out)) AS hour,
    count(*) AS candles,
    quantile_cont(latency_ms, 0.5) AS latency_p50_ms,
    quantile_cont(latency_ms, 0.95) AS latency_p95_ms,
    quantile_cont(latency_ms, 0.99) AS latency_p99_ms,
    max(latency_ms) AS latency_max_ms
FROM candles
WHERE revision = 0
GROUP BY ALL;

-- Per exchange, symbol, timeframe and UTC day: completeness, gaps by cause, late trades and revisions.
CREATE OR REPLACE VIEW data_quality AS
WITH latest AS (
    SELECT
        exchange, symbol, timeframe,
        CAST(timezone('UTC', timestamp_in) AS DATE) AS day,
        count(*) AS candles,
        count(*) FILTER (WHERE trades = 0) AS empty_candles,
        count(*) FILTER (WHERE gap = 'quiet') AS gaps_quiet,
        count(*) FILTER (WHERE gap = 'feed') AS gaps_feed,
        coalesce(sum(late_trades), 0) AS late_trades,
        count(*) FILTER (WHERE revision > 0) AS revised_candles,
        min(timestamp_in) AS first_candle,
        max(timestamp_in) AS last_candle
    FROM candles_latest
    GROUP BY ALL
), stored AS (
    SELECT
        exchange, symbol, timeframe,
        CAST(timezone('UTC', timestamp_in) AS DATE) AS day,
        count(*) AS revisions
    FROM candles
    WHERE revision > 0
    GROUP BY ALL
)
SELECT l.*, coalesce(s.revisions, 0) AS revisions
FROM latest AS l
LEFT JOIN stored AS s USING (exchange, symbol, timeframe, day);

-- Rejected input rows by source, UTC day of the data, field and reason. The data's day is the exchange time
-- of a Tardis CSV line when it parses, else the day in the source's name (Tardis day files carry it), else
-- the day the row was quarantined (a live stream's late trade).
CREATE OR REPLACE VIEW quarantine_summary AS
SELECT
    source,
    coalesce(
        CAST(CASE WHEN TRY_CAST(split_part(raw, ',', 3) AS BIGINT) BETWEEN 0 AND 4102444800000000
             THEN make_timestamp(TRY_CAST(split_part(raw, ',', 3) AS BIGINT)) END AS DATE),
        TRY_CAST(regexp_extract(source, '(\d{4}-\d{2}-\d{2})', 1) AS DATE),
        CAST(timezone('UTC', quarantined_at) AS DATE)
    ) AS day,
    field,
    reason,
    count(*) AS rows,
    min(line) AS first_line,
    max(line) AS last_line,
    min(quarantined_at) AS first_at,
    max(quarantined_at) AS last_at
FROM quarantine
GROUP BY ALL;
