-- Reader-facing views over the tables `candles`, `ticks` and `quarantine` (BigQuery standard SQL).
-- Same view names and columns as sql/duckdb/views.sql so dashboards and queries port unchanged.
-- ${project} and ${dataset} are filled in when the views are created (a view names its tables in full).
-- Days and hours are UTC: DATE() and TIMESTAMP_TRUNC() of a TIMESTAMP default to UTC.

-- One row per (exchange, symbol, timeframe, timestamp_in): the highest revision wins (a late trade
-- produces revision + 1); equal revisions (the same key written twice) resolve to the latest timestamp_out.
-- Rows written before base_volume existed were computed with the rule every series then had (base = volume,
-- vwap = quote_volume / volume): they read with base_volume = volume, true to how they were computed.
CREATE OR REPLACE VIEW `${project}.${dataset}.candles_latest` AS
SELECT * REPLACE (COALESCE(base_volume, volume) AS base_volume)
FROM `${project}.${dataset}.candles`
WHERE TRUE
QUALIFY ROW_NUMBER() OVER (
    PARTITION BY exchange, symbol, timeframe, timestamp_in
    ORDER BY revision DESC, timestamp_out DESC
) = 1;

-- One view per registered timeframe (contract/timeframes.py), rendered when the SQL is read.
${timeframe_views}

-- Key columns plus the feature columns (the registry in contract/features.py, rendered when the SQL is read),
-- latest revision only.
CREATE OR REPLACE VIEW `${project}.${dataset}.features` AS
SELECT
    exchange, symbol, timeframe, timestamp_in, close, gap,
    ${feature_columns}
FROM `${project}.${dataset}.candles_latest`;

-- One row per exchange, symbol and UTC day, from the 1d candles.
CREATE OR REPLACE VIEW `${project}.${dataset}.daily_summary` AS
SELECT
    exchange, symbol,
    DATE(timestamp_in) AS day,
    open, high, low, close, volume, base_volume, quote_volume, buy_volume, sell_volume, trades, vwap,
    (close / open - 1) AS change,
    (high / low - 1) AS `range`
FROM `${project}.${dataset}.candles_1d`;

-- Streaming SLO: how long after a window closed its candle was emitted, per UTC hour of emission.
-- APPROX_QUANTILES over 100 buckets: BigQuery has no exact percentile aggregate.
CREATE OR REPLACE VIEW `${project}.${dataset}.ingest_latency` AS
SELECT
    exchange, symbol, timeframe,
    TIMESTAMP_TRUNC(timestamp_out, HOUR) AS hour,
    COUNT(*) AS candles,
    APPROX_QUANTILES(latency_ms, 100)[OFFSET(50)] AS latency_p50_ms,
    APPROX_QUANTILES(latency_ms, 100)[OFFSET(95)] AS latency_p95_ms,
    APPROX_QUANTILES(latency_ms, 100)[OFFSET(99)] AS latency_p99_ms,
    MAX(latency_ms) AS latency_max_ms
FROM `${project}.${dataset}.candles`
WHERE revision = 0
GROUP BY exchange, symbol, timeframe, hour;

-- Per exchange, symbol, timeframe and UTC day: completeness, gaps by cause, late trades and revisions.
CREATE OR REPLACE VIEW `${project}.${dataset}.data_quality` AS
WITH latest AS (
    SELECT
        exchange, symbol, timeframe,
        DATE(timestamp_in) AS day,
        COUNT(*) AS candles,
        COUNTIF(trades = 0) AS empty_candles,
        COUNTIF(gap = 'quiet') AS gaps_quiet,
        COUNTIF(gap = 'feed') AS gaps_feed,
        COALESCE(SUM(late_trades), 0) AS late_trades,
        COUNTIF(revision > 0) AS revised_candles,
        MIN(timestamp_in) AS first_candle,
        MAX(timestamp_in) AS last_candle
    FROM `${project}.${dataset}.candles_latest`
    GROUP BY exchange, symbol, timeframe, day
), stored AS (
    SELECT
        exchange, symbol, timeframe,
        DATE(timestamp_in) AS day,
        COUNT(*) AS revisions
    FROM `${project}.${dataset}.candles`
    WHERE revision > 0
    GROUP BY exchange, symbol, timeframe, day
)
SELECT l.*, COALESCE(s.revisions, 0) AS revisions
FROM latest AS l
LEFT JOIN stored AS s USING (exchange, symbol, timeframe, day);

-- Rejected input rows by source, UTC day of the data (as in sql/duckdb/views.sql), field and reason.
CREATE OR REPLACE VIEW `${project}.${dataset}.quarantine_summary` AS
SELECT
    source,
    COALESCE(
        DATE(TIMESTAMP_MICROS(CASE WHEN SAFE_CAST(SPLIT(raw, ',')[SAFE_OFFSET(2)] AS INT64) BETWEEN 0 AND 4102444800000000
                                   THEN SAFE_CAST(SPLIT(raw, ',')[SAFE_OFFSET(2)] AS INT64) END)),
        SAFE_CAST(REGEXP_EXTRACT(source, r'(\d{4}-\d{2}-\d{2})') AS DATE),
        DATE(quarantined_at)
    ) AS day,
    field,
    reason,
    COUNT(*) AS `rows`,
    MIN(line) AS first_line,
    MAX(line) AS last_line,
    MIN(quarantined_at) AS first_at,
    MAX(quarantined_at) AS last_at
FROM `${project}.${dataset}.quarantine`
GROUP BY source, day, field, reason;
