-- Candles as readers see them (latest revision per key) for verification against a local recomputation.
SELECT *
FROM `${project}.${dataset}.candles_latest`
WHERE symbol IN UNNEST(@symbols)
  AND timestamp_in >= @from_ts
  AND timestamp_in < @to_ts
ORDER BY exchange, symbol, timeframe, timestamp_in;
