-- Raw ticks of some symbols in [from_ts, to_ts), read back to recompute candles locally (mdstream verify).
SELECT exchange, symbol, timestamp, local_timestamp, id, side, price, amount
FROM `${project}.${dataset}.ticks`
WHERE symbol IN UNNEST(@symbols)
  AND timestamp >= @from_ts
  AND timestamp < @to_ts
ORDER BY exchange, symbol, timestamp;
