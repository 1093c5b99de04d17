"""The custom SQL validator: an allow-list, confined to the port's relation. Every hostile
query below is refused in both dialects (PostgreSQL and DuckDB); every legitimate check is
accepted, and what runs is generated from the checked tree with the port's relation where
`{table}` was."""

import random

import pytest

from products.trust.services.custom_sql import (
    SHAPE_MESSAGE,
    CustomSQLRefused,
    custom_sql_columns_read,
    custom_sql_failing_rows,
    custom_sql_parse,
)

DIALECTS = ["postgres", "duckdb"]

HOSTILE = [
    # functions inside strings passed to other functions
    "SELECT count(*) FROM {table} WHERE length(query_to_xml('select * from auth_user', true, "
    "true, '')::text) > 0",
    "SELECT count(*) FROM {table} WHERE query_to_xml(concat('select * from ', 'auth_user'), "
    "true, true, '') IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE xpath('/a', email::xml) IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE dblink('host=evil', 'select 1') IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE length(format('%s', (SELECT 1))) > 0",
    "SELECT count(*) FROM {table} WHERE lower(email) = lower(pg_read_binary_file('/x')::text)",
    # other schemas, other tables, system catalogs
    "SELECT count(*) FROM pg_catalog.pg_shadow",
    "SELECT count(*) FROM {table} WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_user)",
    "SELECT count(*) FROM information_schema.tables",
    "SELECT count(*) FROM {table} JOIN auth_user ON true",
    "SELECT count(*) FROM {table}, public.django_session",
    "SELECT count(*) FROM {table} WHERE email IN (SELECT email FROM auth_user)",
    "SELECT count(*) FROM {table} WHERE email = (SELECT usename FROM pg_user LIMIT 1)",
    "SELECT count(*) FROM {table} t WHERE t.email = ANY(SELECT passwd FROM pg_shadow)",
    "SELECT count(*) FROM {table} UNION SELECT count(*) FROM auth_user",
    "SELECT count(*) FROM {table} WHERE EXISTS (SELECT 1 FROM {table} x, pg_class c)",
    "SELECT count(*) FROM {table} WHERE (SELECT string_agg(usename, ',') FROM pg_user) <> ''",
    "SELECT count(*) FROM {table} WHERE email ~ (SELECT rolpassword FROM pg_authid LIMIT 1)",
    "SELECT count(*) FROM main.{table}",
    "SELECT count(*) FROM other_db.main.{table}",
    "TABLE auth_user",
    # CTEs that shadow {table} or reach past it
    'WITH "__port_relation__" AS (SELECT * FROM auth_user) SELECT count(*) FROM {table}',
    'SELECT count(*) FROM "__port_relation__"',
    "SELECT count(*) FROM __PORT_RELATION__",
    "WITH {table} AS (SELECT * FROM {table}) SELECT count(*) FROM {table}",
    "WITH x AS (SELECT * FROM auth_user) SELECT count(*) FROM {table}, x",
    "WITH a AS (SELECT * FROM b), b AS (SELECT * FROM {table}) SELECT count(*) FROM a",
    "WITH a AS (SELECT * FROM a) SELECT count(*) FROM {table}, a",
    "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) "
    "SELECT count(*) FROM {table}, r",
    'WITH "Users" AS (SELECT * FROM {table}) SELECT count(*) FROM users',
    "SELECT count(*) FROM (WITH w AS (SELECT 1) SELECT * FROM w) s, {table}",
    "WITH t AS (SELECT 1) SELECT count(*) FROM {table} WHERE EXISTS (SELECT 1 FROM t2)",
    # comments and strings hiding things
    "SELECT count(*) FROM {table} /* harmless */ WHERE 1 = (SELECT count(*) FROM auth_user) --",
    "SELECT count(*) FROM {table} -- {table}\n, auth_user",
    "SELECT count(*) FROM {table} WHERE email = E'\\x27' OR 1 IN (SELECT 1 FROM auth_user)",
    "SELECT count(*) FROM {table} WHERE email = $$'$$ OR 1 IN (SELECT 1 FROM auth_user)",
    "SELECT count(*) FROM {table} WHERE email = '{table}'",
    # Unicode tricks
    "SELECT count(*) FROM {table} WHERE email = U&'\\0061'",
    'SELECT count(*) FROM U&"pg_\\0075ser"',
    'SELECT count(*) FROM {table} WHERE U&"em\\0061il" IS NULL',
    # casts that reach the catalogue or do not exist as plain types
    "SELECT count(*) FROM {table} WHERE CAST(email AS regclass) IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE 'pg_user'::regclass::oid > 0",
    "SELECT count(*) FROM {table} WHERE email::regproc IS NULL",
    "SELECT count(*) FROM {table} WHERE CAST(email AS json) IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE email::text[] IS NULL",
    # table functions, files, series
    "SELECT count(*) FROM {table}, LATERAL generate_series(1, 1000000000)",
    "SELECT count(*) FROM generate_series(1, 10)",
    "SELECT count(*) FROM {table} WHERE order_id IN (SELECT * FROM generate_series(1, 3))",
    "SELECT count(*) FROM read_csv_auto('/etc/passwd')",
    "SELECT count(*) FROM {table} WHERE email IN (SELECT * FROM read_csv_auto('/etc/passwd'))",
    "SELECT count(*) FROM {table} WHERE email IN (SELECT * FROM '/etc/passwd')",
    "SELECT count(*) FROM duckdb_settings()",
    "SELECT count(*) FROM (VALUES (pg_read_file('/etc/passwd'))) v(x), {table}",
    "SELECT count(*) FROM {table} AS t TABLESAMPLE SYSTEM (10)",
    # server functions: files, settings, sleep, other sessions
    "SELECT count(*) FROM {table} WHERE pg_read_file('/etc/passwd') IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE pg_ls_dir('.') IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE lo_import('/etc/passwd') > 0",
    "SELECT count(*) FROM {table} WHERE set_config('statement_timeout', '0', false) <> ''",
    "SELECT count(*) FROM {table} WHERE current_setting('data_directory') IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE version() LIKE '%'",
    "SELECT count(*) FROM {table} WHERE pg_sleep(100) IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE txid_current() > 0",
    "SELECT count(*) FROM {table} WHERE getenv('HOME') IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE current_user = 'postgres'",
    "SELECT count(*) FROM {table} WHERE pg_catalog.lower(email) = 'x'",
    "SELECT count(*) FROM {table} WHERE row_to_json(t) IS NOT NULL",
    "SELECT count(*) FROM {table} WHERE email = $1",
    # statements that are not one SELECT
    "COPY {table} TO '/tmp/out.csv'",
    "SET statement_timeout = 0",
    "SELECT count(*) FROM {table}; SELECT count(*) FROM auth_user",
    "SELECT * INTO stolen FROM {table}",
    "SELECT count(*) FROM {table} FOR UPDATE",
    "DELETE FROM {table}",
    "WITH gone AS (DELETE FROM {table} RETURNING *) SELECT count(*) FROM gone",
    "INSERT INTO {table} SELECT * FROM {table}",
    "EXPLAIN ANALYZE SELECT count(*) FROM {table}",
    "ATTACH '/tmp/other.duckdb' AS other",
    "INSTALL httpfs",
    "VALUES (1)",
    "SELECT 1",
    "",
    "not sql at all (",
]

LEGITIMATE = [
    "SELECT count(*) FROM {table} WHERE amount < 0",
    "SELECT count(*) FROM {table} t WHERE t.amount < 0 AND t.status NOT IN ('a', 'b')",
    "WITH dup AS (SELECT order_id, count(*) AS n FROM {table} GROUP BY order_id "
    "HAVING count(*) > 1) SELECT coalesce(sum(n), 0) FROM dup",
    "SELECT count(*) FROM (SELECT order_id, row_number() OVER (PARTITION BY email "
    "ORDER BY order_id) AS rn FROM {table}) x WHERE rn > 1",
    "SELECT count(*) FROM {table} WHERE lower(trim(email)) NOT LIKE '%@%'",
    "SELECT count(*) FROM {table} WHERE created_at > now() - interval '7 days'",
    "SELECT count(*) FROM {table} WHERE CAST(amount AS numeric(10, 2)) <> round(amount, 2)",
    "SELECT count(*) FILTER (WHERE amount IS NULL) FROM {table}",
    "SELECT count(*) FROM {table} a JOIN {table} b ON a.order_id = b.order_id "
    "WHERE b.amount > a.amount",
    "SELECT count(*) FROM {table} WHERE date_trunc('day', created_at) > current_date",
    "SELECT count(*) FROM {table} WHERE extract(year FROM created_at) < 2000",
    "SELECT count(*) FROM {table} WHERE abs(amount) > 1000 OR amount % 2 = 1",
    "SELECT count(*) FROM {table} WHERE length(email) > 100 OR email ~ '^ '",
    "SELECT CASE WHEN count(*) = 0 THEN 1 ELSE 0 END FROM {table}",
    "SELECT count(*) FROM {table} WHERE nullif(status, '') IS NULL",
    "SELECT count(*) FROM {table} WHERE amount > (SELECT avg(amount) + 3 * stddev(amount) "
    "FROM {table})",
    "SELECT count(*) FROM (SELECT order_id FROM {table} UNION ALL SELECT order_id FROM {table}) u",
    "-- refunds are negative\nSELECT count(*) FROM {table} /* not zero */ WHERE amount < 0;",
    "SELECT count(*) FROM {table} WHERE greatest(amount, 0) > least(amount, 10) "
    "AND split_part(email, '@', 2) = ''",
    "SELECT count(*) FROM {table} WHERE status IN (SELECT status FROM {table} GROUP BY status "
    "HAVING count(*) = 1)",
    "WITH base AS (SELECT * FROM {table}), late AS (SELECT * FROM base WHERE amount > 10) "
    "SELECT count(*) FROM late",
    "SELECT count(*) FROM {table} WHERE upper(substring(sku, 1, 4)) <> 'SKU-' "
    "OR replace(sku, '-', '') = sku OR sku ILIKE 'x%'",
    "SELECT count(*) FROM {table} WHERE coalesce(CAST(order_id AS bigint), 0) < 0 "
    "AND amount BETWEEN -1 AND 1 AND email IS DISTINCT FROM status",
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_custom_sql_is_refused(sql, dialect):
    with pytest.raises(CustomSQLRefused):
        custom_sql_parse(sql, dialect=dialect)


def test_the_hostile_corpus_is_large_enough():
    assert len(set(HOSTILE)) >= 50


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", LEGITIMATE)
def test_legitimate_checks_are_accepted(sql, dialect):
    statement = custom_sql_parse(sql, dialect=dialect).statement(
        relation_sql='"warehouse"."orders"'
    )
    assert statement.count('"warehouse"."orders"') == sql.count("{table}")
    assert "__port_relation__" not in statement
    assert "--" not in statement and "/*" not in statement  # comments never reach the source


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT count(*) FROM {table} WHERE pg_read_file('/etc/passwd') <> ''", "pg_read_file()"),
        (
            "SELECT count(*) FROM {table} WHERE length(query_to_xml('select 1', true, true, ''))"
            " > 0",
            "query_to_xml()",
        ),
        ("SELECT count(*) FROM pg_catalog.pg_user", "pg_catalog.pg_user"),
        ("SELECT count(*) FROM {table}, auth_user", "auth_user"),
        ("SELECT count(*) FROM {table} WHERE CAST(email AS regclass) IS NULL", "REGCLASS"),
        ("SELECT count(*) FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
        ("SELECT count(*) FROM {table} WHERE current_setting('x') = ''", "current_setting()"),
    ],
)
def test_a_refusal_names_the_construct(sql, named, dialect):
    with pytest.raises(CustomSQLRefused) as refused:
        custom_sql_parse(sql, dialect=dialect)
    assert named.lower() in str(refused.value).lower()


def test_a_query_without_the_placeholder_says_how_to_name_the_table():
    with pytest.raises(CustomSQLRefused, match=r"\{table\}"):
        custom_sql_parse("SELECT count(*) FROM orders")


@pytest.mark.parametrize(
    ("sql", "read"),
    [
        ("SELECT count(*) FROM {table} WHERE amount < 0", {"amount"}),
        ("SELECT count(*) FROM {table} WHERE CAST(Email AS int) > 0", {"email"}),
        ("SELECT count(*) FROM (SELECT * FROM {table}) s", {"amount", "email"}),
        ("SELECT count(t.*) FROM {table} t", {"amount", "email"}),
        ("SELECT count(*) FROM {table}", set()),
        ("SELECT count(*) FROM {table} a JOIN {table} b USING (email)", {"email"}),
        ("SELECT count(*) FROM {table} a NATURAL JOIN {table} b", {"amount", "email"}),
        ("SELECT count(*) FROM {table} t WHERE t IS NULL", {"amount", "email"}),
    ],
)
def test_columns_a_query_reads(sql, read):
    query = custom_sql_parse(sql)
    assert custom_sql_columns_read(query, columns=["amount", "email"]) == read


@pytest.mark.parametrize(
    ("rows", "failing"),
    [([(3,)], 3), ([(0,)], 0), ([(None,)], 0), ([(7.0,)], 7)],
)
def test_one_whole_number_is_the_failing_count(rows, failing):
    assert custom_sql_failing_rows(rows) == failing


@pytest.mark.parametrize(
    "rows",
    [[], [(1,), (2,)], [(1, 2)], [("secret",)], [(2.5,)], [(-1,)], [(True,)], [(float("nan"),)]],
)
def test_any_other_answer_is_the_fixed_shape_message(rows):
    with pytest.raises(CustomSQLRefused) as refused:
        custom_sql_failing_rows(rows)
    assert str(refused.value) == SHAPE_MESSAGE


SPLICES = [
    "'",
    '"',
    "/*",
    "*/",
    "--",
    "\n",
    "$$",
    ";",
    "(",
    ")",
    "\\",
    "U&",
    "E'",
    " pg_read_file('/etc/passwd') ",
    ", auth_user",
    " {table} ",
    "::regclass",
    " UNION SELECT count(*) FROM pg_user ",
    " WITH x AS (SELECT 1) ",
]


def _mutations(sql: str, seed: int, count: int = 25):
    rng = random.Random(seed)
    for _ in range(count):
        text = sql
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(text))
            text = text[:at] + rng.choice(SPLICES) + text[at:]
        yield text


@pytest.mark.parametrize("dialect", DIALECTS)
def test_mutated_queries_are_refused_or_still_confined(dialect):
    """Property: on any splice of quotes, comments, escapes, functions and relations into
    the corpora, the validator either refuses (never another exception) or accepts a query
    whose statement, as it would run, passes the validator again: what runs is checked."""
    accepted = 0
    for index, sql in enumerate(HOSTILE + LEGITIMATE):
        for text in _mutations(sql, seed=index):
            try:
                query = custom_sql_parse(text, dialect=dialect)
            except CustomSQLRefused:
                continue
            accepted += 1
            runs = query.statement(relation_sql="{table}")
            again = custom_sql_parse(runs, dialect=dialect)  # raises if what runs escapes
            assert again.statement(relation_sql="{table}") == runs
    assert accepted > 0  # the property was exercised, not only refusals
