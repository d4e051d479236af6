"""Storage Write API over Arrow: size-capped requests, committed streams with offsets, pending streams."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pyarrow as pa
from google.api_core import exceptions as gexc

from ...contract.errors import SinkError, SinkUnavailable

# Transient: the service is down, overloaded or the call timed out; the same request may succeed later.
_TRANSIENT = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.ResourceExhausted, gexc.TooManyRequests,
              gexc.InternalServerError, gexc.Aborted, gexc.RetryError, gexc.BadGateway, gexc.GatewayTimeout,
              gexc.Unknown, gexc.Cancelled)
_TRANSIENT_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                   grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED, grpc.StatusCode.UNKNOWN,
                   grpc.StatusCode.CANCELLED}
_OK, _ALREADY_EXISTS = 0, grpc.StatusCode.ALREADY_EXISTS.value[0]


class StreamLost(SinkError):
    """The write stream no longer exists on the server (expired, or the service lost it)."""


def retry_after(error: BaseException) -> float | None:
    """Seconds the server asked to wait (google.rpc.RetryInfo), if it said."""
    for detail in getattr(error, "details", None) or []:
        delay = getattr(detail, "retry_delay", None)
        if delay is not None and (delay.seconds or delay.nanos):
            return delay.seconds + delay.nanos / 1e9
    return None


def translate(error: BaseException, what: str) -> BaseException:
    """A Google/gRPC/network error as SinkUnavailable (transient), StreamLost or SinkError."""
    if isinstance(error, SinkError):
        return error
    import requests
    from google.auth import exceptions as auth

    if isinstance(error, (auth.DefaultCredentialsError, auth.RefreshError)):
        from .config import NO_CREDENTIALS

        return SinkError(f"BigQuery refused {what}: {NO_CREDENTIALS} ({_first_line(error)})")
    if isinstance(error, auth.TransportError):
        return SinkUnavailable(f"BigQuery unavailable during {what}: {_first_line(error)}")

    code = error.code() if isinstance(error, grpc.RpcError) and callable(getattr(error, "code", None)) else None
    if isinstance(error, _TRANSIENT) or code in _TRANSIENT_GRPC or isinstance(error, (requests.ConnectionError,
                                                                                       requests.Timeout,
                                                                                       ConnectionError, TimeoutError)):
        return SinkUnavailable(f"BigQuery unavailable during {what}: {_first_line(error)}", retry_after=retry_after(error))
    message = _first_line(error)
    if isinstance(error, gexc.NotFound) or (isinstance(error, gexc.InvalidArgument) and "stream" in message.lower()
                                            and ("invalid stream" in message.lower() or "not found" in message.lower())):
        return StreamLost(f"{what}: {message}")
    return SinkError(f"BigQuery refused {what}: {message}")


def _first_line(error: BaseException, limit: int = 400) -> str:
    """The first line of an error message (Google's carry the whole response), at most `limit` characters."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def record_batches(table: pa.Table, limit_bytes: int) -> list[pa.RecordBatch]:
    """Split `table` into record batches whose serialized size stays under `limit_bytes`; deterministic."""
    table = table.combine_chunks()
    out: list[pa.RecordBatch] = []
    pending = [table.slice(0)]
    while pending:
        part = pending.pop(0)
        if part.num_rows == 0:
            continue
        batch = part.to_batches()[0]
        size = batch.serialize().size
        if size <= limit_bytes:
            out.append(batch)
            continue
        if part.num_rows == 1:
            raise SinkError(f"one row serializes to {size} bytes, over the request limit of {limit_bytes}")
        half = part.num_rows // 2
        pending[:0] = [part.slice(0, half), part.slice(half)]
    return out


def _request(stream: str, offset: int | None, schema: bytes | None, batch: pa.RecordBatch):
    """One AppendRowsRequest carrying `batch` in Arrow format (schema only on a connection's first request)."""
    from google.cloud.bigquery_storage_v1 import types

    data = types.AppendRowsRequest.ArrowData(
        rows=types.ArrowRecordBatch(serialized_record_batch=batch.serialize().to_pybytes(), row_count=batch.num_rows))
    if schema is not None:
        data.writer_schema = types.ArrowSchema(serialized_schema=schema)
    request = types.AppendRowsRequest(write_stream=stream, arrow_rows=data)
    if offset is not None:
        request.offset = offset
    return request


@dataclass
class AppendResult:
    """What one append did: rows sent, rows the server already had (a retried offset), request bytes."""

    rows: int
    duplicates: int
    bytes: int


class StreamWriter:
    """Appends Arrow tables to one write stream at explicit offsets; a repeated offset is answered ALREADY_EXISTS."""

    def __init__(self, client, limit_bytes: int, timeout: float):
        self.client, self.limit_bytes, self.timeout = client, limit_bytes, timeout

    def create(self, table_path: str, pending: bool) -> str:
        """Create an application stream (PENDING or COMMITTED) on `table_path`; its name."""
        from google.cloud.bigquery_storage_v1 import types

        kind = types.WriteStream.Type.PENDING if pending else types.WriteStream.Type.COMMITTED
        try:
            stream = self.client.create_write_stream(parent=table_path, write_stream=types.WriteStream(type_=kind),
                                                     retry=None, timeout=self.timeout)
        except Exception as error:  # noqa: BLE001 - every failure is translated into the sink's errors
            raise translate(error, f"creating a write stream on {table_path}") from error
        return stream.name

    def append(self, stream: str, start: int, table: pa.Table) -> AppendResult:
        """Append `table` at offsets start.. (split under the request limit); re-sent offsets count as duplicates."""
        schema = table.schema.serialize().to_pybytes()
        batches = record_batches(table, self.limit_bytes - len(schema) - 1024)
        requests, offset = [], start
        for i, batch in enumerate(batches):
            requests.append(_request(stream, offset, schema if i == 0 else None, batch))
            offset += batch.num_rows
        sent = sum(len(r.arrow_rows.rows.serialized_record_batch) for r in requests) + len(schema)
        duplicates = 0
        try:
            responses = list(self.client.append_rows(iter(requests), retry=None, timeout=self.timeout))
        except Exception as error:  # noqa: BLE001
            raise translate(error, f"appending to {stream}") from error
        if len(responses) != len(requests):
            raise SinkUnavailable(f"BigQuery answered {len(responses)} of {len(requests)} appends to {stream}")
        for batch, response in zip(batches, responses):
            code = response.error.code if "error" in response else _OK
            if code == _ALREADY_EXISTS:
                duplicates += batch.num_rows
            elif code != _OK:
                raise self._refusal(stream, response)
        return AppendResult(rows=table.num_rows - duplicates, duplicates=duplicates, bytes=sent)

    @staticmethod
    def _refusal(stream: str, response) -> SinkError:
        """The error of a refused append (row errors named)."""
        rows = "; ".join(f"row {e.index}: {e.message}" for e in list(response.row_errors)[:5])
        detail = f" ({rows})" if rows else ""
        message = f"BigQuery refused an append to {stream}: {response.error.message}{detail}"
        if response.error.code in {s.value[0] for s in _TRANSIENT_GRPC}:
            return SinkUnavailable(message)
        if response.error.code == grpc.StatusCode.NOT_FOUND.value[0]:
            return StreamLost(message)
        return SinkError(message)

    def finalize(self, stream: str) -> int:
        """Finalize `stream` (no more appends); its row count."""
        try:
            return int(self.client.finalize_write_stream(name=stream, retry=None, timeout=self.timeout).row_count)
        except Exception as error:  # noqa: BLE001
            raise translate(error, f"finalizing {stream}") from error

    def commit(self, table_path: str, streams: list[str]) -> None:
        """Commit finalized PENDING `streams` of one table atomically."""
        from google.cloud.bigquery_storage_v1 import types

        request = types.BatchCommitWriteStreamsRequest(parent=table_path, write_streams=streams)
        try:
            response = self.client.batch_commit_write_streams(request=request, retry=None, timeout=self.timeout)
        except Exception as error:  # noqa: BLE001
            raise translate(error, f"committing {len(streams)} streams on {table_path}") from error
        if list(response.stream_errors):
            errors = "; ".join(f"{e.entity}: {e.error_message}" for e in response.stream_errors)
            raise SinkError(f"BigQuery refused the commit on {table_path}: {errors}")

