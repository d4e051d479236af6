"""Creating or migrating the dataset, tables and views: one function for `mdstream bigquery init` and for a
sink's first write, each call bounded so an unreachable service fails within seconds, every error one line."""

from __future__ import annotations

from ...contract.errors import SinkError
from .config import BigQueryConfig
from .schema import ensure_tables
from .views import create_views, views_exist
from .writer import translate


def initialize(client, config: BigQueryConfig, *, force_views: bool = False) -> tuple[dict[str, list[str]], list[str]]:
    """Create the dataset and tables if missing, add new columns, and (re)create the views when missing, when
    a table changed or with `force_views`; ({table: added columns}, views created). Each call has the config's
    set-up deadline; failures raise SinkUnavailable (transient) or SinkError, naming the step."""
    from google.cloud import bigquery

    retry = bigquery.DEFAULT_RETRY.with_deadline(config.setup_seconds)
    step = "creating the BigQuery dataset and tables"
    try:
        changed = ensure_tables(client, config, retry=retry, timeout=config.setup_seconds)
        step = "listing the BigQuery views"
        missing = force_views or not views_exist(client, config, retry=retry)
    except SinkError:
        raise
    except Exception as error:  # noqa: BLE001 - the client raises many types; translate names them
        raise translate(error, f"{step} in {config.project}.{config.dataset}") from error
    # A view expands `SELECT *` when created: recreate them after a table gained columns.
    views = create_views(client, config) if missing or any(changed.values()) else []
    return changed, views
