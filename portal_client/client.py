"""`Portal`: the data-product portal from a notebook.

    from portal_client import Portal

    portal = Portal()  # PORTAL_URL and PORTAL_TOKEN from the environment
    portal.products(q="orders")
    frame = portal.read(
        "sales.orders",
        columns=["order_id", "country", "amount"],
        filters=[("country", "=", "BE"), ("amount", ">=", 100)],
    )

Rows come as an Arrow IPC stream (`format=arrow`), read batch by batch straight from the
HTTP response: the body is never held in memory as bytes besides the Arrow table. The
portal decides what you may read (columns, rows, masking) exactly as for every other
channel, and records the read as a notebook read.

Only the standard library (urllib) speaks HTTP: no dependency besides pyarrow and pandas.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from time import sleep
from typing import TYPE_CHECKING, Any

from portal_client.errors import (
    PortalConfigError,
    PortalError,
    PortalLimitClamped,
    error_for_status,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__version__ = "0.1.0"

API_PREFIX = "/api/v1"
CLIENT_HEADER = "X-Portal-Client"
CLIENT_NAME = "notebook"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
DEFAULT_TIMEOUT = 300.0  # seconds without a byte from the portal, not for the whole read
NO_VALUE_OPERATORS = ("is null", "is not null")
DECIMALS = ("float", "decimal")
# A sync run's statuses once it ended (queued, running and, but for a dry run, planned
# still move).
RUN_ENDED = ("held", "succeeded", "failed", "cancelled")
DRY_RUN_ENDED = ("planned", *RUN_ENDED)  # how `read` gives decimal columns to pandas

Filter = Mapping[str, Any] | Sequence[Any]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: it would resend the token to wherever it points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | set | frozenset | list):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def frame_from_arrow(table: pa.Table, *, decimals: str = "float") -> pd.DataFrame:
    """The pandas DataFrame of an Arrow table read from the portal.

    Decimal columns (a database's numeric) become float64 numbers (`decimals="float"`,
    the default: what pandas computes with; a NULL is NaN) or stay exact Python Decimal
    objects in an object column (`decimals="decimal"`). A column of an extension type
    this pyarrow does not know is read as its storage type instead of failing in pandas'
    conversion. Works with pyarrow 17 and later, pandas 2.2 and later."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if decimals not in DECIMALS:
        raise ValueError(f"decimals must be one of {', '.join(DECIMALS)}, not {decimals!r}.")
    changed = False
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        kind = field.type
        if isinstance(kind, pa.BaseExtensionType):
            column = pa.chunked_array([chunk.storage for chunk in column.chunks], kind.storage_type)
            kind, changed = kind.storage_type, True
        if decimals == "float" and pa.types.is_decimal(kind):
            column, changed = pc.cast(column, pa.float64()), True
        columns.append(column)
    if changed:
        table = pa.table(columns, names=table.schema.names)
    # self_destruct frees each Arrow column as soon as it is converted.
    return table.to_pandas(split_blocks=True, self_destruct=True)


def filter_clauses(filters: Iterable[Filter] | None) -> list[dict[str, Any]]:
    """Filters as the API's clauses. Each filter is a dict {"column", "op", "value"}, a
    tuple (column, op, value), or (column, op) for "is null" and "is not null". Clauses
    must all hold. Operators: = != < <= > >= in, not in, is null, is not null."""
    clauses = []
    for index, item in enumerate(filters or (), start=1):
        if isinstance(item, Mapping):
            clause = dict(item)
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) in (2, 3):
            clause = {"column": item[0], "op": item[1]}
            if len(item) == 3:
                clause["value"] = item[2]
        else:
            raise ValueError(
                f"Filter {index} ({item!r}) must be (column, op, value), (column, op) for "
                '"is null", or a dict {"column": ..., "op": ..., "value": ...}.'
            )
        if not isinstance(clause.get("column"), str) or not isinstance(clause.get("op"), str):
            raise ValueError(f"Filter {index} ({item!r}) needs a column name and an operator.")
        if "value" in clause:
            clause["value"] = _json_value(clause["value"])
        elif clause["op"].strip().lower() not in NO_VALUE_OPERATORS:
            raise ValueError(f"Filter {index} ({item!r}): operator {clause['op']!r} needs a value.")
        clauses.append(clause)
    return clauses


def _detail(body: bytes) -> str:
    """The portal's explanation from an error body ({"detail": ...}, or DRF's per-field
    messages), or the start of the body when it is not JSON."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or "(no explanation given)"
    if isinstance(data, dict):
        if "detail" in data:
            detail = data["detail"]
            return " ".join(map(str, detail)) if isinstance(detail, list) else str(detail)
        return "; ".join(
            f"{key}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for key, v in data.items()
        )
    return str(data)


class MessageStream:
    """The messages of `Portal.stream`, read line by line from the open response (one
    `{"seq": n, "data": {...}}` per line; an empty line is the portal's keep-alive)."""

    def __init__(self, response, *, what: str, batch_size: int | None) -> None:
        self._response = response
        self._what = what
        self._batch_size = batch_size
        self.last_seq: int | None = None
        self._items = self._batches() if batch_size else self._messages(keepalives=False)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._items)

    def __enter__(self) -> MessageStream:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._response.close()

    def _messages(self, *, keepalives: bool):
        with self._response:
            for line in self._response:
                if not line.strip():
                    if keepalives:
                        yield None
                    continue
                item = json.loads(line)
                if "error" in item:
                    raise error_for_status(403, item["error"], what=self._what)
                self.last_seq = item["seq"]
                yield item["data"]

    def _batches(self):
        import pandas as pd  # only the DataFrame form needs pandas

        rows: list[dict] = []
        for message in self._messages(keepalives=True):
            if message is not None:
                rows.append(message)
            if rows and (message is None or len(rows) >= self._batch_size):
                yield pd.DataFrame.from_records(rows)
                rows = []
        if rows:
            yield pd.DataFrame.from_records(rows)


class Portal:
    """A connection to the portal's API with your token.

    `url` and `token` default to the PORTAL_URL and PORTAL_TOKEN environment variables.
    Create a token on the portal's API tokens page (`/my/tokens/`, in the user menu; or
    `POST /api/v1/auth/token/` with a username and password, outside the notebook) and
    keep it in the environment, never in the notebook: it expires, and it reads what you
    may read.

    Metrics: `portal.metric("sales.revenue", grain="month")`, the same numbers as the
    metric's page and the API.
    """

    page_size = 200  # products per API page (the API's maximum)

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        url = (url or os.environ.get("PORTAL_URL") or "").strip()
        token = (token or os.environ.get("PORTAL_TOKEN") or "").strip()
        if not url:
            raise PortalConfigError(
                "No portal address: set PORTAL_URL (e.g. https://portal.example.com) "
                "or pass Portal(url=...)."
            )
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise PortalConfigError(
                f"PORTAL_URL must be an http(s) address such as https://portal.example.com, "
                f"not {url!r}."
            )
        if not token:
            raise PortalConfigError(
                "No API token: set PORTAL_TOKEN (or pass Portal(token=...)). Create one on "
                "the portal's API tokens page (/my/tokens/, in the user menu), outside the "
                "notebook; never write a password or a token in code."
            )
        base = url.rstrip("/")
        if base.endswith(API_PREFIX):
            base = base[: -len(API_PREFIX)]
        self.url = base
        self._token = token
        self.timeout = timeout
        self._headers = {
            "Authorization": f"Token {token}",
            CLIENT_HEADER: CLIENT_NAME,
            "User-Agent": f"portal-client/{__version__}",
            **(headers or {}),
        }
        self._opener = urllib.request.build_opener(_NoRedirect())

    def __repr__(self) -> str:  # never the token
        return f"Portal(url={self.url!r})"

    # --- HTTP -----------------------------------------------------------------------------

    def _open(self, path: str, params: Mapping[str, Any], *, accept: str, what: str):
        """The open response to GET `path`; raises the PortalError for a refusal."""
        query = urllib.parse.urlencode(
            {k: v for k, v in params.items() if v is not None and v != ""}
        )
        url = f"{self.url}{API_PREFIX}{path}" + (f"?{query}" if query else "")
        request = urllib.request.Request(url, headers={**self._headers, "Accept": accept})
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                if 300 <= exc.code < 400:
                    raise PortalError(
                        f"The portal redirected {what} to {exc.headers.get('Location')!r}: "
                        "set PORTAL_URL to that address (https?).",
                        status=exc.code,
                    ) from None
                raise error_for_status(exc.code, _detail(exc.read()), what=what) from None
        except urllib.error.URLError as exc:
            raise PortalError(f"Could not reach the portal at {self.url}: {exc.reason}") from exc

    def _get_json(self, path: str, params: Mapping[str, Any], *, what: str) -> Any:
        with self._open(path, params, accept="application/json", what=what) as response:
            return json.load(response)

    def _send_json(self, method: str, path: str, body: Mapping[str, Any] | None, *, what: str):
        """The JSON answer to `method` `path` with `body` as JSON; raises the PortalError
        for a refusal (400 with the portal's message per field)."""
        data = json.dumps(_json_value(dict(body or {}))).encode()
        request = urllib.request.Request(
            f"{self.url}{API_PREFIX}{path}",
            data=data,
            method=method,
            headers={
                **self._headers,
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raise error_for_status(exc.code, _detail(exc.read()), what=what) from None
        except urllib.error.URLError as exc:
            raise PortalError(f"Could not reach the portal at {self.url}: {exc.reason}") from exc
        return json.loads(raw) if raw else None

    # --- catalog --------------------------------------------------------------------------

    def products(self, q: str | None = None, domain: str | None = None) -> list[dict]:
        """The products you can see, as the catalog API describes them (key, name,
        domain, status, summary, ...): all of them, or those matching the search `q`
        and/or in `domain` (its slug). Follows the API's pages."""
        results: list[dict] = []
        page = 1
        while True:
            data = self._get_json(
                "/products/",
                {"q": q, "domain": domain, "page": page, "page_size": self.page_size},
                what="listing products",
            )
            results.extend(data["results"])
            if not data.get("next"):
                return results
            page += 1

    # --- data -----------------------------------------------------------------------------

    def read_arrow(
        self,
        product: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Iterable[Filter] | None = None,
        limit: int | None = None,
        port: str | None = None,
    ) -> pa.Table:
        """A product's rows as a pyarrow Table; see `read`."""
        import pyarrow as pa

        if not isinstance(product, str) or "." not in product:
            raise ValueError(f"A product is named by its key 'domain.product', not {product!r}.")
        if isinstance(columns, str):
            columns = [columns]
        if columns is not None:
            bad = [name for name in columns if "," in name]
            if bad:
                raise ValueError(f"Column names with a comma cannot be selected: {bad}.")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a whole number, 0 or more, not {limit!r}.")
        clauses = filter_clauses(filters)
        params = {
            "format": "arrow",
            "columns": ",".join(columns) if columns else None,
            "filter": json.dumps(clauses, separators=(",", ":")) if clauses else None,
            "limit": limit,
            "port": port,
        }
        what = f"reading {product}"
        path = f"/products/{urllib.parse.quote(product, safe='.')}/data/"
        with self._open(path, params, accept=f"{ARROW_STREAM}, */*", what=what) as response:
            clamped = response.headers.get("X-Limit-Clamped")
            if clamped:
                warnings.warn(
                    f"{product}: the portal served at most {clamped} rows, its maximum for "
                    f"one read, fewer than the limit asked ({limit}). Narrow the read with "
                    "filters, or ask the product's owners for an export.",
                    PortalLimitClamped,
                    stacklevel=3,
                )
            try:
                # Batch by batch from the socket: the body is never buffered as bytes.
                table = pa.ipc.open_stream(response).read_all()
                # Read to the response's end, not just the stream's: the portal finishes
                # the read (and records it) before it ends the response.
                while response.read(1 << 16):
                    pass
            except (pa.ArrowInvalid, OSError) as exc:
                raise PortalError(
                    f"The portal's stream for {product} broke off before its end: {exc}"
                ) from exc
        return table

    def read(
        self,
        product: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Iterable[Filter] | None = None,
        limit: int | None = None,
        port: str | None = None,
        decimals: str = "float",
    ) -> pd.DataFrame:
        """A product's rows as a pandas DataFrame.

        `product` is its key, e.g. "sales.orders"; `columns` a subset (default: every
        column you may read); `filters` clauses that must all hold, each
        (column, op, value), (column, op) for "is null"/"is not null", or a dict;
        `limit` the most rows (the portal caps one read and warns with
        PortalLimitClamped); `port` the output port's slug (default: the first);
        `decimals` how decimal (numeric) columns arrive: "float" (float64, the default)
        or "decimal" (exact Python Decimal objects). `read_arrow` keeps them as Arrow
        decimals.

        Columns your access masks come as "****". Raises PortalAuthError (401),
        PortalPermissionError (403, with the portal's reason), PortalNotFound (404),
        PortalRequestError (400, e.g. an unknown column) - all PortalError.
        """
        if decimals not in DECIMALS:
            raise ValueError(f"decimals must be one of {', '.join(DECIMALS)}, not {decimals!r}.")
        table = self.read_arrow(product, columns=columns, filters=filters, limit=limit, port=port)
        return frame_from_arrow(table, decimals=decimals)

    # --- SQL over products -----------------------------------------------------------------

    def _post_open(self, path: str, body: Mapping[str, Any], *, accept: str, what: str):
        """The open response to POST `path` with `body` as JSON; raises the PortalError
        for a refusal."""
        request = urllib.request.Request(
            f"{self.url}{API_PREFIX}{path}",
            data=json.dumps(_json_value(dict(body))).encode(),
            method="POST",
            headers={**self._headers, "Accept": accept, "Content-Type": "application/json"},
        )
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                raise error_for_status(exc.code, _detail(exc.read()), what=what) from None
        except urllib.error.URLError as exc:
            raise PortalError(f"Could not reach the portal at {self.url}: {exc.reason}") from exc

    def sql_arrow(self, sql: str, *, limit: int | None = None) -> pa.Table:
        """The answer to one SQL query over products as a pyarrow Table; see `sql`."""
        import pyarrow as pa

        if not isinstance(sql, str) or not sql.strip():
            raise ValueError("Write a SELECT over product keys, e.g. SELECT * FROM sales.orders.")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a whole number, 0 or more, not {limit!r}.")
        body: dict[str, Any] = {"sql": sql, "format": "arrow"}
        if limit is not None:
            body["limit"] = limit
        what = "running the query"
        with self._post_open("/query/", body, accept=f"{ARROW_STREAM}, */*", what=what) as response:
            query_id = response.headers.get("X-Query-Id")
            try:
                table = pa.ipc.open_stream(response).read_all()
                while response.read(1 << 16):
                    pass
            except (pa.ArrowInvalid, OSError) as exc:
                raise PortalError(f"The portal's answer broke off before its end: {exc}") from exc
        if query_id:
            record = self._get_json(f"/query/{query_id}/", {}, what="reading the query's outcome")
            if record.get("truncated"):
                warnings.warn(
                    f"The answer holds the first {table.num_rows:,} rows only (the portal's "
                    "cap for one query): aggregate in SQL, or filter further.",
                    PortalLimitClamped,
                    stacklevel=3,
                )
        return table

    def sql(self, sql: str, *, limit: int | None = None, decimals: str = "float") -> pd.DataFrame:
        """The answer to one SQL query over products, as a pandas DataFrame.

        Name products by their key (`sales.orders`, or `sales.orders.port` for another
        port), join them, aggregate: `portal.sql("SELECT o.country, sum(o.amount) FROM
        sales.orders o GROUP BY 1")`. The portal runs it where the data lives, with your
        access: masked columns come as "****" (they can be selected, not filtered or
        joined on), and your grants' row filters hold. `limit`: the most rows (the portal
        caps an answer and warns with PortalLimitClamped). Raises PortalRequestError (400:
        the SQL, with the position of a syntax error), PortalPermissionError (403),
        PortalNotFound (404: an unknown product) - all PortalError.
        """
        if decimals not in DECIMALS:
            raise ValueError(f"decimals must be one of {', '.join(DECIMALS)}, not {decimals!r}.")
        return frame_from_arrow(self.sql_arrow(sql, limit=limit), decimals=decimals)

    def sql_explain(self, sql: str) -> dict:
        """What the query would run on each source, under which masks and row filters,
        and the rows PostgreSQL expects; nothing is run."""
        return self._send_json("POST", "/query/explain/", {"sql": sql}, what="explaining the query")

    # --- streams --------------------------------------------------------------------------

    def stream(
        self,
        product: str,
        *,
        columns: Sequence[str] | None = None,
        filters: Iterable[Filter] | None = None,
        from_: int | str | datetime | None = None,
        follow: bool = True,
        limit: int | None = None,
        port: str | None = None,
        batch_size: int | None = None,
    ) -> MessageStream:
        """A stream port's messages as they arrive: an iterator of dicts (column -> value),
        or with `batch_size` of pandas DataFrames of up to that many messages (a smaller
        one when the stream goes quiet).

        `from_`: a message's sequence number, a datetime (or ISO text), "-n" for the last
        n messages, "new" for only new ones; default the oldest message kept. `follow`:
        keep waiting for new messages (default) or end at the stream's last message.
        `columns`, `filters`, `limit`, `port` as for `read`. Masked columns come as
        "****". The iterator's `last_seq` is the sequence of the last message received:
        pass `from_=it.last_seq + 1` to resume. When your access is revoked mid-stream,
        the iterator raises PortalPermissionError at the next message.
        """
        if not isinstance(product, str) or "." not in product:
            raise ValueError(f"A product is named by its key 'domain.product', not {product!r}.")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a whole number, 1 or more, not {batch_size!r}.")
        if isinstance(columns, str):
            columns = [columns]
        clauses = filter_clauses(filters)
        start = from_.isoformat() if isinstance(from_, datetime) else from_
        params = {
            "format": "ndjson",
            "from": start,
            "follow": "1" if follow else "0",
            "columns": ",".join(columns) if columns else None,
            "filter": json.dumps(clauses, separators=(",", ":")) if clauses else None,
            "limit": limit,
            "port": port,
        }
        what = f"streaming {product}"
        path = f"/products/{urllib.parse.quote(product, safe='.')}/stream/"
        response = self._open(path, params, accept="application/x-ndjson", what=what)
        return MessageStream(response, what=what, batch_size=batch_size)

    # --- metrics --------------------------------------------------------------------------

    def metric_values(
        self,
        metric: str,
        *,
        grain: str | None = None,
        dimensions: Sequence[str] | None = None,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        filters: Iterable[Filter] | None = None,
    ) -> dict:
        """The metric's values as the API answers them: `{"metric", "columns", "rows",
        "truncated", ...}`; see `metric`."""
        if not isinstance(metric, str) or "." not in metric:
            raise ValueError(f"A metric is named by its key 'domain.name', not {metric!r}.")
        if isinstance(dimensions, str):
            dimensions = [dimensions]
        clauses = filter_clauses(filters)
        params = {
            "grain": grain,
            "dimensions": ",".join(dimensions) if dimensions else None,
            "start": _json_value(start) if start is not None else None,
            "end": _json_value(end) if end is not None else None,
            "filters": json.dumps(clauses, separators=(",", ":")) if clauses else None,
        }
        path = f"/metrics/{urllib.parse.quote(metric, safe='.')}/values/"
        return self._get_json(path, params, what=f"computing {metric}")

    def metric(
        self,
        metric: str,
        *,
        grain: str | None = None,
        dimensions: Sequence[str] | None = None,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        filters: Iterable[Filter] | None = None,
    ) -> pd.DataFrame:
        """A metric's values as a DataFrame: one row per period (`grain`: "day", "week"
        or "month"; `period` is its first day) and combination of `dimensions`, with the
        metric in `value`. `start` and `end` are dates (both included, UTC); `filters`
        clauses on the metric's dimensions or time column, as for `read`.

        Computed by the portal where the data lives, with your access (your grant's row
        filter applies); recorded as a notebook read. Raises PortalPermissionError (403),
        PortalRequestError (400, e.g. a dimension the metric does not declare),
        PortalNotFound (404)."""
        import pandas as pd

        data = self.metric_values(
            metric, grain=grain, dimensions=dimensions, start=start, end=end, filters=filters
        )
        if data.get("truncated"):
            warnings.warn(
                f"{metric}: the portal returned its maximum number of rows; filter or group "
                "by fewer dimensions to see them all.",
                PortalLimitClamped,
                stacklevel=2,
            )
        frame = pd.DataFrame(data["rows"], columns=data["columns"])
        if "period" in frame.columns:
            frame["period"] = pd.to_datetime(frame["period"])
        return frame

    # --- syncs (reverse ETL) ---------------------------------------------------------------

    def syncs(self, product: str | None = None) -> list[dict]:
        """The syncs you may see (yours, those writing to your domains' destinations, and
        those of the products you manage), or only those of `product` (its key)."""
        results: list[dict] = []
        page = 1
        while True:
            data = self._get_json(
                "/syncs/",
                {"product": product, "page": page, "page_size": self.page_size},
                what="listing syncs",
            )
            results.extend(data["results"])
            if not data.get("next"):
                return results
            page += 1

    def sync_create(
        self,
        product: str,
        *,
        destination: int,
        name: str,
        columns: Sequence[str] | None = None,
        key_columns: Sequence[str] | None = None,
        port: str | None = None,
        metric: str | None = None,
        dimensions: Sequence[str] | None = None,
        grain: str | None = None,
        mapping: Mapping[str, str] | None = None,
        mode: str | None = None,
        trigger: str | None = None,
        cron: str | None = None,
        timezone: str | None = None,
        guardrails: Mapping[str, Any] | None = None,
    ) -> dict:
        """Create a sync of `product`'s `columns` (as you may read them) to the
        destination `destination` (its id), keyed by `key_columns`; or, with `metric` (a
        metric's key), of that metric's values grouped by `dimensions` (and per `grain`),
        keyed by period and dimensions unless `columns` and `key_columns` say otherwise.
        `mode`: insert, update, upsert (default) or mirror; `trigger`: manual (default),
        schedule (with `cron` and `timezone`) or after_checks; `guardrails`: e.g.
        {"max_changed_pct": 10, "column_limits": [{"column": "bid", "max_change_pct": 5}]}.
        Raises PortalRequestError naming the field for bad input (a column outside your
        access, a mapping to a field the destination does not have...)."""
        if isinstance(columns, str) or isinstance(key_columns, str):
            raise ValueError("columns and key_columns are lists of column names.")
        if isinstance(dimensions, str):
            raise ValueError("dimensions is a list of dimension names.")
        body: dict[str, Any] = {"product": product, "destination": destination, "name": name}
        if metric is not None:
            body["metric_query"] = {"dimensions": list(dimensions or ()), "grain": grain}
        optional = {
            "columns": None if columns is None else list(columns),
            "key_columns": None if key_columns is None else list(key_columns),
            "port": port,
            "metric": metric,
            "mapping": mapping,
            "mode": mode,
            "trigger": trigger,
            "cron": cron,
            "timezone": timezone,
            "guardrails": guardrails,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return self._send_json("POST", "/syncs/", body, what=f"creating a sync of {product}")

    def _sync_path(self, sync_id: int, tail: str = "") -> str:
        return f"/syncs/{int(sync_id)}/{tail}"

    def _wait_run(self, run: dict, *, settled: tuple[str, ...], poll: float) -> dict:
        while run["status"] not in settled:
            sleep(poll)
            run = self._get_json(
                self._sync_path(run["sync"], f"runs/{int(run['id'])}/"),
                {},
                what=f"following sync run {run['id']}",
            )
        return run

    def sync_dry_run(self, sync_id: int, *, wait: bool = True, poll: float = 1.0) -> dict:
        """Plan a run of the sync and show it without sending anything: the run as a dict
        (status, counts added/changed/removed, `plan_sample`). With `wait`, returns once
        the plan is made (status planned or failed)."""
        run = self._send_json(
            "POST", self._sync_path(sync_id, "dry-run/"), None, what=f"dry-running sync {sync_id}"
        )
        return self._wait_run(run, settled=DRY_RUN_ENDED, poll=poll) if wait else run

    def sync_run(self, sync_id: int, *, wait: bool = True, poll: float = 1.0) -> dict:
        """Run the sync now; with `wait`, returns the run once it ended: succeeded,
        failed (`error` says why) or held (`held_reasons`; approve with sync_approve)."""
        run = self._send_json(
            "POST", self._sync_path(sync_id, "run/"), None, what=f"running sync {sync_id}"
        )
        return self._wait_run(run, settled=RUN_ENDED, poll=poll) if wait else run

    def sync_approve(
        self, sync_id: int, run_id: int, *, wait: bool = False, poll: float = 1.0
    ) -> dict:
        """Approve a held run: a new run sends exactly its held plan (returned; with
        `wait`, once it ended). Raises PortalPermissionError unless you are the sync's
        creator, an owner of the destination's domain or an admin."""
        run = self._send_json(
            "POST",
            self._sync_path(sync_id, f"runs/{int(run_id)}/approve/"),
            None,
            what=f"approving run {run_id} of sync {sync_id}",
        )
        return self._wait_run(run, settled=RUN_ENDED, poll=poll) if wait else run

    def sync_pause(self, sync_id: int, reason: str = "") -> dict:
        """Pause the sync (no run starts until resumed); returns the sync."""
        return self._send_json(
            "POST",
            self._sync_path(sync_id, "pause/"),
            {"reason": reason} if reason else None,
            what=f"pausing sync {sync_id}",
        )

    def sync_resume(self, sync_id: int) -> dict:
        """Resume a paused sync; returns the sync."""
        return self._send_json(
            "POST", self._sync_path(sync_id, "resume/"), None, what=f"resuming sync {sync_id}"
        )

    def sync_runs(self, sync_id: int, *, limit: int | None = None) -> list[dict]:
        """The sync's runs, newest first (all, or the `limit` newest): status, counts,
        duration, records_per_second, held_reasons, plan_sample, error."""
        results: list[dict] = []
        page = 1
        while True:
            data = self._get_json(
                self._sync_path(sync_id, "runs/"),
                {"page": page, "page_size": self.page_size},
                what=f"listing the runs of sync {sync_id}",
            )
            results.extend(data["results"])
            if limit is not None and len(results) >= limit:
                return results[:limit]
            if not data.get("next"):
                return results
            page += 1
