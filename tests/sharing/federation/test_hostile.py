"""Federated queries written to get past governance, run as the `narrowed` grantee (Belgian
rows of sales.orders and crm.customers, email and iban masked, no grant on crm.visits).

Every query must either be refused (QueryRefused, 400/403/404) or answer nothing the
grantee may not read: no masked value, no row outside the row filter. A ConnectorError
(the source rejected SQL the portal let through) is accepted for odd-but-harmless SQL,
provided its message quotes nothing hidden either.

Set HOSTILE_OUTCOMES=<file> to write every query's outcome there (one JSON line each).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from products.connectors import ConnectorError
from sharing.federation.refusals import QueryRefused
from sharing.federation.services.running import query_rows, query_start
from tests.sharing.federation.conftest import CUSTOMERS
from tests.sharing.federation.hostile_corpus import CORPUS, Case
from tests.sharing.readers import ROWS

# --- what the grantee must never see -------------------------------------------------------

ORDERS = list(zip(*ROWS.values(), strict=True))  # order_id, country, email, iban, amount
GRANTED_COUNTRY = "BE"
SECRETS = sorted(
    {email for _, _, email, _ in CUSTOMERS if email}
    | {value for column in ("email", "iban") for value in ROWS[column] if value}
)
HIDDEN_COUNTRIES = sorted(
    {country for _, country, _, _ in CUSTOMERS if country != GRANTED_COUNTRY}
    | {row[1] for row in ORDERS if row[1] != GRANTED_COUNTRY}
)
HIDDEN_IDS = {
    "customer_id": {cid for cid, country, _, _ in CUSTOMERS if country != GRANTED_COUNTRY},
    "order_id": {row[0] for row in ORDERS if row[1] != GRANTED_COUNTRY},
}
HIDDEN_AMOUNTS = {row[4] for row in ORDERS if row[1] != GRANTED_COUNTRY}
MASK = "****"
REFUSAL_STATUSES = (400, 403, 404)


def test_the_secrets_are_the_fixtures():
    assert SECRETS == ["BE01", "BE03", "FR04", "a@x", "ann@x", "b@x", "bob@x", "d@x", "dan@x"]
    assert HIDDEN_COUNTRIES == ["FR", "NL"]
    assert HIDDEN_IDS == {"customer_id": {2, 4}, "order_id": {2, 4}}
    assert HIDDEN_AMOUNTS == {20.0, 40.0}


@pytest.fixture
def roomy_rate(settings):
    """Many queries in one test: the reader's rate is not what is tested here."""
    settings.QUERY_RATE_LIMIT = "100000/min"


# --- running a query and judging its outcome -----------------------------------------------


@dataclass
class Outcome:
    kind: str  # "ran" | "refused" | "error" (ConnectorError) | "crash" (anything else)
    status: int | None = None
    message: str = ""
    columns: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    engine: str = ""

    def shown(self) -> str:
        if self.kind == "ran":
            return f"ran on {self.engine}: columns {self.columns} rows {self.rows[:10]}"
        status = f" {self.status}" if self.status else ""
        return f"{self.kind}{status}: {self.message[:300]}"


def attempt(user, sql: str) -> Outcome:
    try:
        answer = query_rows(query_start(user=user, sql=sql))
    except QueryRefused as exc:
        return Outcome("refused", status=exc.status, message=str(exc))
    except ConnectorError as exc:
        return Outcome("error", message=str(exc))
    except Exception as exc:  # noqa: BLE001 - a crash is what the test reports
        return Outcome("crash", message=f"{type(exc).__name__}: {exc}")
    return Outcome("ran", columns=answer["columns"], rows=answer["rows"], engine=answer["engine"])


def _literals(sql: str) -> str:
    """The text of the string literals the query writes itself (a value it writes may
    come back: that is no leak)."""
    quoted = re.findall(r"'((?:[^']|'')*)'", sql)
    dollared = [m[1] for m in re.findall(r"\$(\w*)\$(.*?)\$\1\$", sql, flags=re.S)]
    return "\n".join(quoted + dollared)


def cell_leaks(sql: str, columns: list, rows: list, *, strict: bool = False) -> list[str]:
    """What the rows show that the grantee may not see. `strict`: the query writes no
    value that could come back (the generated queries), so even a country it names
    counts."""
    literals = "" if strict else _literals(sql)
    leaks = []
    for row in rows:
        for index, value in enumerate(row):
            if value is None:
                continue
            name = str(columns[index]).lower() if index < len(columns) else ""
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            for secret in SECRETS:
                if secret in text and (strict or secret not in sql):
                    leaks.append(f"secret {secret!r} in {name or index}: {value!r}")
            for country in HIDDEN_COUNTRIES:
                if country in text and country not in literals:
                    leaks.append(f"hidden country {country!r} in {name or index}: {value!r}")
            for column, hidden in HIDDEN_IDS.items():
                if name == column and str(value) in {str(i) for i in hidden}:
                    leaks.append(f"hidden {column} {value!r}")
            if name == "amount" and _number(value) in HIDDEN_AMOUNTS:
                leaks.append(f"hidden amount {value!r}")
    return leaks


def message_leaks(sql: str, message: str) -> list[str]:
    """What an error or refusal message quotes that the grantee may not see (a failed
    cast quotes the value it could not convert)."""
    literals = _literals(sql)
    leaks = [f"secret {s!r} in the message" for s in SECRETS if s in message and s not in sql]
    leaks += [
        f"hidden country {c!r} in the message"
        for c in HIDDEN_COUNTRIES
        if re.search(rf"\b{c}\b", message) and c not in literals
    ]
    return leaks


def _number(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return round(float(value), 6)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return round(number, 6) if math.isfinite(number) else value
    return value


def normalised(rows) -> Counter:
    return Counter(tuple(_number(value) for value in row) for row in rows)


def judge(case: Case, outcome: Outcome) -> list[str]:
    """Why the outcome is not acceptable (empty: it is)."""
    problems: list[str] = []
    if outcome.kind == "crash":
        return [f"crashed (neither QueryRefused nor ConnectorError): {outcome.message[:300]}"]
    if outcome.kind in ("refused", "error"):
        problems += message_leaks(case.sql, outcome.message)
        if case.must_run:
            problems.append("must run (its condition only fails on rows outside the grant)")
        if outcome.kind == "refused" and outcome.status not in REFUSAL_STATUSES:
            problems.append(f"refused with status {outcome.status}")
        if outcome.kind == "error" and case.must_refuse:
            problems.append("reached the source: it names a product outside the grant")
        return problems
    if case.must_refuse:
        problems.append("ran, but it names a product outside the grant")
    problems += cell_leaks(case.sql, outcome.columns, outcome.rows)
    if case.expect is not None and normalised(outcome.rows) != normalised(case.expect):
        problems.append(f"answered {outcome.rows}, expected {[list(r) for r in case.expect]}")
    return problems


def _record(category: str, case: Case, outcome: Outcome, problems: list[str]) -> None:
    path = os.environ.get("HOSTILE_OUTCOMES")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        line = {
            "category": category,
            "id": case.id,
            "sql": case.sql[:500],
            "outcome": outcome.kind,
            "status": outcome.status,
            "message": outcome.message[:500],
            "columns": outcome.columns,
            "rows": outcome.rows[:20],
            "engine": outcome.engine,
            "problems": problems,
        }
        out.write(json.dumps(line, default=str) + "\n")


# --- the corpus -----------------------------------------------------------------------------


def test_corpus_is_large_and_named_once():
    cases = [case for cases in CORPUS.values() for case in cases]
    assert len(cases) >= 100
    ids = Counter(case.id for case in cases)
    assert [name for name, n in ids.items() if n > 1] == []
    grouped = [category for categories in GROUPS.values() for category in categories]
    assert sorted(grouped) == sorted(CORPUS)


# The corpus's categories, run in a few tests (the fixtures cost about 2 s a test).
GROUPS = {
    "masked_values_in_expressions": [
        "functions",
        "casts",
        "concatenation",
        "case",
        "coalesce",
        "like",
        "comparisons",
        "aggregates",
        "ordinals",
    ],
    "relations_and_subqueries": [
        "joins",
        "windows",
        "set_operations",
        "ctes",
        "correlated",
        "exists_in",
        "lateral_values_sample",
    ],
    "reaching_beyond_the_grant": [
        "catalogs",
        "other_schemas",
        "table_functions",
        "server_functions",
        "ports",
        "visits",
    ],
    "lexical_tricks": [
        "comments",
        "quoting",
        "unicode_escapes",
        "dollar_quoting",
        "escape_strings",
        "cast_tricks",
    ],
    "writes_and_statements": ["writes", "miscellaneous"],
    "error_side_channels": ["side_channels"],
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("group", list(GROUPS))
def test_hostile_query_is_refused_or_answers_only_the_grant(group, narrowed, roomy_rate):
    failures = []
    total = 0
    for category in GROUPS[group]:
        for case in CORPUS[category]:
            total += 1
            outcome = attempt(narrowed, case.sql)
            problems = judge(case, outcome)
            _record(category, case, outcome, problems)
            if problems:
                failures.append(
                    f"[{category}/{case.id}] {'; '.join(problems)}\n    sql: {case.sql[:300]}\n"
                    f"    got: {outcome.shown()}"
                )
    assert not failures, f"{len(failures)} of {total} queries:\n" + "\n".join(failures)


# --- error side channels --------------------------------------------------------------------

# Each condition fails (division by zero, a failed cast) on a row outside the grant only.
# Without the fence around the governed relation the database could evaluate it there
# first, and the error would tell that such a row exists. Each probe's answer is the
# number of Belgian rows (customers, orders, or customers joined to orders).
SIDE_CHANNEL_PROBES = {
    "postgresql": [
        "SELECT count(*) FROM crm.customers "
        "WHERE 1/(CASE WHEN customer_id = 2 THEN 0 ELSE 1 END) = 1",
        "SELECT count(*) FROM crm.customers "
        "WHERE CAST(CASE WHEN customer_id = 4 THEN 'boom' ELSE '1' END AS INT) = 1",
    ],
    "parquet": [
        "SELECT count(*) FROM sales.orders WHERE 1/(CASE WHEN order_id = 2 THEN 0 ELSE 1 END) = 1",
        "SELECT count(*) FROM sales.orders "
        "WHERE CAST(CASE WHEN order_id = 2 THEN 'boom' ELSE '1' END AS INT) = 1",
    ],
    "federated": [  # the customers' conjunct is pushed down to PostgreSQL
        "SELECT count(DISTINCT c.customer_id) FROM crm.customers c JOIN sales.orders o "
        "ON o.country = c.country WHERE 1/(CASE WHEN c.customer_id = 2 THEN 0 ELSE 1 END) = 1",
        "SELECT count(DISTINCT o.order_id) FROM crm.customers c JOIN sales.orders o "
        "ON o.country = c.country "
        "WHERE CAST(CASE WHEN o.order_id = 4 THEN 'boom' ELSE '1' END AS INT) = 1",
    ],
}
ENGINES = {"postgresql": "postgresql", "parquet": "federated", "federated": "federated"}
# DuckDB divides by zero into Infinity, without an error: that probe cannot bite there.
HARMLESS_UNFENCED = {SIDE_CHANNEL_PROBES["parquet"][0]}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source", list(SIDE_CHANNEL_PROBES))
def test_error_on_hidden_rows_does_not_surface(source, narrowed, admin, roomy_rate):
    failures = []
    for sql in SIDE_CHANNEL_PROBES[source]:
        outcome = attempt(narrowed, sql)
        if outcome.kind != "ran" or outcome.rows != [[2]] or outcome.engine != ENGINES[source]:
            failures.append(f"{sql}\n    as the grantee: {outcome.shown()}")
        if sql in HARMLESS_UNFENCED:
            continue
        # The probe is real: whoever reads every row gets the error.
        outcome = attempt(admin, sql)
        if outcome.kind != "error":
            failures.append(f"{sql}\n    as an admin (expected an error): {outcome.shown()}")
    assert not failures, "\n".join(failures)


# --- generated queries ----------------------------------------------------------------------

PRODUCTS = {  # alias: (key, {column: kind})
    "o": (
        "sales.orders",
        {
            "order_id": "int",
            "country": "text",
            "email": "masked",
            "iban": "masked",
            "amount": "float",
        },
    ),
    "c": (
        "crm.customers",
        {"customer_id": "int", "country": "text", "email": "masked", "segment": "text"},
    ),
}
FROM_CLAUSES = {
    "o": "sales.orders o",
    "c": "crm.customers c",
    "oc": "sales.orders o JOIN crm.customers c ON c.country = o.country",
    "co": "crm.customers c LEFT JOIN sales.orders o ON o.order_id = c.customer_id",
}
LITERALS = {
    "order_id": ["0", "1", "2", "3", "4", "5"],
    "customer_id": ["0", "1", "2", "3", "4", "5"],
    "amount": ["0", "10.0", "15", "20.0", "30.0", "40.0"],
    "country": ["'BE'", "'NL'", "'FR'", "'XX'"],
    "segment": ["'retail'", "'pro'", "'x'"],
    "email": ["'ann@x'", "'bob@x'", "'a@x'", "'****'"],
    "iban": ["'BE01'", "'FR04'", "'****'"],
}


@dataclass
class Select:
    from_: str
    items: list  # (sql, output name, masked)
    star: bool = False
    where: str | None = None
    group: list = field(default_factory=list)

    def sql(self, where: str | None = None) -> str:
        where = self.where if where is None else where
        select = "*" if self.star else ", ".join(f"{sql} AS {name}" for sql, name, _ in self.items)
        text = f"SELECT {select} FROM {self.from_}"
        if where:
            text += f" WHERE {where}"
        if self.group:
            text += " GROUP BY " + ", ".join(self.group)
        return text


@dataclass
class Query:
    core: Select
    union_where: str | None = None  # UNION ALL of the same select with another WHERE
    union: bool = False
    wrap: str = ""  # "" | "subquery" | "cte"
    outer_where: str | None = None
    order: list = field(default_factory=list)  # ordinals
    limit: int | None = None

    @property
    def outputs(self) -> list:
        return self.core.items

    def sql(self, *, limits: bool = True) -> str:
        text = self.core.sql()
        if self.union:
            text += " UNION ALL " + self.core.sql(where=self.union_where or "true")
        if self.wrap == "subquery":
            text = f"SELECT * FROM ({text}) AS s"
        elif self.wrap == "cte":
            text = f"WITH q AS ({text}) SELECT * FROM q AS s"
        if self.wrap and self.outer_where:
            text += f" WHERE {self.outer_where}"
        if self.order:
            text += " ORDER BY " + ", ".join(str(position) for position in self.order)
        if limits and self.limit is not None:
            text += f" LIMIT {self.limit}"
        return text


@st.composite
def conditions(draw, columns: list) -> str | None:
    """Up to three comparisons of columns with literals (now and then a masked column,
    which the portal must refuse), joined by AND or OR."""
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        alias, name, kind = draw(st.sampled_from(columns))
        ref = f"{alias}.{name}"
        ops = ["=", "<>", "<", ">=", "IN", "IS NULL", "IS NOT NULL"]
        if kind != "int" and kind != "float":
            ops.append("LIKE")
        op = draw(st.sampled_from(ops))
        if op.startswith("IS"):
            parts.append(f"{ref} {op}")
        elif op == "IN":
            values = draw(st.lists(st.sampled_from(LITERALS[name]), min_size=1, max_size=3))
            parts.append(f"{ref} IN ({', '.join(values)})")
        elif op == "LIKE":
            pattern = draw(st.sampled_from(["'B%'", "'%L'", "'%@x'", "'%'"]))
            parts.append(f"{ref} LIKE {pattern}")
        else:
            parts.append(f"{ref} {op} {draw(st.sampled_from(LITERALS[name]))}")
    if not parts:
        return None
    return draw(st.sampled_from([" AND ", " OR "])).join(parts)


def _aggregates(columns: list) -> list:
    out = [("count(*)", "n")]
    for alias, name, kind in columns:
        if kind in ("int", "float"):
            out += [
                (f"sum({alias}.{name})", f"sum_{alias}_{name}"),
                (f"max({alias}.{name})", f"max_{alias}_{name}"),
                (f"min({alias}.{name})", f"min_{alias}_{name}"),
            ]
        elif kind == "text":
            out.append((f"count(DISTINCT {alias}.{name})", f"distinct_{alias}_{name}"))
    return out


@st.composite
def queries(draw) -> Query:
    base = draw(st.sampled_from(list(FROM_CLAUSES)))
    columns = [(a, n, k) for a in base for n, k in PRODUCTS[a][1].items()]
    allowed = [column for column in columns if column[2] != "masked"]
    # Now and then a masked column where only a plain selection is allowed.
    filterable = allowed + (columns if draw(st.integers(0, 9)) == 0 else [])
    where = draw(conditions(filterable))
    if draw(st.integers(0, 3)) == 0:  # grouped
        keys = draw(st.lists(st.sampled_from(filterable), max_size=2, unique=True))
        aggregates = draw(
            st.lists(st.sampled_from(_aggregates(allowed)), min_size=1, max_size=2, unique=True)
        )
        items = [(f"{a}.{n}", f"{a}_{n}", k == "masked") for a, n, k in keys]
        items += [(sql, name, False) for sql, name in aggregates]
        core = Select(
            FROM_CLAUSES[base], items, where=where, group=[s for s, _, _ in items[: len(keys)]]
        )
    elif len(base) == 1 and draw(st.booleans()):  # SELECT * of one product
        items = [(n, n, k == "masked") for _, n, k in columns]
        core = Select(FROM_CLAUSES[base], items, star=True, where=where)
    else:
        picked = draw(st.lists(st.sampled_from(columns), min_size=1, max_size=4, unique=True))
        items = [(f"{a}.{n}", f"{a}_{n}", k == "masked") for a, n, k in picked]
        core = Select(FROM_CLAUSES[base], items, where=where)
    query = Query(core=core)
    if draw(st.integers(0, 3)) == 0:
        query.union = True
        query.union_where = draw(conditions(filterable))
    query.wrap = draw(st.sampled_from(["", "", "subquery", "cte"]))
    plain = [i + 1 for i, (_, _, masked) in enumerate(items) if not masked]
    if query.wrap and plain and draw(st.booleans()):
        name = items[draw(st.sampled_from(plain)) - 1][1]
        query.outer_where = f"s.{name} IS NOT NULL"
    # ORDER BY plain outputs (now and then any output, masked ones included).
    orderable = list(range(1, len(items) + 1)) if draw(st.integers(0, 9)) == 0 else plain
    if orderable and draw(st.booleans()):
        query.order = draw(
            st.lists(st.sampled_from(orderable), min_size=1, max_size=2, unique=True)
        )
    if draw(st.booleans()):
        query.limit = draw(st.integers(0, 5))
    return query


def reference_database():
    """The governed rows as the grantee may read them, in an in-memory DuckDB named like
    the products: what every generated query should answer."""
    import duckdb

    conn = duckdb.connect(":memory:")
    conn.execute("CREATE SCHEMA crm")
    conn.execute("CREATE SCHEMA sales")
    conn.execute(
        "CREATE TABLE crm.customers (customer_id BIGINT, country VARCHAR, email VARCHAR, "
        "segment VARCHAR)"
    )
    conn.execute(
        "CREATE TABLE sales.orders (order_id BIGINT, country VARCHAR, email VARCHAR, "
        "iban VARCHAR, amount DOUBLE)"
    )
    masked = lambda value: None if value is None else MASK  # noqa: E731
    for cid, country, email, segment in CUSTOMERS:
        if country == GRANTED_COUNTRY:
            conn.execute(
                "INSERT INTO crm.customers VALUES (?, ?, ?, ?)",
                [cid, country, masked(email), segment],
            )
    for oid, country, email, iban, amount in ORDERS:
        if country == GRANTED_COUNTRY:
            conn.execute(
                "INSERT INTO sales.orders VALUES (?, ?, ?, ?, ?)",
                [oid, country, masked(email), masked(iban), amount],
            )
    return conn


def _reference_rows(conn, sql: str):
    import duckdb

    try:
        return [list(row) for row in conn.execute(sql).fetchall()]
    except duckdb.Error:
        return None


@pytest.mark.django_db(transaction=True)
@hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=queries())
def test_generated_queries_answer_only_the_grant(query, narrowed, roomy_rate):
    sql = query.sql()
    outcome = attempt(narrowed, sql)
    event(f"outcome: {outcome.kind} {outcome.status or ''}".strip())
    assert outcome.kind != "crash", f"{sql}\n{outcome.shown()}"
    if outcome.kind == "refused":
        assert outcome.status in REFUSAL_STATUSES, f"{sql}\n{outcome.shown()}"
        assert not message_leaks(sql, outcome.message), f"{sql}\n{outcome.shown()}"
        return
    reference = reference_database()
    try:
        expected = _reference_rows(reference, sql)
        unlimited = _reference_rows(reference, query.sql(limits=False))
    finally:
        reference.close()
    if outcome.kind == "error":
        # Accepted only for SQL the reference rejects as well.
        assert expected is None, (
            f"{sql}\nthe portal failed, the reference answers {expected}\n{outcome.shown()}"
        )
        return
    assert not cell_leaks(sql, outcome.columns, outcome.rows, strict=True), (
        f"{sql}\n{cell_leaks(sql, outcome.columns, outcome.rows, strict=True)}\n{outcome.shown()}"
    )
    masked = {name for _, name, is_masked in query.outputs if is_masked}
    for row in outcome.rows:
        for name, value in zip(outcome.columns, row, strict=True):
            if name in masked:
                assert value in (MASK, None), f"{sql}\n{name} = {value!r}\n{outcome.shown()}"
            if name.endswith("country") and not name.startswith("distinct"):
                assert value in (GRANTED_COUNTRY, None), f"{sql}\n{outcome.shown()}"
    assert expected is not None, (
        f"{sql}\nthe portal answers, the reference fails\n{outcome.shown()}"
    )
    if query.limit is None:
        assert normalised(outcome.rows) == normalised(expected), (
            f"{sql}\nportal:    {outcome.rows}\nreference: {expected}"
        )
    else:  # which rows a LIMIT keeps may differ: as many, each one the reference has
        assert len(outcome.rows) == min(query.limit, len(unlimited)), (
            f"{sql}\nportal:    {outcome.rows}\nreference: {unlimited}"
        )
        assert not normalised(outcome.rows) - normalised(unlimited), (
            f"{sql}\nportal:    {outcome.rows}\nreference: {unlimited}"
        )
