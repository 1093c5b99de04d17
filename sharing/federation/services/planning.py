"""Planning a federated query: each product reference decided and governed, the columns
and predicates each one needs, and where the query runs.

    plan = query_plan(user=..., sql="SELECT ... FROM sales.orders o JOIN ...")
    plan.engine      # "postgresql" | "duckdb" | "spark": the whole query on one source
                     # "federated": each product read from its source, joined in DuckDB

Governance is by construction, failing closed: every product reference becomes the
governed relation of `read_plan` (the reader's columns, masked expressions, the grant's
row filter) before the query is written for any engine, so whatever the SQL does with a
reference, it only ever sees what the reader may read. On top of that, an analysis of
the query (sqlglot's scopes over a qualified copy) refuses honestly what the data API
refuses: columns outside the reader's access (403), unknown columns (400), and masked
columns used anywhere but as a plain selected column (filtered, joined, grouped, sorted,
computed on), so that nobody mistakes a comparison with `****` for an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db.models import Prefetch, Q
from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import MappingSchema

from products.catalog.selectors import port_for
from products.choices import PortKind, SourceKind
from products.connectors.dialects import sqlglot_dialect
from products.models import Column, DataProduct, OutputPort
from sharing.choices import Channel
from sharing.federation.refusals import QueryRefused
from sharing.federation.sql import DIALECT, ParsedQuery, Reference, query_parse
from sharing.serving.reads import ReadPlan, read_plan
from sharing.serving.refusals import ReadRefused

# sqlglot's dialect of where a query runs: a source's engine, or the in-process DuckDB
# that joins products of several sources.
ENGINE_DIALECTS = {
    engine: sqlglot_dialect(engine) for engine in ("postgresql", "duckdb", "spark")
} | {"federated": "duckdb"}
# Where a source's queries run, by its kind.
SOURCE_ENGINES = {
    SourceKind.POSTGRESQL: "postgresql",
    SourceKind.DUCKDB: "duckdb",
    SourceKind.SPARK: "spark",
}


@dataclass
class GovernedReference:
    """One product reference with the reader's access decided."""

    reference: Reference
    plan: ReadPlan
    location: tuple  # (engine, source id): SOURCE_ENGINES | ("file", port id)
    columns: set[str] = field(default_factory=set)  # what the query reads of it
    predicates: list[exp.Expression] = field(default_factory=list)  # its own WHERE conjuncts

    @property
    def product(self) -> DataProduct:
        return self.plan.product

    def predicates_sql(self, dialect: str) -> list[str]:
        return [predicate.sql(dialect=dialect, comments=False) for predicate in self.predicates]


@dataclass
class QueryPlan:
    user: object
    sql: str
    parsed: ParsedQuery
    governed: list[GovernedReference]
    engine: str

    @property
    def products(self) -> list[DataProduct]:
        """Each product the query reads, once."""
        return list({g.product.pk: g.product for g in self.governed}.values())


def _location(plan: ReadPlan) -> tuple:
    port = plan.port
    if port.kind == PortKind.FILE:
        return ("file", port.pk)
    source = port.source
    engine = SOURCE_ENGINES.get(source.kind)
    if engine is None:  # a kind the query engine cannot read (not one of SOURCE_ENGINES)
        raise QueryRefused(
            f"{plan.product.key}: its port is on a {source.get_kind_display()} source, which "
            "SQL queries do not read.",
        )
    return (engine, source.pk)


def _products(user, references: list[Reference]) -> dict[str, DataProduct]:
    """The products the references name that `user` can see, by key (one query)."""
    wanted = Q()
    for reference in references:
        domain_slug, _, product_slug = reference.key.partition(".")
        wanted |= Q(domain__slug=domain_slug, slug=product_slug)
    found = DataProduct.objects.visible_to(user).select_related("domain").filter(wanted)
    return {product.key: product for product in found}


def _ports(products: dict[str, DataProduct]) -> dict[int, list[OutputPort]]:
    """Each product's ports in name order, with their source, its allowances (for the
    location check of each read) and their columns: three queries for them all."""
    ports: dict[int, list[OutputPort]] = {}
    loaded = (
        OutputPort.objects.filter(product__in=list(products.values()))
        .select_related("source")
        .prefetch_related(
            Prefetch(
                "columns",
                queryset=Column.objects.only("id", "port_id", "name", "position", "data_type"),
            ),
            "source__allowances",
        )
        .order_by("name")
    )
    for port in loaded:
        ports.setdefault(port.product_id, []).append(port)
    return ports


def _govern(
    user,
    reference: Reference,
    products: dict[str, DataProduct],
    ports: dict[int, list[OutputPort]],
) -> GovernedReference:
    product = products.get(reference.key)
    if product is None:
        raise QueryRefused(
            f"Unknown product {reference.key}: name a product by its key, domain.product "
            "(the key is on the product's page).",
            status=404,
        )
    port = port_for(product=product, slug=reference.port_slug, ports=ports.get(product.pk, []))
    if port is not None and port.kind == PortKind.STREAM:
        raise QueryRefused(
            f"{reference.written}: its port {port.slug!r} is a stream, which SQL does not "
            "query: follow it on the product's Data tab or its stream API, or name a table "
            "or file port (domain.product.port).",
        )
    try:
        plan = read_plan(
            user=user,
            product=product,
            channel=Channel.QUERY,
            port_slug=reference.port_slug,
            ports=ports.get(product.pk, []),
        )
    except ReadRefused as exc:
        raise QueryRefused(f"{reference.written}: {exc}", status=exc.status) from exc
    return GovernedReference(reference=reference, plan=plan, location=_location(plan))


def query_plan(*, user, sql: str) -> QueryPlan:
    """Parse, decide and analyse a query (nothing runs). Raises QueryRefused: 400 for SQL
    the portal does not run or columns it does not know, 403 for a product or column
    outside the reader's access or a masked column used beyond selecting it, 404 for an
    unknown product."""
    parsed = query_parse(sql)
    products = _products(user, parsed.references)
    ports = _ports(products)
    governed = [_govern(user, reference, products, ports) for reference in parsed.references]
    _analyse(parsed, governed)
    locations = {g.location for g in governed}
    if len(locations) == 1 and next(iter(locations))[0] != "file":
        engine = next(iter(locations))[0]
    else:
        engine = "federated"
    return QueryPlan(user=user, sql=sql, parsed=parsed, governed=governed, engine=engine)


# --- the analysis -------------------------------------------------------------------------


def _schema(governed: list[GovernedReference], *, every_column: bool) -> MappingSchema:
    """The columns of each reference as the query may name them (`every_column`: the
    port's, to tell "outside your access" from "unknown")."""
    mapping = {}
    for item in governed:
        names = (
            list(item.plan.port.columns.values_list("name", flat=True))
            if every_column
            else item.plan.columns
        )
        quoted = exp.to_identifier(item.reference.marker, quoted=True).sql(dialect=DIALECT)
        mapping[quoted] = {
            exp.to_identifier(name, quoted=True).sql(dialect=DIALECT): "TEXT" for name in names
        }
    return MappingSchema(mapping, dialect=DIALECT)


def _qualify(parsed: ParsedQuery, schema: MappingSchema) -> exp.Expression:
    """A copy of the query with every column resolved to its relation (sqlglot)."""
    return qualify(
        parsed.tree.copy(),
        schema=schema,
        dialect=DIALECT,
        validate_qualify_columns=True,
        quote_identifiers=True,
        isolate_tables=False,
    )


def _qualified(parsed: ParsedQuery, governed: list[GovernedReference]) -> exp.Expression:
    try:
        return _qualify(parsed, _schema(governed, every_column=False))
    except (OptimizeError, SqlglotError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else "a column could not be resolved"
        outside = _outside_access(parsed, governed)
        if outside:
            raise QueryRefused(outside, status=403) from exc
        match = re.match(r"Column '(.+?)' could not be resolved(.*)", first)
        if match:
            where = match.group(2).strip(" .")
            raise QueryRefused(
                f"Unknown column {match.group(1)}"
                + (f" ({where.lower().replace('col:', 'column')})" if where else "")
                + ": the products' columns are listed on their pages and in the SQL "
                "page's browser."
            ) from exc
        raise QueryRefused(f"The query cannot be resolved: {first}") from exc


def _outside_access(parsed: ParsedQuery, governed: list[GovernedReference]) -> str:
    """Why the query fails to resolve when it names columns outside the reader's access
    (a message naming them), or "" when that is not the reason."""
    try:
        tree = _qualify(parsed, _schema(governed, every_column=True))
    except (OptimizeError, SqlglotError):
        return ""
    by_marker = {g.reference.marker: g for g in governed}
    outside: dict[str, set[str]] = {}
    for scope in traverse_scope(tree):
        for column in scope.columns:
            item = _reference_of(scope, column, by_marker)
            if item is not None and column.name not in item.plan.columns:
                outside.setdefault(item.reference.written, set()).add(column.name)
    if not outside:
        return ""
    return (
        "; ".join(
            f"Your access to {key} does not include the column(s): {', '.join(sorted(names))}"
            for key, names in outside.items()
        )
        + "."
    )


def _source_of(scope: Scope, table: str):
    while scope is not None:
        if table in scope.sources:
            return scope.sources[table]
        scope = scope.parent
    return None


def _reference_of(scope: Scope, column: exp.Column, by_marker: dict) -> GovernedReference | None:
    source = _source_of(scope, column.table)
    if isinstance(source, exp.Table):
        return by_marker.get(source.name)
    return None


def _is_plain_projection(column: exp.Column, select: exp.Expression) -> bool:
    """Whether the column is selected as it is (`c`, `c AS x`) by `select`."""
    parent = column.parent
    if isinstance(parent, exp.Alias):
        parent = parent.parent
    return (
        parent is select
        and isinstance(select, exp.Select)
        and any(e is column or e is column.parent for e in select.expressions)
    )


def _output_name(node: exp.Expression) -> str:
    return node.alias_or_name


def _masked_refused(column: exp.Column, what: str) -> QueryRefused:
    return QueryRefused(
        f"The column {column.name} of {what} is masked for you: it can be selected (shown "
        "as ****) but not filtered, joined, grouped, sorted or computed on.",
        status=403,
    )


def _analyse(parsed: ParsedQuery, governed: list[GovernedReference]) -> None:
    """Refuse masked columns beyond a plain selection; note, per reference, the columns
    the query reads and the WHERE conjuncts that concern it alone (pushed down to its
    source when the query is federated)."""
    tree = _qualified(parsed, governed)
    by_marker = {g.reference.marker: g for g in governed}
    whole_row = getattr(exp, "TableColumn", None)  # what the qualifier makes of `SELECT t`
    if whole_row is not None:
        for node in tree.find_all(whole_row):
            raise QueryRefused(
                f"{node.name} names a whole row: name the columns you need ({node.name}.column)."
            )
    # Scopes, children before parents. The masked outputs of a derived table, CTE or
    # union are masked columns for whoever reads them.
    masked_outputs: dict[int, set[str]] = {}
    for scope in traverse_scope(tree):
        select = scope.expression
        masked_here: set[str] = set()
        if isinstance(select, exp.SetOperation):
            masked_outputs[id(scope)] = _set_operation_masked(scope, select, masked_outputs)
            continue
        for column in scope.columns:
            if not column.table and column.name in scope.sources:
                raise QueryRefused(
                    f"{column.name} names a whole row: name the columns you need "
                    f"({column.name}.column)."
                )
            source = _source_of(scope, column.table) if column.table else None
            item = by_marker.get(source.name) if isinstance(source, exp.Table) else None
            if item is not None:
                item.columns.add(column.name)
                masked = column.name in item.plan.masked
                label = item.reference.written
            elif isinstance(source, Scope):
                masked = column.name in masked_outputs.get(id(source), set())
                label = f"the subquery {column.table}"
            else:  # an output alias (ORDER BY x): masked when that output is
                masked = column.name in masked_outputs.get(id(scope), set()) or any(
                    _output_name(e) == column.name
                    and _is_masked_expression(e, scope, by_marker, masked_outputs)
                    for e in getattr(select, "expressions", [])
                )
                label = "the query"
            if not masked:
                continue
            if scope.is_subquery or not _is_plain_projection(column, select):
                raise _masked_refused(column, label)
            masked_here.add(
                _output_name(column.parent if isinstance(column.parent, exp.Alias) else column)
            )
        if isinstance(select, exp.Select):
            _check_order(select, masked_here)
            _push_predicates(scope, select, by_marker)
        masked_outputs[id(scope)] = masked_here
    # A star the qualifier expanded also reads every column: noted above through the
    # expanded columns. A reference none of whose columns is named (count(*)) reads none.


def _set_operation_masked(
    scope: Scope, select: exp.SetOperation, masked_outputs: dict[int, set[str]]
) -> set[str]:
    """The masked outputs of a UNION / INTERSECT / EXCEPT, by position (named as its
    first branch names them). Only UNION ALL may carry one: the others compare rows."""
    names = list(select.named_selects)
    positions: set[int] = set()
    for child in scope.set_operation_scopes:
        child_names = list(child.expression.named_selects)
        masked = masked_outputs.get(id(child), set())
        positions |= {index for index, name in enumerate(child_names) if name in masked}
    if not positions:
        return set()
    shown = names[min(positions)] if min(positions) < len(names) else "a column"
    comparing = not (isinstance(select, exp.Union) and not select.args.get("distinct"))
    if comparing or scope.is_subquery:
        kind = select.key.upper()
        raise QueryRefused(
            f"The column {shown} is masked for you: {kind} would compare its values "
            "(****). Select it in a UNION ALL, or leave it out.",
            status=403,
        )
    return {names[index] for index in positions if index < len(names)}


def _is_masked_expression(node, scope, by_marker, masked_outputs) -> bool:
    inner = node.this if isinstance(node, exp.Alias) else node
    if not isinstance(inner, exp.Column):
        return False
    source = _source_of(scope, inner.table) if inner.table else None
    if isinstance(source, exp.Table) and source.name in by_marker:
        return inner.name in by_marker[source.name].plan.masked
    if isinstance(source, Scope):
        return inner.name in masked_outputs.get(id(source), set())
    return False


def _check_order(select: exp.Select, masked: set[str]) -> None:
    """ORDER BY an output that is masked (by its name or its position): the qualifier
    writes `ORDER BY 1` as the output's name, which a scope does not count among its
    columns."""
    order = select.args.get("order")
    if order is None or not masked:
        return
    names = [_output_name(e) for e in select.expressions]
    for ordered in order.expressions:
        key = ordered.this
        if isinstance(key, exp.Literal) and key.is_int:
            position = int(key.this) - 1
            name = names[position] if 0 <= position < len(names) else ""
            found = [name] if name in masked else []
        else:
            found = [c.name for c in key.find_all(exp.Column) if not c.table and c.name in masked]
        if found:
            raise QueryRefused(
                f"The column {found[0]} is masked for you: it can be selected (shown as "
                "****) but not sorted on.",
                status=403,
            )


# --- predicates pushed down ---------------------------------------------------------------


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    return [condition]


def _null_supplying(select: exp.Select) -> set[str] | None:
    """The aliases of the tables an outer join may fill with NULLs (a predicate on them
    cannot move below the join), or None when no predicate may move (RIGHT/FULL joins)."""
    supplied: set[str] = set()
    for join in select.args.get("joins") or []:
        side = (join.side or "").upper()
        if side in ("RIGHT", "FULL"):
            return None
        if side == "LEFT":
            supplied.add(join.this.alias_or_name)
    return supplied


def _push_predicates(scope: Scope, select: exp.Select, by_marker: dict) -> None:
    where = select.args.get("where")
    if where is None:
        return
    supplied = _null_supplying(select)
    if supplied is None:
        return
    for conjunct in _conjuncts(where.this):
        if conjunct.find(exp.Subquery, exp.Select, exp.AggFunc, exp.Window):
            continue
        tables = {column.table for column in conjunct.find_all(exp.Column)}
        if len(tables) != 1:
            continue
        alias = next(iter(tables))
        source = scope.sources.get(alias)
        if not isinstance(source, exp.Table) or source.name not in by_marker:
            continue
        if alias in supplied:
            continue
        pushed = conjunct.copy()
        for column in pushed.find_all(exp.Column):
            column.set("table", None)
        by_marker[source.name].predicates.append(pushed)
