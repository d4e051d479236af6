-- Before a re-run day is committed: remove what earlier runs wrote for (exchange, symbol, UTC day).
-- ${table} is candles (by window start) or ticks (by trade time); ${column} names that time column.
-- The partition filter on ${column} keeps the DELETE to one day's partition.
DELETE FROM `${project}.${dataset}.${table}`
WHERE exchange = @exchange
  AND symbol = @symbol
  AND ${column} >= @day_start
  AND ${column} < @day_end;
