"""SQL shipped with mdstream: DuckDB and BigQuery views and recomputation queries."""
