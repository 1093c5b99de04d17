"""Reading a federated query: one read-only SELECT over product keys, parsed with sqlglot
in PostgreSQL's dialect and checked against the same allow-list as custom SQL checks.

    parsed = query_parse("SELECT o.country, sum(o.net_amount) FROM sales.orders o GROUP BY 1")
    parsed.references  # [Reference(key="sales.orders", port_slug=None, alias="o")]

Every relation the query names is either a product (`domain.product` for its default
port, `domain.product.port` for another), or a WITH query defined at the top of the
query. Each product reference is replaced in the tree by a marker table
(`"__portal_ref_<n>__" AS <alias>`), which the planner later swaps for the governed
relation the reader may see. Nothing here touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from products.trust.services.custom_sql import (
    TABLE_EXTRAS,
    _relation_name,
    sql_ctes_check,
    sql_node_check,
)
from sharing.federation.refusals import QueryRefused

DIALECT = "postgres"  # the dialect people write federated queries in
MARKER_PREFIX = "__portal_ref_"
MAX_SQL_CHARS = 100_000
MAX_REFERENCES = 20


@dataclass(frozen=True)
class Reference:
    """One product named by the query."""

    index: int
    key: str  # domain.product
    port_slug: str | None
    alias: str  # the name the query's columns use for it

    @property
    def marker(self) -> str:
        return f"{MARKER_PREFIX}{self.index}__"

    @property
    def written(self) -> str:
        return f"{self.key}.{self.port_slug}" if self.port_slug else self.key


@dataclass
class ParsedQuery:
    tree: exp.Expression  # product references replaced by marker tables
    references: list[Reference]


def _syntax_error(exc: sqlglot.errors.ParseError) -> QueryRefused:
    errors = getattr(exc, "errors", None) or []
    if errors:
        first = errors[0]
        near = first.get("highlight") or ""
        where = f"line {first.get('line')}, column {first.get('col')}"
        return QueryRefused(
            f"Syntax error at {where}"
            + (f" near {near!r}" if near else "")
            + f": {first.get('description') or 'invalid SQL'}."
        )
    return QueryRefused(f"Syntax error: {str(exc).splitlines()[0] if str(exc) else 'invalid SQL'}.")


def _statements(text: str) -> list[exp.Expression]:
    try:
        return [s for s in sqlglot.parse(text, read=DIALECT) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise _syntax_error(exc) from exc
    except sqlglot.errors.SqlglotError as exc:
        raise QueryRefused(f"The SQL does not parse: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:  # sqlglot can fail in other ways on odd input
        raise QueryRefused("The SQL does not parse.") from exc


def _cte_matches(table: exp.Table, cte: exp.CTE) -> bool:
    ref, name = table.this, cte.args["alias"].this
    if not isinstance(ref, exp.Identifier) or not isinstance(name, exp.Identifier):
        return False
    if ref.quoted or name.quoted:
        return ref.name == name.name
    return ref.name.lower() == name.name.lower()


def _product_reference(table: exp.Table, index: int) -> Reference:
    """The product a qualified table names: db.name is `domain.product`, catalog.db.name
    is `domain.product.port`."""
    extras = [key for key in TABLE_EXTRAS if key not in ("db", "catalog") and table.args.get(key)]
    written = _relation_name(table)
    if extras:
        raise QueryRefused(
            f"{written} is read as it is: {', '.join(sorted(extras))} is not allowed on a product."
        )
    catalog, db, name = table.catalog, table.db, table.name
    if catalog:
        key, port_slug = f"{catalog}.{db}", name
    else:
        key, port_slug = f"{db}.{name}", None
    alias = table.alias or (name if not catalog else db)
    return Reference(index=index, key=key, port_slug=port_slug, alias=alias)


def query_parse(sql: str) -> ParsedQuery:
    """Parse and check a federated query. Raises QueryRefused (400) naming the
    construct refused, before anything runs."""
    text = (sql or "").strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if not text:
        raise QueryRefused(
            "Write a SELECT query over product keys, e.g. SELECT * FROM sales.orders."
        )
    if len(text) > MAX_SQL_CHARS:
        raise QueryRefused(f"The query is longer than {MAX_SQL_CHARS:,} characters.")
    if "\x00" in text:
        raise QueryRefused("The query contains a NUL character.")
    if MARKER_PREFIX in text.lower():
        raise QueryRefused(f"Names starting with {MARKER_PREFIX} are reserved.")
    statements = _statements(text)
    if len(statements) != 1:
        raise QueryRefused(
            "Write exactly one statement." if statements else "Write a SELECT query."
        )
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation):
        what = tree.key.upper() if isinstance(tree, exp.Expression) else "This statement"
        raise QueryRefused(
            f"Only a SELECT query is allowed ({what} is not): queries never change data."
        )
    ctes = sql_ctes_check(tree, place="in a query", error=QueryRefused, reserved=())
    scope_of: dict[int, list[exp.CTE]] = {}
    for position, cte in enumerate(ctes):
        for table in cte.find_all(exp.Table):
            scope_of.setdefault(id(table), ctes[:position])
    references: list[Reference] = []
    tables: list[tuple[exp.Table, Reference]] = []
    for node in tree.walk():
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                what = (
                    f"The table function {node.this.sql(DIALECT).split('(')[0].lower()}()"
                    if isinstance(node.this, exp.Func)
                    else f"The relation {_relation_name(node)}"
                )
                raise QueryRefused(f"{what} is not allowed: name products by their key.")
            qualified = node.args.get("db") or node.args.get("catalog")
            if not qualified:
                if any(_cte_matches(node, cte) for cte in scope_of.get(id(node), ctes)):
                    continue
                raise QueryRefused(
                    f"The relation {node.name} is neither a product nor a WITH query "
                    "defined before it: name a product by its key, domain.product "
                    "(e.g. sales.orders).",
                    status=404,
                )
            if isinstance(node.args.get("alias"), exp.TableAlias) and node.args["alias"].columns:
                raise QueryRefused(
                    f"Column names in an alias ({node.alias}(...)) are not allowed: name "
                    "the columns in the SELECT list (column AS name)."
                )
            if node.args.get("catalog") and isinstance(node.parent, exp.Schema):
                raise QueryRefused("A column list on a product is not allowed.")
            if len(references) >= MAX_REFERENCES:
                raise QueryRefused(f"A query may name at most {MAX_REFERENCES} products.")
            reference = _product_reference(node, len(references))
            references.append(reference)
            tables.append((node, reference))
            continue
        if isinstance(node, exp.TableAlias) and node.columns:
            raise QueryRefused(
                f"Column names in an alias ({node.name}(...)) are not allowed: name the "
                "columns in the SELECT list (column AS name)."
            )
        sql_node_check(node, place="in a query", error=QueryRefused)
    if not references:
        raise QueryRefused("Name at least one product, e.g. SELECT * FROM sales.orders.")
    for table, reference in tables:
        # The alias as written (its quoting decides how the database matches it), or the
        # name the table was written with, so that `orders.country` still resolves.
        alias = table.args.get("alias")
        if alias is None:
            named = table.args["db"] if table.args.get("catalog") else table.this
            alias = exp.TableAlias(this=named.copy())
        table.replace(
            exp.Table(this=exp.to_identifier(reference.marker, quoted=True), alias=alias.copy())
        )
    return ParsedQuery(tree=tree, references=references)
