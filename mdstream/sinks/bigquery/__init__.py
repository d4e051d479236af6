"""BigQuery: tables, views, the Storage Write API sink, cost and verify read-back."""

from .config import BigQueryConfig
from .sink import BigQuerySink, open_sink
from .views import read_candles

__all__ = ["BigQueryConfig", "BigQuerySink", "open_sink", "read_candles"]
