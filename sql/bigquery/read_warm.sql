-- Candles a restarted job continues from (latest revisions): per series the newest @rows windows and every window
-- since the UTC midnight of its newest one, of @exchange and @timeframes (and @symbols unless empty), before @before.
SELECT *
FROM `${project}.${dataset}.candles_latest`
WHERE exchange = @exchange
  AND timeframe IN UNNEST(@timeframes)
  AND (ARRAY_LENGTH(@symbols) = 0 OR symbol IN UNNEST(@symbols))
  AND timestamp_in < @before
QUALIFY ROW_NUMBER() OVER (PARTITION BY exchange, symbol, timeframe ORDER BY timestamp_in DESC) <= @rows
  OR UNIX_MICROS(timestamp_in) >= DIV(MAX(UNIX_MICROS(timestamp_in)) OVER (PARTITION BY exchange, symbol, timeframe), 86400000000) * 86400000000;
