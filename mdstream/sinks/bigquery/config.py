"""Where BigQuery lives (project, dataset, location, endpoints) and how to build its clients."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ...contract.errors import ConfigError

NO_CREDENTIALS = ("no Google credentials found: run `gcloud auth application-default login` or set "
                  "GOOGLE_APPLICATION_CREDENTIALS (an emulator needs --bq-api-endpoint instead)")
# BigQuery's naming rules, checked before a name reaches SQL or a resource path (quoting alone is not enough):
# project ids are 6-30 lower-case letters, digits and hyphens, starting with a letter, not ending with a hyphen
# (optionally domain-scoped, example.com:my-project); datasets are letters, digits and underscores, at most 1024.
_PROJECT = re.compile(r"(?:[a-z0-9][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")
_LOCATION = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,62}")
# The real API accepts AppendRows requests up to 10 MB; keep headroom for the envelope.
PRODUCTION_REQUEST_LIMIT = 9 * 1024 * 1024
ENV = {
    "project": "GOOGLE_CLOUD_PROJECT",
    "dataset": "MDSTREAM_BQ_DATASET",
    "location": "MDSTREAM_BQ_LOCATION",
    "api_endpoint": "MDSTREAM_BQ_API_ENDPOINT",
    "write_endpoint": "MDSTREAM_BQ_WRITE_ENDPOINT",
    "request_limit_bytes": "MDSTREAM_BQ_REQUEST_LIMIT_BYTES",
    "spool_dir": "MDSTREAM_BQ_SPOOL_DIR",
    "spool_max_bytes": "MDSTREAM_BQ_SPOOL_MAX_BYTES",
    "setup_seconds": "MDSTREAM_BQ_SETUP_SECONDS",
}


@dataclass(frozen=True)
class BigQueryConfig:
    """Settings of the BigQuery sink; `from_env` reads the environment, flags override."""

    project: str
    dataset: str = "mdstream"
    location: str = "US"
    api_endpoint: str | None = None  # REST, e.g. http://127.0.0.1:9050 (switches to anonymous credentials)
    write_endpoint: str | None = None  # Storage Write/Read gRPC HOST:PORT, insecure (anonymous credentials)
    request_limit_bytes: int = PRODUCTION_REQUEST_LIMIT
    spool_dir: Path = field(default_factory=lambda: Path(".mdstream") / "spool" / "bigquery")
    spool_max_bytes: int = 512 * 1024 * 1024
    timeout_seconds: float = 30.0  # per call; an outage is noticed within this time
    spool_block_seconds: float = 60.0  # how long a full spool waits for room before failing
    setup_seconds: float = 10.0  # deadline of each set-up call (dataset, tables); an unreachable service fails fast
    close_seconds: float = 10.0  # how long closing a stream waits for the spool to drain; the rest waits on disk

    def __post_init__(self) -> None:
        """Refuse names BigQuery would not accept before any reaches SQL (ConfigError naming the rule)."""
        check_names(self.project, self.dataset, self.location)

    @classmethod
    def from_env(cls, **overrides) -> BigQueryConfig:
        """Config from GOOGLE_CLOUD_PROJECT, MDSTREAM_BQ_* and `overrides` (None values are ignored)."""
        values: dict = {}
        for name, variable in ENV.items():
            if os.environ.get(variable):
                values[name] = os.environ[variable]
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ConfigError(f"unknown BigQuery settings: {', '.join(sorted(unknown))}")
        if not values.get("project"):
            raise ConfigError("BigQuery project not set: pass --bq-project or set GOOGLE_CLOUD_PROJECT")
        for name in ("request_limit_bytes", "spool_max_bytes"):
            if name in values:
                try:
                    values[name] = int(values[name])
                except ValueError:
                    raise ConfigError(f"{ENV[name]} must be an integer number of bytes, got {values[name]!r}") from None
        if "setup_seconds" in values:
            try:
                values["setup_seconds"] = float(values["setup_seconds"])
            except ValueError:
                raise ConfigError(f"{ENV['setup_seconds']} must be a number of seconds, "
                                  f"got {values['setup_seconds']!r}") from None
        if "spool_dir" in values:
            values["spool_dir"] = Path(values["spool_dir"])
        config = cls(**values)
        if config.request_limit_bytes < 64 * 1024:
            raise ConfigError(f"request limit {config.request_limit_bytes} bytes is too small (minimum 65536)")
        return config

    def table_id(self, table: str) -> str:
        """Fully-qualified `project.dataset.table`."""
        return f"{self.project}.{self.dataset}.{table}"

    def table_path(self, table: str) -> str:
        """Resource path of a table as the Storage Write API names it."""
        return f"projects/{self.project}/datasets/{self.dataset}/tables/{table}"

    def with_(self, **changes) -> BigQueryConfig:
        """A copy with `changes`."""
        return replace(self, **changes)


def check_names(project: str, dataset: str, location: str | None = None) -> None:
    """ConfigError unless project, dataset and location follow BigQuery's naming rules."""
    if not _PROJECT.fullmatch(project or ""):
        raise ConfigError(f"invalid BigQuery project {project!r}: 6-30 lower-case letters, digits and hyphens, "
                          "starting with a letter and not ending with a hyphen")
    if not _DATASET.fullmatch(dataset or ""):
        raise ConfigError(f"invalid BigQuery dataset {dataset!r}: letters, digits and underscores only (at most 1024)")
    if location is not None and not _LOCATION.fullmatch(location):
        raise ConfigError(f"invalid BigQuery location {location!r}, e.g. US, EU or europe-west1")


def _credentials_error(error: BaseException) -> bool:
    """Whether `error` says Google credentials are missing or unusable."""
    from google.auth import exceptions

    return isinstance(error, (exceptions.DefaultCredentialsError, exceptions.RefreshError))


def rest_client(config: BigQueryConfig):
    """google.cloud.bigquery.Client for `config` (ADC, or anonymous at an overridden endpoint)."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    if config.api_endpoint:
        return bigquery.Client(project=config.project, location=config.location,
                               credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=config.api_endpoint))
    try:
        return bigquery.Client(project=config.project, location=config.location)
    except Exception as error:  # noqa: BLE001 - only credential errors are translated
        if _credentials_error(error):
            raise ConfigError(NO_CREDENTIALS) from error
        raise


# The longest wait of the write channel between reconnect attempts (gRPC's default grows to minutes).
MAX_RECONNECT_BACKOFF_MS = 2000


def write_client(config: BigQueryConfig):
    """BigQueryWriteClient for `config` (ADC, or an insecure channel to the overridden endpoint)."""
    from google.cloud.bigquery_storage_v1 import BigQueryWriteClient

    if config.write_endpoint:
        import grpc
        from google.cloud.bigquery_storage_v1.services.big_query_write.transports import (
            BigQueryWriteGrpcTransport,
        )

        limit = max(config.request_limit_bytes * 2, 16 * 1024 * 1024)
        # Reconnect quickly after the endpoint comes back.
        options = [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit),
                   ("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS)]
        channel = grpc.insecure_channel(config.write_endpoint, options=options)
        return BigQueryWriteClient(transport=BigQueryWriteGrpcTransport(channel=channel))
    try:
        return BigQueryWriteClient()
    except Exception as error:  # noqa: BLE001 - only credential errors are translated
        if _credentials_error(error):
            raise ConfigError(NO_CREDENTIALS) from error
        raise
