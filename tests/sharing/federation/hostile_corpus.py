"""Hostile federated queries, run as the `narrowed` grantee (tests/sharing/federation/
conftest.py): Belgian rows only of crm.customers and sales.orders (row filter country =
'BE'), email masked on both, iban masked on sales.orders, no grant on crm.visits.

What the grantee may see, and so what a query that runs may answer:

    crm.customers  (1, 'BE', '****', 'retail'), (3, 'BE', NULL, 'pro')
    sales.orders   (1, 'BE', '****', '****', 10.0), (3, 'BE', NULL, '****', 30.0)

Each case is one query and what it may do (see `Case`); test_hostile.py runs them all and
holds every answer (or refusal, or error message) to the same oracle: no sensitive value,
no row outside the grant.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One hostile query.

    - `expect`: when the query runs, its rows (in any order) must be exactly these: for
      probes whose answer would differ if a masked value or a hidden row got through
      (a count, a membership test through INTERSECT...).
    - `must_refuse`: the query names something outside the grant (crm.visits): it must be
      refused, never run.
    - `must_run`: the query is harmless on the governed rows and must answer `expect`
      (a refusal or an error is a failure): the error side channels, whose failure would
      tell that a hidden row exists.
    """

    id: str
    sql: str
    expect: tuple | None = None
    must_refuse: bool = False
    must_run: bool = False


def rows(*items) -> tuple:
    """`rows([1], [3])`: the expected rows, as a hashable value."""
    return tuple(tuple(item) for item in items)


C = Case
BELGIAN_CUSTOMERS = rows([1], [3])
BELGIAN_ORDERS = rows([1], [3])

FUNCTIONS = [
    C("upper_email", "SELECT upper(email) FROM crm.customers"),
    C("lower_iban", "SELECT lower(iban) FROM sales.orders"),
    C("length_email", "SELECT customer_id, length(email) FROM crm.customers"),
    C("char_length_iban", "SELECT char_length(iban) FROM sales.orders"),
    C("substring_iban", "SELECT substring(iban, 1, 2) FROM sales.orders"),
    C("substring_from_for", "SELECT substring(email FROM 1 FOR 3) FROM crm.customers"),
    C("left_email", "SELECT left(email, 1) FROM crm.customers"),
    C("right_iban", "SELECT right(iban, 2) FROM sales.orders"),
    C("replace_email", "SELECT replace(email, '@', '#') FROM crm.customers"),
    C("reverse_email", "SELECT reverse(email) FROM crm.customers"),
    C("strpos_email", "SELECT strpos(email, '@') FROM crm.customers"),
    C("position_in_email", "SELECT position('@' IN email) FROM crm.customers"),
    C("split_part_email", "SELECT split_part(email, '@', 1) FROM crm.customers"),
    C("trim_iban", "SELECT trim(iban) FROM sales.orders"),
    C("lpad_email", "SELECT lpad(email, 10, '*') FROM crm.customers"),
    C("md5_email", "SELECT md5(email) FROM crm.customers"),
    C("ascii_email", "SELECT ascii(email) FROM crm.customers"),
    C("encode_iban", "SELECT encode(convert_to(iban, 'UTF8'), 'hex') FROM sales.orders"),
    C("row_to_json", "SELECT row_to_json(c) FROM crm.customers c"),
    C("to_jsonb_star", "SELECT to_jsonb(c.*) FROM crm.customers c"),
    C("format_email", "SELECT format('%s', email) FROM crm.customers"),
    C("starts_with_email", "SELECT starts_with(email, 'a') FROM crm.customers"),
    C("regexp_matches_email", "SELECT regexp_matches(email, '^(.)') FROM crm.customers"),
    C("upper_in_subquery", "SELECT * FROM (SELECT upper(email) AS u FROM crm.customers) s"),
    C("greatest_iban", "SELECT greatest(iban, 'A') FROM sales.orders"),
    C("hash_iban_duckdb", "SELECT hash(iban) FROM sales.orders"),
]

CASTS = [
    C("cast_email_int", "SELECT CAST(email AS INT) FROM crm.customers"),
    C("pg_cast_email_int", "SELECT email::int FROM crm.customers"),
    C("cast_iban_text", "SELECT CAST(iban AS TEXT) FROM sales.orders"),
    C("cast_iban_varchar2", "SELECT iban::varchar(2) FROM sales.orders"),
    C("cast_email_bytea", "SELECT CAST(email AS bytea) FROM crm.customers"),
    C("cast_email_char1", "SELECT CAST(email AS CHAR(1)) FROM crm.customers"),
    C("id_text_concat_email", "SELECT customer_id::text || email FROM crm.customers"),
    C("double_cast_email", "SELECT CAST(CAST(email AS TEXT) AS VARCHAR) FROM crm.customers"),
    C("try_cast_iban", "SELECT TRY_CAST(iban AS INT) FROM sales.orders"),
    # A failed cast quotes the value it could not convert: only Belgian ones may appear.
    C("cast_country_int_pg", "SELECT CAST(country AS INT) FROM crm.customers"),
    C(
        "cast_country_int_parquet",
        "SELECT count(*) FROM sales.orders WHERE CAST(country AS INT) = 1",
    ),
    C("cast_segment_int_pg", "SELECT customer_id FROM crm.customers WHERE segment::int = 1"),
]

CONCATENATION = [
    C("concat_pipe_email", "SELECT email || '' FROM crm.customers"),
    C("concat_pipe_iban", "SELECT '' || iban FROM sales.orders"),
    C("concat_fn_email", "SELECT concat(email, country) FROM crm.customers"),
    C("concat_ws_iban_email", "SELECT concat_ws(',', iban, email) FROM sales.orders"),
    C("concat_country_email", "SELECT country || '-' || email AS x FROM crm.customers"),
    C(
        "concat_allowed_columns",
        "SELECT customer_id, segment || country AS sc FROM crm.customers",
        expect=rows([1, "retailBE"], [3, "proBE"]),
    ),
    C(
        "concat_orders_allowed",
        "SELECT order_id || ':' || country AS x FROM sales.orders",
        expect=rows(["1:BE"], ["3:BE"]),
    ),
]

CASE_EXPRESSIONS = [
    C(
        "case_when_email_eq",
        "SELECT CASE WHEN email = 'ann@x' THEN 1 ELSE 0 END AS hit FROM crm.customers",
        expect=rows([0], [0]),
    ),
    C(
        "simple_case_email",
        "SELECT CASE email WHEN 'ann@x' THEN 'hit' ELSE 'miss' END AS r FROM crm.customers",
        expect=rows(["miss"], ["miss"]),
    ),
    C("case_email_like", "SELECT CASE WHEN email LIKE 'a%' THEN 'A' END FROM crm.customers"),
    C(
        "case_iban_like_fr",
        "SELECT CASE WHEN iban LIKE 'FR%' THEN order_id END AS o FROM sales.orders",
        expect=rows([None], [None]),
    ),
    C(
        "case_in_where",
        "SELECT customer_id FROM crm.customers WHERE CASE WHEN email > 'm' THEN true ELSE false "
        "END",
    ),
    C(
        "case_else_email",
        "SELECT CASE WHEN email IS NULL THEN 'none' ELSE email END FROM crm.customers",
    ),
    C(
        "sum_case_iban",
        "SELECT sum(CASE WHEN iban = 'BE01' THEN 1 ELSE 0 END) AS n FROM sales.orders",
        expect=rows([0]),
    ),
    C("case_then_email", "SELECT CASE WHEN country = 'BE' THEN email END FROM crm.customers"),
    C(
        "case_outside_rows",
        "SELECT order_id, CASE WHEN country <> 'BE' THEN 'outside' ELSE 'inside' END AS w "
        "FROM sales.orders",
        expect=rows([1, "inside"], [3, "inside"]),
    ),
    C("count_filter_email", "SELECT count(*) FILTER (WHERE email = 'ann@x') FROM crm.customers"),
    C(
        "case_on_hidden_count",
        "SELECT CASE WHEN (SELECT count(*) FROM crm.customers WHERE customer_id = 2) > 0 "
        "THEN 'exists' ELSE 'hidden' END AS r",
        expect=rows(["hidden"]),
    ),
    C("if_email", "SELECT IF(email = 'ann@x', 1, 0) FROM crm.customers"),
]

COALESCE = [
    C("coalesce_email", "SELECT coalesce(email, 'none') FROM crm.customers"),
    C("coalesce_iban_email", "SELECT coalesce(iban, email) FROM sales.orders"),
    C("nullif_email", "SELECT nullif(email, 'ann@x') FROM crm.customers"),
    C("nullif_iban", "SELECT coalesce(nullif(iban, 'BE01'), 'was BE01') FROM sales.orders"),
    C("coalesce_in_where", "SELECT customer_id FROM crm.customers WHERE coalesce(email, '') <> ''"),
    C("greatest_email", "SELECT greatest(email, 'zzz') FROM crm.customers"),
    C("least_iban", "SELECT least(iban, 'ZZ') FROM sales.orders"),
    C(
        "coalesce_allowed",
        "SELECT coalesce(customer_id, 0) AS customer_id FROM crm.customers",
        expect=BELGIAN_CUSTOMERS,
    ),
]

LIKE = [
    C("like_email", "SELECT customer_id FROM crm.customers WHERE email LIKE 'a%'"),
    C("ilike_email", "SELECT customer_id FROM crm.customers WHERE email ILIKE '%@X'"),
    C("not_like_email", "SELECT customer_id FROM crm.customers WHERE email NOT LIKE 'b%'"),
    C("similar_email", "SELECT customer_id FROM crm.customers WHERE email SIMILAR TO 'a%'"),
    C("regex_email", "SELECT customer_id FROM crm.customers WHERE email ~ '^a'"),
    C("regex_i_email", "SELECT customer_id FROM crm.customers WHERE email ~* '^A'"),
    C("like_iban", "SELECT order_id FROM sales.orders WHERE iban LIKE 'BE%'"),
    C("like_iban_escape", "SELECT order_id FROM sales.orders WHERE iban LIKE '%0_' ESCAPE '!'"),
    C("like_in_select", "SELECT email LIKE 'a%' FROM crm.customers"),
    C("literal_like_email", "SELECT customer_id FROM crm.customers WHERE 'ann@x' LIKE email"),
    C(
        "like_country_hidden",
        "SELECT customer_id FROM crm.customers WHERE country LIKE '%L'",
        expect=rows(),
    ),
    C(
        "like_orders_country_hidden",
        "SELECT order_id FROM sales.orders WHERE country LIKE 'F%'",
        expect=rows(),
    ),
]

COMPARISONS = [
    C("eq_email", "SELECT customer_id FROM crm.customers WHERE email = 'ann@x'"),
    C("gt_email", "SELECT customer_id FROM crm.customers WHERE email > 'b'"),
    C("between_email", "SELECT customer_id FROM crm.customers WHERE email BETWEEN 'a' AND 'b'"),
    C("in_email", "SELECT customer_id FROM crm.customers WHERE email IN ('ann@x', 'bob@x')"),
    C("is_not_null_email", "SELECT customer_id FROM crm.customers WHERE email IS NOT NULL"),
    C(
        "distinct_from_email",
        "SELECT customer_id FROM crm.customers WHERE email IS DISTINCT FROM 'ann@x'",
    ),
    C("neq_iban", "SELECT order_id FROM sales.orders WHERE iban <> 'BE01'"),
    C(
        "any_array_iban",
        "SELECT order_id FROM sales.orders WHERE iban = ANY (ARRAY['BE01', 'FR04'])",
    ),
    C("eq_in_select", "SELECT email = 'ann@x' AS same FROM crm.customers"),
    C("min_where_email", "SELECT min(customer_id) FROM crm.customers WHERE email < 'b'"),
    C(
        "row_compare_email",
        "SELECT customer_id FROM crm.customers WHERE (email, country) = ('ann@x', 'BE')",
    ),
    C("hidden_id", "SELECT customer_id FROM crm.customers WHERE customer_id = 2", expect=rows()),
    C(
        "hidden_ids_in",
        "SELECT customer_id FROM crm.customers WHERE customer_id IN (2, 4)",
        expect=rows(),
    ),
    C(
        "hidden_countries",
        "SELECT customer_id FROM crm.customers WHERE country IN ('NL', 'FR')",
        expect=rows(),
    ),
    C("not_belgian", "SELECT customer_id FROM crm.customers WHERE country <> 'BE'", expect=rows()),
    C(
        "not_eq_belgian",
        "SELECT order_id FROM sales.orders WHERE NOT (country = 'BE')",
        expect=rows(),
    ),
    C(
        "or_true",
        "SELECT customer_id FROM crm.customers WHERE country = 'BE' OR true",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "or_one_eq_one",
        "SELECT order_id FROM sales.orders WHERE false OR 1 = 1",
        expect=BELGIAN_ORDERS,
    ),
    C("amount_outside", "SELECT order_id FROM sales.orders WHERE amount > 15", expect=rows([3])),
    C(
        "order_ids_outside",
        "SELECT order_id FROM sales.orders WHERE order_id >= 2",
        expect=rows([3]),
    ),
    C(
        "null_country_or",
        "SELECT order_id FROM sales.orders WHERE country IS NULL OR country IS NOT NULL",
        expect=BELGIAN_ORDERS,
    ),
]

JOINS = [
    C(
        "join_on_email",
        "SELECT c.customer_id FROM crm.customers c JOIN sales.orders o ON o.email = c.email",
    ),
    C(
        "self_join_email",
        "SELECT c.customer_id FROM crm.customers c JOIN crm.customers d ON d.email = c.email",
    ),
    C(
        "self_join_iban",
        "SELECT o.order_id FROM sales.orders o JOIN sales.orders p ON p.iban = o.iban",
    ),
    C(
        "join_iban_like",
        "SELECT c.customer_id FROM crm.customers c JOIN sales.orders o ON o.iban LIKE c.country "
        "|| '%'",
    ),
    C("join_using_email", "SELECT * FROM crm.customers JOIN sales.orders USING (email)"),
    C("natural_join", "SELECT * FROM crm.customers c NATURAL JOIN sales.orders o"),
    C(
        "left_join_email",
        "SELECT c.customer_id FROM crm.customers c LEFT JOIN sales.orders o "
        "ON o.email = c.email AND o.country = c.country",
    ),
    C(
        "comma_join_email",
        "SELECT count(*) FROM crm.customers c, sales.orders o WHERE c.email = o.email",
    ),
    C(
        "full_join_ids",
        "SELECT c.customer_id, o.order_id FROM crm.customers c FULL JOIN sales.orders o "
        "ON o.order_id = c.customer_id",
        expect=rows([1, 1], [3, 3]),
    ),
    C(
        "right_join",
        "SELECT c.customer_id, o.order_id FROM crm.customers c RIGHT JOIN sales.orders o "
        "ON o.country = c.country WHERE o.order_id > 1",
        expect=rows([1, 3], [3, 3]),
    ),
    C(
        "left_join_anti",
        "SELECT c.customer_id FROM crm.customers c LEFT JOIN sales.orders o "
        "ON o.order_id = c.customer_id WHERE o.order_id IS NULL",
        expect=rows(),
    ),
    C(
        "join_shows_masked",
        "SELECT c.customer_id, o.email FROM crm.customers c JOIN sales.orders o "
        "ON o.order_id = c.customer_id",
        expect=rows([1, "****"], [3, None]),
    ),
    C(
        "cross_join",
        "SELECT a.customer_id AS a, b.customer_id AS b FROM crm.customers a CROSS JOIN "
        "crm.customers b",
        expect=rows([1, 1], [1, 3], [3, 1], [3, 3]),
    ),
    C(
        "join_on_hidden_country",
        "SELECT count(*) FROM crm.customers c JOIN sales.orders o ON o.country = c.country "
        "AND c.country IN ('NL', 'FR')",
        expect=rows([0]),
    ),
]

WINDOWS = [
    C(
        "order_by_email",
        "SELECT customer_id, row_number() OVER (ORDER BY email) FROM crm.customers",
    ),
    C(
        "partition_by_email",
        "SELECT customer_id, rank() OVER (PARTITION BY email ORDER BY customer_id) FROM "
        "crm.customers",
    ),
    C(
        "first_value_email",
        "SELECT first_value(email) OVER (ORDER BY customer_id) FROM crm.customers",
    ),
    C("lag_iban", "SELECT lag(iban) OVER (ORDER BY order_id) FROM sales.orders"),
    C(
        "count_partition_iban",
        "SELECT order_id, count(*) OVER (PARTITION BY iban) FROM sales.orders",
    ),
    C(
        "named_window_iban",
        "SELECT order_id, dense_rank() OVER w FROM sales.orders WINDOW w AS (ORDER BY iban)",
    ),
    C("ntile_email", "SELECT order_id, ntile(2) OVER (ORDER BY email DESC) FROM sales.orders"),
    C(
        "sum_partition_country",
        "SELECT order_id, sum(amount) OVER (PARTITION BY country) AS total FROM sales.orders",
        expect=rows([1, 40.0], [3, 40.0]),
    ),
    C(
        "count_over_all",
        "SELECT customer_id, count(*) OVER () AS n FROM crm.customers",
        expect=rows([1, 2], [3, 2]),
    ),
    C(
        "lead_ids",
        "SELECT customer_id, lead(customer_id) OVER (ORDER BY customer_id) AS nxt FROM "
        "crm.customers",
        expect=rows([1, 3], [3, None]),
    ),
    C(
        "max_over_frame",
        "SELECT max(amount) OVER (ORDER BY order_id ROWS BETWEEN UNBOUNDED PRECEDING "
        "AND UNBOUNDED FOLLOWING) AS m FROM sales.orders",
        expect=rows([30.0], [30.0]),
    ),
    C(
        "window_in_subquery_email",
        "SELECT * FROM (SELECT customer_id, row_number() OVER (PARTITION BY email) AS r "
        "FROM crm.customers) s",
    ),
]

SET_OPERATIONS = [
    C(
        "union_literal_email",
        "SELECT email FROM crm.customers UNION SELECT 'ann@x'",
        expect=rows(["****"], [None], ["ann@x"]),
    ),
    C(
        "union_literal_count",
        "SELECT count(*) FROM (SELECT email FROM crm.customers UNION SELECT 'ann@x') s",
        expect=rows([3]),
    ),
    C(
        "intersect_literal_email",
        "SELECT count(*) FROM (SELECT email FROM crm.customers INTERSECT SELECT 'ann@x') s",
        expect=rows([0]),
    ),
    C(
        "except_literal_email",
        "SELECT count(*) FROM (SELECT 'ann@x' AS e EXCEPT SELECT email FROM crm.customers) s",
        expect=rows([1]),
    ),
    C(
        "intersect_literal_iban",
        "SELECT count(*) FROM (SELECT iban FROM sales.orders INTERSECT SELECT 'BE01') s",
        expect=rows([0]),
    ),
    C(
        "except_literal_iban",
        "SELECT count(*) FROM (SELECT iban FROM sales.orders EXCEPT SELECT 'BE01') s",
        expect=rows([1]),
    ),
    C(
        "intersect_hidden_email",
        "SELECT count(*) FROM (SELECT email FROM crm.customers INTERSECT SELECT 'bob@x') s",
        expect=rows([0]),
    ),
    C(
        "intersect_two_masked",
        "SELECT email FROM crm.customers INTERSECT SELECT email FROM sales.orders",
    ),
    C(
        "union_all_countries",
        "SELECT country FROM crm.customers UNION ALL SELECT country FROM sales.orders",
        expect=rows(["BE"], ["BE"], ["BE"], ["BE"]),
    ),
    C(
        "union_ids",
        "SELECT customer_id FROM crm.customers UNION SELECT order_id FROM sales.orders",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "union_masked_order_by",
        "SELECT email FROM crm.customers UNION SELECT iban FROM sales.orders ORDER BY 1",
    ),
    C(
        "union_then_filter",
        "SELECT * FROM (SELECT email AS e FROM crm.customers UNION SELECT 'ann@x') s WHERE e = "
        "'ann@x'",
        expect=rows(["ann@x"]),
    ),
    C(
        "in_union_subquery",
        "SELECT count(*) FROM crm.customers WHERE 'ann@x' IN (SELECT email FROM crm.customers "
        "UNION SELECT 'zzz')",
    ),
    C("except_ids", "SELECT customer_id FROM crm.customers EXCEPT SELECT 1", expect=rows([3])),
    C(
        "intersect_hidden_id",
        "SELECT 2 AS x INTERSECT SELECT customer_id FROM crm.customers",
        expect=rows(),
    ),
    C(
        "intersect_hidden_country",
        "SELECT count(*) FROM (SELECT country FROM crm.customers INTERSECT SELECT 'NL') s",
        expect=rows([0]),
    ),
    C(
        "intersect_hidden_order",
        "SELECT count(*) FROM (SELECT order_id FROM sales.orders INTERSECT SELECT 4) s",
        expect=rows([0]),
    ),
    C(
        "except_all_hidden_amount",
        "SELECT count(*) FROM (SELECT 20.0 AS a EXCEPT ALL SELECT amount FROM sales.orders) s",
        expect=rows([1]),
    ),
    C(
        "union_visits",
        "SELECT count(*) FROM (SELECT customer_id FROM crm.customers UNION ALL "
        "SELECT customer_id FROM crm.visits) s",
        must_refuse=True,
    ),
    C(
        "union_branches_limited",
        "(SELECT email FROM crm.customers LIMIT 1) UNION ALL (SELECT email FROM sales.orders)",
    ),
]

CTES = [
    C(
        "cte_named_customers",
        "WITH customers AS (SELECT * FROM crm.customers) SELECT customer_id, country FROM "
        "customers",
        expect=rows([1, "BE"], [3, "BE"]),
    ),
    C(
        "cte_customers_unused",
        "WITH customers AS (SELECT 9 AS x) SELECT customer_id FROM crm.customers",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "cte_named_like_domain",
        "WITH crm AS (SELECT 9 AS x) SELECT customer_id FROM crm.customers",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "cte_named_orders",
        "WITH orders AS (SELECT 9 AS order_id) SELECT order_id FROM sales.orders",
        expect=BELGIAN_ORDERS,
    ),
    C(
        "cte_named_like_product_key",
        'WITH "crm.customers" AS (SELECT customer_id FROM crm.customers WHERE customer_id = 2) '
        'SELECT customer_id FROM "crm.customers"',
        expect=rows(),
    ),
    C(
        "cte_named_visits",
        "WITH visits AS (SELECT * FROM crm.customers) SELECT customer_id FROM visits",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "cte_over_visits",
        "WITH v AS (SELECT * FROM crm.visits) SELECT count(*) FROM v",
        must_refuse=True,
    ),
    C(
        "cte_masked_filtered",
        "WITH c AS (SELECT email FROM crm.customers) SELECT * FROM c WHERE email LIKE 'a%'",
    ),
    C(
        "cte_outside_rows",
        "WITH c AS (SELECT * FROM crm.customers) SELECT count(*) FROM c WHERE country <> 'BE'",
        expect=rows([0]),
    ),
    C(
        "cte_recursive",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
        "SELECT * FROM r, crm.customers",
    ),
    C(
        "cte_forward_reference",
        "WITH a AS (SELECT * FROM b), b AS (SELECT * FROM crm.customers) SELECT * FROM a",
    ),
    C(
        "cte_chain_hidden",
        "WITH c AS (SELECT * FROM crm.customers), c2 AS (SELECT * FROM c WHERE customer_id = 2) "
        "SELECT count(*) FROM c2",
        expect=rows([0]),
    ),
    # The engine's own names: DuckDB read each input as "input_<n>" (a file's view, a
    # table read from a source; now "input_<n>_<salt>"), and the governed relation is
    # aliased "governed". A WITH query of that name must not take the place of a
    # product's rows.
    C(
        "cte_named_duckdb_input_file",
        "WITH input_0 AS (SELECT 9 AS order_id, 'XX' AS country, 'mine' AS email, "
        "'mine' AS iban, 0.5 AS amount) SELECT order_id FROM sales.orders",
        expect=BELGIAN_ORDERS,
    ),
    C(
        "cte_named_duckdb_input_table",
        "WITH input_1 AS (SELECT 9 AS customer_id, 'BE' AS country) "
        "SELECT c.customer_id FROM sales.orders o JOIN crm.customers c ON c.country = o.country",
        expect=rows([1], [1], [3], [3]),
    ),
    C(
        "cte_named_governed",
        "WITH governed AS (SELECT 9 AS customer_id) SELECT customer_id FROM crm.customers",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "cte_named_source_schema",
        'WITH "federation_test" AS (SELECT 9 AS x) SELECT customer_id FROM crm.customers',
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "cte_named_customers_join_visits",
        "WITH customers AS (SELECT * FROM crm.customers) SELECT * FROM customers c "
        "JOIN crm.visits v ON v.customer_id = c.customer_id",
        must_refuse=True,
    ),
    C(
        "cte_and_other_schema",
        "WITH x AS (SELECT * FROM crm.customers) SELECT * FROM x WHERE x.customer_id IN "
        "(SELECT customer_id FROM federation_test.customers)",
    ),
    C(
        "cte_materialized_side_channel",
        "WITH x AS MATERIALIZED (SELECT * FROM crm.customers) SELECT count(*) FROM x "
        "WHERE 1 / (CASE WHEN customer_id = 2 THEN 0 ELSE 1 END) = 1",
        expect=rows([2]),
    ),
    C(
        "nested_with",
        "SELECT * FROM (WITH x AS (SELECT * FROM crm.customers) SELECT * FROM x) s",
    ),
    C("cte_masked_plain", "WITH x AS (SELECT email AS e FROM crm.customers) SELECT e FROM x"),
    C(
        "cte_masked_computed",
        "WITH x AS (SELECT email AS e FROM crm.customers) SELECT upper(e) FROM x",
    ),
    C(
        "cte_shadows_product_in_body",
        "WITH input_0 AS (SELECT * FROM sales.orders) SELECT order_id FROM input_0",
        expect=BELGIAN_ORDERS,
    ),
]

CORRELATED = [
    C(
        "correlated_max",
        "SELECT customer_id, (SELECT max(o.amount) FROM sales.orders o WHERE o.country = "
        "c.country) "
        "AS top FROM crm.customers c",
        expect=rows([1, 30.0], [3, 30.0]),
    ),
    C(
        "correlated_on_email",
        "SELECT c.customer_id FROM crm.customers c WHERE (SELECT count(*) FROM sales.orders o "
        "WHERE o.email = c.email) > 0",
    ),
    C("scalar_subquery_email", "SELECT (SELECT email FROM crm.customers LIMIT 1) AS e"),
    C(
        "in_hidden_orders",
        "SELECT c.customer_id FROM crm.customers c WHERE c.customer_id IN "
        "(SELECT o.order_id FROM sales.orders o WHERE o.country = 'NL')",
        expect=rows(),
    ),
    C("scalar_count", "SELECT (SELECT count(*) FROM crm.customers) AS n", expect=rows([2])),
    C(
        "correlated_count",
        "SELECT c.customer_id, (SELECT count(*) FROM crm.customers d "
        "WHERE d.customer_id > c.customer_id) AS later FROM crm.customers c",
        expect=rows([1, 1], [3, 0]),
    ),
    C(
        "compare_to_max",
        "SELECT c.customer_id FROM crm.customers c WHERE c.customer_id < "
        "(SELECT max(o.order_id) FROM sales.orders o)",
        expect=rows([1]),
    ),
    C(
        "correlated_visits",
        "SELECT (SELECT max(v.pages) FROM crm.visits v WHERE v.customer_id = c.customer_id) "
        "FROM crm.customers c",
        must_refuse=True,
    ),
    C(
        "correlated_iban_compare",
        "SELECT c.customer_id FROM crm.customers c WHERE (SELECT o.iban FROM sales.orders o "
        "WHERE o.order_id = c.customer_id) = 'BE01'",
    ),
    C(
        "correlated_email_selected",
        "SELECT c.customer_id, (SELECT o.email FROM sales.orders o WHERE o.order_id = "
        "c.customer_id) "
        "AS e FROM crm.customers c",
    ),
    C(
        "correlated_hidden_count",
        "SELECT count(*) AS n FROM sales.orders o WHERE (SELECT count(*) FROM crm.customers c "
        "WHERE c.customer_id = o.order_id + 1) > 0",
        expect=rows([0]),
    ),
]

EXISTS_IN = [
    C(
        "exists_hidden_id",
        "SELECT 1 AS x FROM crm.customers WHERE EXISTS (SELECT 1 FROM crm.customers "
        "WHERE customer_id = 2)",
        expect=rows(),
    ),
    C(
        "exists_hidden_country",
        "SELECT count(*) FROM sales.orders WHERE EXISTS (SELECT 1 FROM crm.customers c "
        "WHERE c.country = 'NL')",
        expect=rows([0]),
    ),
    C(
        "in_visits",
        "SELECT count(*) FROM crm.customers WHERE customer_id IN (SELECT customer_id FROM "
        "crm.visits)",
        must_refuse=True,
    ),
    C(
        "literal_in_email",
        "SELECT count(*) FROM crm.customers WHERE 'ann@x' IN (SELECT email FROM crm.customers)",
    ),
    C(
        "hidden_country_in",
        "SELECT count(*) FROM crm.customers WHERE 'FR' IN (SELECT country FROM sales.orders)",
        expect=rows([0]),
    ),
    C(
        "not_exists_anti",
        "SELECT count(*) FROM crm.customers c WHERE NOT EXISTS (SELECT 1 FROM sales.orders o "
        "WHERE o.order_id = c.customer_id)",
        expect=rows([0]),
    ),
    C(
        "exists_visits",
        "SELECT count(*) FROM crm.customers WHERE EXISTS (SELECT 1 FROM crm.visits)",
        must_refuse=True,
    ),
    C(
        "any_subquery",
        "SELECT count(*) FROM crm.customers WHERE customer_id = ANY (SELECT order_id FROM "
        "sales.orders WHERE amount > 15)",
        expect=rows([1]),
    ),
    C(
        "not_in_ids",
        "SELECT count(*) FROM sales.orders WHERE order_id NOT IN (SELECT customer_id FROM "
        "crm.customers)",
        expect=rows([0]),
    ),
    C(
        "in_masked_subquery",
        "SELECT count(*) FROM crm.customers WHERE email IN (SELECT email FROM sales.orders)",
    ),
    C(
        "exists_iban",
        "SELECT count(*) FROM crm.customers WHERE EXISTS (SELECT 1 FROM sales.orders o "
        "WHERE o.iban = 'FR04')",
    ),
    C(
        "exists_hidden_amount",
        "SELECT count(*) FROM crm.customers WHERE EXISTS (SELECT 1 FROM sales.orders o "
        "WHERE o.amount = 40.0)",
        expect=rows([0]),
    ),
]

COMMENTS = [
    C(
        "line_comment_second_statement",
        "SELECT customer_id FROM crm.customers -- ; SELECT * FROM federation_test.customers",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "block_comment",
        "SELECT customer_id FROM crm.customers /* */ WHERE country = 'BE'",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "nested_block_comment",
        "SELECT customer_id FROM crm.customers /* /* nested */ WHERE customer_id = 2 */",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "nested_comment_hides_where",
        # Nested: the first */ closes the inner comment, "--" means nothing inside a
        # comment, and the last */ closes the outer one: all of it is a comment.
        "SELECT customer_id FROM crm.customers /* /* */ WHERE customer_id = 2 -- */",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "comment_hides_product",
        "SELECT customer_id FROM /* crm.customers */ federation_test.customers",
    ),
    C(
        "comment_hides_email",
        "SELECT customer_id /*, email */ FROM crm.customers",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "comment_after_quote",
        "SELECT customer_id FROM crm.customers WHERE country = 'BE' --' OR 1=1",
        expect=BELGIAN_CUSTOMERS,
    ),
    C("comment_in_dotted_name", "SELECT customer_id FROM crm./**/customers"),
    C(
        "comment_then_drop",
        "SELECT customer_id FROM crm.customers /* */; DROP TABLE federation_test.customers",
    ),
    C(
        "comment_or_hidden",
        "SELECT customer_id FROM crm.customers WHERE 1=1 /* */ OR country = 'NL'",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "line_comment_then_union",
        "SELECT customer_id FROM crm.customers -- x\nUNION SELECT customer_id FROM "
        "federation_test.customers",
    ),
    C("unterminated_comment", "SELECT customer_id FROM crm.customers /* unterminated"),
    C(
        "mysql_comment",
        "/*! SELECT * FROM federation_test.customers */ SELECT customer_id FROM crm.customers",
        expect=BELGIAN_CUSTOMERS,
    ),
    C("extra_comment_end", "SELECT customer_id FROM crm.customers /* */ */ SELECT 1"),
    C("comments_around_masked", "SELECT /* */ email /* */ FROM /* */ crm.customers"),
    C(
        "comment_hides_quote",
        "SELECT customer_id FROM crm.customers WHERE segment = '/*' OR segment = '*/'",
        expect=rows(),
    ),
]

QUOTING = [
    C("quoted_key", 'SELECT customer_id FROM "crm"."customers"', expect=BELGIAN_CUSTOMERS),
    C("quoted_upper_domain", 'SELECT * FROM "CRM"."customers"'),
    C("quoted_upper_both", 'SELECT * FROM "CRM"."CUSTOMERS"'),
    C("mixed_case_key", "SELECT * FROM Crm.Customers"),
    C("upper_key", "SELECT * FROM CRM.CUSTOMERS"),
    C("quoted_upper_column", 'SELECT "EMAIL" FROM crm.customers'),
    C("quoted_mixed_column", 'SELECT "Email" FROM crm.customers'),
    C("unquoted_mixed_column", "SELECT Email FROM crm.customers"),
    C("dotted_quoted_name", 'SELECT * FROM "crm.customers"'),
    C("quoted_port_in_name", 'SELECT * FROM crm."customers.visits"'),
    C("visits_aliased_customers", "SELECT * FROM crm.visits AS customers", must_refuse=True),
    C("quoted_visits", 'SELECT * FROM "crm"."visits"', must_refuse=True),
    C("upper_visits", "SELECT * FROM CRM.VISITS", must_refuse=True),
    C(
        "alias_named_visits",
        'SELECT customer_id FROM "crm"."customers" "crm.visits"',
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "quoted_alias_column",
        'SELECT "customers"."customer_id" FROM crm.customers',
        expect=BELGIAN_CUSTOMERS,
    ),
    C("column_with_schema", 'SELECT "crm"."customers"."customer_id" FROM crm.customers'),
    C("column_with_schema_email", "SELECT crm.customers.email FROM crm.customers"),
    C(
        "quoted_alias",
        'SELECT c."customer_id" FROM "crm"."customers" AS "c"',
        expect=BELGIAN_CUSTOMERS,
    ),
    C("quoted_wrong_case_column", 'SELECT "Customer_Id" FROM crm.customers'),
    C("spaced_dots", 'SELECT customer_id FROM "crm" . "customers"', expect=BELGIAN_CUSTOMERS),
    C("quoted_orders", 'SELECT order_id FROM "sales"."orders"', expect=BELGIAN_ORDERS),
    C("zero_width_name", 'SELECT * FROM "crm"."customers\u200b"'),
    C("cyrillic_domain", 'SELECT * FROM "\u0441rm"."customers"'),
    C("quote_in_alias", 'SELECT x."customer_id" FROM crm.customers AS "x"" FROM crm.visits --"'),
]

CATALOGS = [
    C("pg_tables", "SELECT * FROM pg_catalog.pg_tables"),
    C("pg_tables_bare", "SELECT * FROM pg_tables"),
    C("information_schema_columns", "SELECT * FROM information_schema.columns"),
    C("information_schema_tables", "SELECT table_name FROM information_schema.tables"),
    C("pg_user", "SELECT * FROM pg_catalog.pg_user"),
    C("pg_shadow", "SELECT usename, passwd FROM pg_shadow"),
    C("pg_stat_activity", "SELECT query FROM pg_catalog.pg_stat_activity"),
    C("pg_class", "SELECT relname FROM pg_catalog.pg_class"),
    C(
        "pg_stats_values",
        "SELECT most_common_vals FROM pg_catalog.pg_stats WHERE tablename = 'customers'",
    ),
    C("pg_statistic", "SELECT * FROM pg_catalog.pg_statistic"),
    C("join_pg_roles", "SELECT * FROM crm.customers, pg_catalog.pg_roles"),
    C(
        "join_information_schema",
        "SELECT * FROM crm.customers c JOIN information_schema.tables t ON true",
    ),
    C("subquery_pg_class", "SELECT (SELECT count(*) FROM pg_catalog.pg_class) FROM crm.customers"),
    C("duckdb_tables_fn", "SELECT * FROM duckdb_tables()"),
    C("duckdb_settings_fn", "SELECT * FROM duckdb_settings()"),
    C("sqlite_master", "SELECT * FROM sqlite_master"),
    C("information_schema_schemata", "SELECT * FROM information_schema.schemata"),
    C("duckdb_input_view", "SELECT * FROM input_0"),
    C("duckdb_input_view_quoted", 'SELECT * FROM "input_0"'),
    C("duckdb_input_table", "SELECT * FROM input_1"),
    C("duckdb_main_input", "SELECT * FROM main.input_0"),
    C("duckdb_memory_main_input", "SELECT * FROM memory.main.input_0"),
    C("duckdb_temp_input", "SELECT * FROM temp.main.input_0"),
    C("duckdb_arrow_input", "SELECT * FROM arrow_input"),
    C(
        "join_duckdb_input",
        "SELECT o.order_id FROM sales.orders o JOIN memory.main.input_0 r ON true",
    ),
    C("pg_catalog_as_product", "SELECT * FROM pg_catalog.customers"),
]

OTHER_SCHEMAS = [
    C("source_schema_table", "SELECT * FROM federation_test.customers"),
    C("source_schema_quoted", 'SELECT * FROM "federation_test"."customers"'),
    C("source_schema_visits", "SELECT * FROM federation_test.visits"),
    C("public_auth_user", "SELECT * FROM public.auth_user"),
    C("public_sessions", "SELECT * FROM public.django_session"),
    C("bare_auth_user", "SELECT * FROM auth_user"),
    C("quoted_public_auth_user", 'SELECT * FROM "public"."auth_user"'),
    C("catalog_qualified_auth_user", "SELECT * FROM test_portal_helper_a.public.auth_user"),
    C("source_schema_as_port", "SELECT * FROM federation_test.customers.customers"),
    C(
        "join_source_schema",
        "SELECT c.customer_id FROM crm.customers c JOIN federation_test.customers f "
        "ON f.customer_id = c.customer_id",
    ),
    C(
        "union_source_schema",
        "SELECT customer_id FROM crm.customers UNION ALL SELECT customer_id FROM "
        "federation_test.customers",
    ),
    C(
        "in_source_schema",
        "SELECT * FROM crm.customers WHERE customer_id IN (SELECT customer_id FROM "
        "federation_test.customers)",
    ),
    C("portal_queries_table", "SELECT * FROM public.sharing_federatedquery"),
    C("portal_grants_table", "SELECT * FROM public.sharing_accessgrant"),
    C("unknown_product", "SELECT * FROM crm.customers_raw"),
    C("unknown_orders_product", "SELECT * FROM sales.orders_parquet"),
]

TABLE_FUNCTIONS = [
    C("read_parquet", "SELECT * FROM read_parquet('matrix/orders.parquet')"),
    C("read_csv", "SELECT * FROM read_csv('/etc/passwd')"),
    C("read_csv_auto", "SELECT * FROM read_csv_auto('/etc/passwd')"),
    C("generate_series", "SELECT * FROM generate_series(1, 3)"),
    C("glob", "SELECT * FROM glob('*')"),
    C("read_text", "SELECT * FROM read_text('/etc/passwd')"),
    C("file_as_table", "SELECT * FROM 'matrix/orders.parquet'"),
    C("unnest_table", "SELECT * FROM unnest(ARRAY[1, 2])"),
    C("parquet_scan", "SELECT * FROM parquet_scan('matrix/orders.parquet')"),
    C("read_json", "SELECT * FROM read_json('/etc/passwd')"),
    C("duckdb_query_fn", "SELECT * FROM query('SELECT * FROM input_0')"),
    C("duckdb_query_table_fn", "SELECT * FROM query_table('input_0')"),
    C("product_join_series", "SELECT * FROM crm.customers, generate_series(1, 2)"),
    C(
        "lateral_series",
        "SELECT * FROM crm.customers c CROSS JOIN LATERAL generate_series(1, c.customer_id) g",
    ),
    C("json_each", "SELECT * FROM json_each('{}')"),
    C("pg_ls_dir_table", "SELECT * FROM pg_ls_dir('.')"),
    C("dblink_table", "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(a int)"),
    C("series_in_select", "SELECT generate_series(1, 3)"),
    C(
        "cte_named_like_file",
        'WITH "matrix/orders.parquet" AS (SELECT order_id FROM sales.orders) '
        "SELECT order_id FROM 'matrix/orders.parquet'",
        expect=BELGIAN_ORDERS,
    ),
    C("product_and_file", "SELECT * FROM sales.orders o, 'matrix/orders.parquet' f"),
    C("rows_from", "SELECT * FROM crm.customers c, ROWS FROM (generate_series(1, 2)) g"),
    C("parquet_metadata", "SELECT * FROM parquet_metadata('matrix/orders.parquet')"),
]

SERVER_FUNCTIONS = [
    C("pg_read_file", "SELECT pg_read_file('/etc/passwd')"),
    C("pg_read_binary_file", "SELECT pg_read_binary_file('/etc/passwd')"),
    C("pg_ls_dir", "SELECT pg_ls_dir('.')"),
    C("current_setting", "SELECT current_setting('data_directory')"),
    C(
        "current_setting_with_rows",
        "SELECT customer_id, current_setting('is_superuser') FROM crm.customers",
    ),
    C("set_config", "SELECT set_config('search_path', 'federation_test', false)"),
    C(
        "set_config_with_rows",
        "SELECT set_config('search_path', 'federation_test', false), * FROM crm.customers",
    ),
    C("dblink", "SELECT dblink('dbname=postgres', 'SELECT 1')"),
    C("lo_import", "SELECT lo_import('/etc/passwd')"),
    C("lo_export", "SELECT lo_export(1, '/tmp/x')"),
    C(
        "query_to_xml",
        "SELECT query_to_xml('SELECT * FROM federation_test.customers', true, true, '')",
    ),
    C(
        "query_to_xml_with_rows",
        "SELECT count(*) FROM crm.customers WHERE query_to_xml('SELECT 1', true, true, '') IS NOT "
        "NULL",
    ),
    C("version", "SELECT version()"),
    C("pg_sleep", "SELECT pg_sleep(1)"),
    C("pg_sleep_in_where", "SELECT customer_id FROM crm.customers WHERE pg_sleep(0.1) IS NULL"),
    C("current_user", "SELECT current_user, customer_id FROM crm.customers"),
    C("session_user", "SELECT session_user, customer_id FROM crm.customers"),
    C("current_database", "SELECT current_database(), customer_id FROM crm.customers"),
    C("inet_server_addr", "SELECT inet_server_addr()"),
    C("pg_backend_pid", "SELECT pg_backend_pid()"),
    C("txid_current", "SELECT txid_current()"),
    C("bare_user", "SELECT user, customer_id FROM crm.customers"),
    C("current_schema", "SELECT current_schema, customer_id FROM crm.customers"),
    C("schema_qualified_function", "SELECT pg_catalog.pg_read_file('x')"),
    C("quoted_function_name", "SELECT \"pg_read_file\"('x')"),
    C("duckdb_getvariable", "SELECT getvariable('x'), order_id FROM sales.orders"),
    C("duckdb_getenv", "SELECT getenv('HOME'), order_id FROM sales.orders"),
    C(
        "duckdb_current_setting",
        "SELECT current_setting('allowed_paths'), order_id FROM sales.orders",
    ),
    C("nextval", "SELECT nextval('x')"),
    C("pg_terminate_backend", "SELECT pg_terminate_backend(1)"),
    C("pg_reload_conf", "SELECT pg_reload_conf()"),
    C("has_table_privilege", "SELECT has_table_privilege('federation_test.customers', 'select')"),
    C("to_regclass", "SELECT to_regclass('federation_test.customers')"),
    C("pg_relation_size", "SELECT pg_relation_size('federation_test.customers')"),
    C("pg_stat_live_tuples", "SELECT pg_stat_get_live_tuples(1)"),
    C("xpath", "SELECT xpath('/a', '<a/>')"),
    C(
        "current_setting_missing_ok",
        "SELECT customer_id FROM crm.customers WHERE current_setting('x', true) IS NULL",
    ),
    C("pg_stat_file", "SELECT pg_stat_file('/etc/passwd')"),
    C(
        "now_is_fine",
        "SELECT customer_id FROM crm.customers WHERE now() IS NOT NULL",
        expect=BELGIAN_CUSTOMERS,
    ),
]

WRITES = [
    C("insert", "INSERT INTO crm.customers VALUES (9, 'BE', 'x', 'y')"),
    C("insert_select", "INSERT INTO federation_test.customers SELECT * FROM crm.customers"),
    C("update", "UPDATE crm.customers SET email = 'x'"),
    C("delete", "DELETE FROM crm.customers WHERE true"),
    C("create_table_as", "CREATE TABLE t AS SELECT * FROM crm.customers"),
    C("create_view", "CREATE VIEW v AS SELECT * FROM federation_test.customers"),
    C("drop_product", "DROP TABLE crm.customers"),
    C("drop_source_table", "DROP TABLE federation_test.customers"),
    C("truncate", "TRUNCATE federation_test.customers"),
    C("copy_to_file", "COPY federation_test.customers TO '/tmp/x'"),
    C("copy_to_program", "COPY (SELECT 1) TO PROGRAM 'id'"),
    C("set_search_path", "SET search_path = federation_test"),
    C("set_role", "SET ROLE postgres"),
    C("reset_all", "RESET ALL"),
    C("select_then_drop", "SELECT 1 FROM crm.customers; DROP TABLE federation_test.customers"),
    C(
        "two_selects",
        "SELECT customer_id FROM crm.customers; SELECT * FROM federation_test.customers",
    ),
    C("select_into", "SELECT * INTO newtable FROM crm.customers"),
    C("for_update", "SELECT * FROM crm.customers FOR UPDATE"),
    C("for_share", "SELECT customer_id FROM crm.customers FOR SHARE"),
    C(
        "writable_cte",
        "WITH d AS (DELETE FROM federation_test.customers RETURNING *) SELECT * FROM d",
    ),
    C(
        "writable_cte_update",
        "WITH u AS (UPDATE crm.customers SET segment = 'x' RETURNING customer_id) "
        "SELECT * FROM crm.customers",
    ),
    C("explain_analyze", "EXPLAIN ANALYZE SELECT * FROM crm.customers"),
    C("grant", "GRANT ALL ON federation_test.customers TO PUBLIC"),
    C("alter_table", "ALTER TABLE federation_test.customers ADD COLUMN x int"),
    C("vacuum", "VACUUM"),
    C("lock_table", "LOCK TABLE federation_test.customers"),
    C("prepare", "PREPARE p AS SELECT 1"),
    C("do_block", "DO $$ BEGIN PERFORM 1; END $$"),
    C("call", "CALL p()"),
    C("transaction", "BEGIN; SELECT 1 FROM crm.customers; COMMIT"),
    C("duckdb_attach", "ATTACH '/tmp/x.db' AS x"),
    C("duckdb_install", "INSTALL httpfs"),
    C("duckdb_load", "LOAD httpfs"),
    C("duckdb_pragma", "PRAGMA database_list"),
    C(
        "merge",
        "MERGE INTO crm.customers c USING sales.orders o ON o.order_id = c.customer_id "
        "WHEN MATCHED THEN DELETE",
    ),
    C("trailing_semicolons", "SELECT customer_id FROM crm.customers;;;", expect=BELGIAN_CUSTOMERS),
    C("empty_statement_between", "SELECT customer_id FROM crm.customers ; ; SELECT 1"),
    C("select_then_set", "SELECT customer_id FROM crm.customers; SET statement_timeout = 0"),
]

# Each must run and answer the Belgian rows only: the condition divides by zero (or fails
# a cast) only on a row outside the grant, which the governed relation never lets it see.
SIDE_CHANNELS = [
    C(
        "pg_div_zero_where",
        "SELECT count(*) FROM crm.customers WHERE 1 / (CASE WHEN customer_id = 2 THEN 0 ELSE 1 "
        "END) = 1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "pg_div_zero_country",
        "SELECT count(*) FROM crm.customers WHERE 1 / (CASE WHEN country = 'FR' THEN 0 ELSE 1 "
        "END) = 1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "pg_failed_cast_where",
        "SELECT count(*) FROM crm.customers "
        "WHERE CAST(CASE WHEN country = 'NL' THEN country ELSE '1' END AS INT) = 1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "pg_div_zero_select",
        "SELECT 1 / (CASE WHEN customer_id = 2 THEN 0 ELSE 1 END) AS x FROM crm.customers",
        expect=rows([1], [1]),
        must_run=True,
    ),
    C(
        "pg_div_zero_join",
        "SELECT count(*) FROM crm.customers a JOIN crm.customers b "
        "ON 1 / (CASE WHEN b.customer_id = 4 THEN 0 ELSE 1 END) = 1",
        expect=rows([4]),
        must_run=True,
    ),
    C(
        "pg_div_zero_subquery",
        "SELECT count(*) FROM (SELECT * FROM crm.customers) s "
        "WHERE 1 / (CASE WHEN s.customer_id = 2 THEN 0 ELSE 1 END) = 1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "pg_div_zero_cte",
        "WITH s AS (SELECT * FROM crm.customers) SELECT count(*) FROM s "
        "WHERE 1 / (CASE WHEN customer_id = 4 THEN 0 ELSE 1 END) = 1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "pg_div_zero_having",
        "SELECT country, count(*) AS n FROM crm.customers GROUP BY country "
        "HAVING sum(1 / (CASE WHEN customer_id = 4 THEN 0 ELSE 1 END)) > 0",
        expect=rows(["BE", 2]),
        must_run=True,
    ),
    C(
        "pg_div_zero_exists",
        "SELECT count(*) FROM crm.customers c WHERE EXISTS (SELECT 1 FROM crm.customers d "
        "WHERE 1 / (CASE WHEN d.customer_id = 2 THEN 0 ELSE 1 END) = 1)",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "pg_div_zero_in",
        "SELECT count(*) FROM crm.customers WHERE customer_id IN (SELECT customer_id FROM "
        "crm.customers WHERE 1 / (CASE WHEN customer_id = 2 THEN 0 ELSE 1 END) = 1)",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "pg_div_zero_derived_select",
        "SELECT count(*) FROM (SELECT customer_id, 1 / (CASE WHEN customer_id = 2 THEN 0 ELSE 1 "
        "END) "
        "AS x FROM crm.customers) s",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "pg_div_zero_window",
        "SELECT count(*) FROM (SELECT sum(1 / (CASE WHEN customer_id = 2 THEN 0 ELSE 1 END)) "
        "OVER () AS x FROM crm.customers) s",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "pg_div_zero_order_by",
        "SELECT customer_id FROM crm.customers ORDER BY 1 / (CASE WHEN customer_id = 2 THEN 0 "
        "ELSE 1 END)",
        expect=BELGIAN_CUSTOMERS,
        must_run=True,
    ),
    C(
        "pg_sqrt_negative",
        "SELECT count(*) FROM crm.customers WHERE sqrt(CASE WHEN customer_id = 4 THEN -1 ELSE 1 "
        "END) = 1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "pg_ln_zero",
        "SELECT count(*) FROM crm.customers WHERE ln(CASE WHEN country = 'NL' THEN 0 ELSE 1 END) "
        "= 0",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "parquet_div_zero_where",
        "SELECT count(*) FROM sales.orders WHERE 1 / (CASE WHEN order_id = 2 THEN 0 ELSE 1 END) = "
        "1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "parquet_failed_cast_where",
        "SELECT count(*) FROM sales.orders "
        "WHERE CAST(CASE WHEN order_id = 2 THEN 'boom' ELSE '1' END AS INT) = 1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "parquet_failed_cast_country",
        "SELECT count(*) FROM sales.orders "
        "WHERE CAST(CASE WHEN country = 'FR' THEN country ELSE '1' END AS INT) = 1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "parquet_failed_cast_select",
        "SELECT CAST(CASE WHEN order_id = 4 THEN 'boom' ELSE '1' END AS INT) AS x FROM "
        "sales.orders",
        expect=rows([1], [1]),
        must_run=True,
    ),
    C(
        "parquet_sqrt_negative",
        "SELECT count(*) FROM sales.orders WHERE sqrt(CASE WHEN order_id = 4 THEN -1 ELSE 1 END) "
        "= 1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "parquet_failed_cast_subquery",
        "SELECT count(*) FROM (SELECT * FROM sales.orders) s "
        "WHERE CAST(CASE WHEN s.amount = 20.0 THEN 'boom' ELSE '1' END AS INT) = 1",
        expect=rows([2]),
        must_run=True,
    ),
    C(
        "parquet_failed_cast_join",
        "SELECT count(*) FROM sales.orders a JOIN sales.orders b "
        "ON CAST(CASE WHEN b.order_id = 2 THEN 'boom' ELSE '1' END AS INT) = 1",
        expect=rows([4]),
        must_run=True,
    ),
    C(
        "federated_pg_div_zero_pushed",
        "SELECT count(*) FROM crm.customers c JOIN sales.orders o ON o.country = c.country "
        "WHERE 1 / (CASE WHEN c.customer_id = 2 THEN 0 ELSE 1 END) = 1",
        expect=rows([4]),
        must_run=True,
    ),
    C(
        "federated_pg_failed_cast_pushed",
        "SELECT count(*) FROM crm.customers c JOIN sales.orders o ON o.country = c.country "
        "WHERE CAST(CASE WHEN c.country = 'NL' THEN c.country ELSE '1' END AS INT) = 1",
        expect=rows([4]),
        must_run=True,
    ),
    C(
        "federated_parquet_failed_cast",
        "SELECT count(*) FROM crm.customers c JOIN sales.orders o ON o.country = c.country "
        "WHERE CAST(CASE WHEN o.order_id = 4 THEN 'boom' ELSE '1' END AS INT) = 1",
        expect=rows([4]),
        must_run=True,
    ),
    C(
        "federated_pg_in_join_condition",
        "SELECT count(*) FROM sales.orders o JOIN crm.customers c "
        "ON 1 / (CASE WHEN c.customer_id = 4 THEN 0 ELSE 1 END) = 1",
        expect=rows([4]),
        must_run=True,
    ),
]

CAST_TRICKS = [
    C("regclass_literal", "SELECT 'federation_test.customers'::regclass"),
    C("regclass_column", "SELECT customer_id::regclass FROM crm.customers"),
    C("regproc_literal", "SELECT 'pg_read_file'::regproc"),
    C("oid_cast", "SELECT customer_id::oid FROM crm.customers"),
    C("email_text_array", "SELECT email::text[] FROM crm.customers"),
    C("segment_text_array", "SELECT segment::text[] FROM crm.customers"),
    C("array_of_email", "SELECT ARRAY[email] FROM crm.customers"),
    C("json_cast", "SELECT segment::json FROM crm.customers"),
    C("xml_cast", "SELECT segment::xml FROM crm.customers"),
    C("composite_cast", "SELECT CAST(ROW(1, 'BE', 'x', 'y') AS federation_test.customers)"),
    C("schema_qualified_type", "SELECT customer_id::pg_catalog.text FROM crm.customers"),
    C("bit_cast", "SELECT customer_id::bit(8) FROM crm.customers"),
    C("regclass_to_text", "SELECT 1::regclass::text"),
    C("cast_as_regclass", "SELECT CAST(customer_id AS regclass) FROM crm.customers"),
    C("regclass_oid", "SELECT 'federation_test.customers'::regclass::oid"),
    C("cast_to_table_type", "SELECT country::federation_test.customers FROM crm.customers"),
    C("tsvector_cast", "SELECT segment::tsvector FROM crm.customers"),
    C("range_cast", "SELECT '[1,2]'::int4range"),
    C("regtype_cast", "SELECT 'int4'::regtype"),
    C("regnamespace_cast", "SELECT 'federation_test'::regnamespace"),
    C("typed_literal_regclass", "SELECT regclass 'federation_test.customers'"),
    C(
        "id_as_text",
        "SELECT customer_id::text AS customer_id FROM crm.customers",
        expect=rows(["1"], ["3"]),
    ),
]

UNICODE_ESCAPES = [
    C("unicode_string", r"SELECT U&'\0061nn@x'"),
    C(
        "unicode_string_filter",
        r"SELECT customer_id FROM crm.customers WHERE country = U&'\004E\004C'",
    ),
    C("unicode_identifiers", r'SELECT * FROM U&"crm".U&"customers"'),
    C("unicode_escaped_domain", r'SELECT * FROM U&"\0063rm".customers'),
    C("unicode_marker_alias", r'SELECT * FROM crm.customers AS U&"\005f_portal_ref_0__"'),
    C(
        "unicode_uescape",
        r"SELECT customer_id FROM crm.customers WHERE segment = U&'!0072etail' UESCAPE '!'",
    ),
    C("unicode_source_schema", r'SELECT * FROM U&"federation_test".customers'),
    C("backslash_u_plain_string", r"SELECT '\u0061nn@x' AS s FROM crm.customers"),
    C(
        "unicode_email_column",
        r"""SELECT U&"\0065mail" FROM crm.customers WHERE U&"\0065mail" LIKE 'a%'""",
    ),
]

DOLLAR_QUOTING = [
    C("dollar_string", "SELECT $$ann@x$$ AS s, customer_id FROM crm.customers"),
    C("dollar_filter", "SELECT customer_id FROM crm.customers WHERE country = $$NL$$"),
    C("dollar_tag", "SELECT $tag$x$tag$ FROM crm.customers"),
    C(
        "dollar_injection",
        "SELECT customer_id FROM crm.customers WHERE segment = "
        "$$'; SELECT * FROM federation_test.customers; --$$",
    ),
    C("dollar_nested", "SELECT $q$ $$ $q$ AS s FROM crm.customers"),
    C("dollar_unterminated", "SELECT $$ FROM crm.customers"),
    C("positional_parameter", "SELECT $1"),
    C("parameter_in_where", "SELECT customer_id FROM crm.customers WHERE customer_id = $1"),
    C("pyformat_parameter", "SELECT customer_id FROM crm.customers WHERE country = %(x)s"),
    C("qmark_parameter", "SELECT customer_id FROM crm.customers WHERE country = ?"),
]

ESCAPE_STRINGS = [
    C("e_string", r"SELECT E'\x41'"),
    C("e_string_filter", r"SELECT customer_id FROM crm.customers WHERE country = E'N\x4c'"),
    C("e_string_quote", r"SELECT E'\'' FROM crm.customers"),
    C(
        "e_string_injection",
        r"SELECT customer_id FROM crm.customers WHERE segment = E'\' OR 1=1 --'",
    ),
    C(
        "backslash_plain_string",
        r"SELECT 'a\' AS s, customer_id FROM crm.customers",
        expect=rows(["a\\", 1], ["a\\", 3]),
    ),
    C(
        "backslash_then_union",
        r"SELECT 'x\' UNION SELECT email FROM federation_test.customers --' AS x FROM "
        r"crm.customers",
    ),
    C(
        "backslash_then_visits",
        r"SELECT 'x\' AS y, customer_id FROM crm.customers UNION ALL SELECT 'z', customer_id FROM "
        r"crm.visits --'",
        must_refuse=True,
    ),
    C("e_string_double_backslash", r"SELECT e'\\' FROM crm.customers"),
    C("bit_string", "SELECT B'101'"),
    C("hex_string", "SELECT X'41' FROM crm.customers"),
    C("national_string", "SELECT N'ann' AS s, customer_id FROM crm.customers"),
    C(
        "doubled_quote_string",
        "SELECT 'it''s' AS s, customer_id FROM crm.customers",
        expect=rows(["it's", 1], ["it's", 3]),
    ),
]

LATERAL_VALUES_SAMPLE = [
    C(
        "lateral_subquery",
        "SELECT c.customer_id, o.order_id FROM crm.customers c, LATERAL (SELECT order_id FROM "
        "sales.orders o WHERE o.country = c.country) o",
    ),
    C("lateral_email", "SELECT * FROM crm.customers c CROSS JOIN LATERAL (SELECT c.email) x"),
    C("values_from", "SELECT * FROM (VALUES (1, 'ann@x')) v(id, e)"),
    C(
        "values_join_email",
        "SELECT * FROM crm.customers c JOIN (VALUES ('ann@x')) v(e) ON v.e = c.email",
    ),
    C("values_statement", "VALUES (1)"),
    C(
        "values_in_cte",
        "WITH v(e) AS (VALUES ('ann@x')) SELECT count(*) FROM crm.customers c JOIN v ON v.e = "
        "c.email",
    ),
    C("tablesample_system", "SELECT * FROM crm.customers TABLESAMPLE SYSTEM (100)"),
    C(
        "tablesample_bernoulli",
        "SELECT * FROM crm.customers TABLESAMPLE BERNOULLI (100) REPEATABLE (1)",
    ),
    C("duckdb_using_sample", "SELECT * FROM sales.orders USING SAMPLE 100%"),
    C("aliased_tablesample", "SELECT * FROM crm.customers c TABLESAMPLE SYSTEM (100)"),
    C("only_table", "SELECT * FROM ONLY crm.customers"),
    C("column_aliases", "SELECT a, b FROM crm.customers c(a, b, e, s)"),
    C("column_aliases_filter_email", "SELECT * FROM crm.customers c(a, b, e, s) WHERE e LIKE 'a%'"),
    C("column_aliases_order_email", "SELECT e FROM crm.customers c(a, b, e, s) ORDER BY e"),
    C(
        "column_aliases_swap",
        "SELECT email FROM crm.customers c(email, customer_id) ORDER BY email",
    ),
]

PORTS = [
    C("port_of_other_product", "SELECT * FROM crm.customers.visits", must_refuse=True),
    C(
        "default_port_named",
        "SELECT customer_id FROM crm.customers.customers",
        expect=BELGIAN_CUSTOMERS,
    ),
    C("visits_port_named", "SELECT * FROM crm.visits.visits", must_refuse=True),
    C("orders_port_named", "SELECT order_id FROM sales.orders.orders", expect=BELGIAN_ORDERS),
    C("unknown_port", "SELECT * FROM crm.customers.raw"),
    C("quoted_port_of_other", 'SELECT * FROM "crm"."customers"."visits"', must_refuse=True),
    C("four_part_name", "SELECT * FROM crm.customers.visits.extra"),
    C("port_named_like_schema", "SELECT * FROM crm.customers.federation_test"),
    C(
        "join_named_ports",
        "SELECT c.customer_id FROM crm.customers.customers c JOIN crm.customers.visits v ON true",
        must_refuse=True,
    ),
    C(
        "port_alias_default",
        "SELECT customers.customer_id FROM crm.customers.customers",
        expect=BELGIAN_CUSTOMERS,
    ),
]

VISITS = [
    C("visits_plain", "SELECT * FROM crm.visits"),
    C("visits_count", "SELECT count(*) FROM crm.visits"),
    C("visits_scalar_subquery", "SELECT (SELECT count(*) FROM crm.visits) AS n"),
    C("visits_derived_table", "SELECT * FROM (SELECT * FROM crm.visits) s"),
    C("visits_cte", "WITH v AS (SELECT * FROM crm.visits) SELECT * FROM v"),
    C("visits_exists", "SELECT 1 AS x FROM crm.customers WHERE EXISTS (SELECT 1 FROM crm.visits)"),
    C(
        "visits_in",
        "SELECT customer_id FROM crm.customers WHERE customer_id IN (SELECT customer_id FROM "
        "crm.visits)",
    ),
    C(
        "visits_join",
        "SELECT c.customer_id FROM crm.customers c JOIN crm.visits v ON v.customer_id = "
        "c.customer_id",
    ),
    C(
        "visits_left_join_false",
        "SELECT c.customer_id FROM crm.customers c LEFT JOIN crm.visits v ON false",
    ),
    C(
        "visits_union",
        "SELECT customer_id FROM crm.customers UNION SELECT customer_id FROM crm.visits",
    ),
    C(
        "visits_except",
        "SELECT customer_id FROM crm.customers EXCEPT SELECT customer_id FROM crm.visits",
    ),
    C(
        "visits_lateral",
        "SELECT c.customer_id FROM crm.customers c, LATERAL (SELECT pages FROM crm.visits v "
        "WHERE v.customer_id = c.customer_id) x",
    ),
    C(
        "visits_dead_branch",
        "SELECT customer_id FROM crm.customers WHERE false AND EXISTS (SELECT 1 FROM crm.visits)",
    ),
    C(
        "visits_all",
        "SELECT count(*) FROM crm.customers c WHERE c.customer_id > ALL (SELECT pages FROM "
        "crm.visits)",
    ),
    C("visits_where_false", "SELECT * FROM crm.visits WHERE false"),
    C("visits_limit_zero", "SELECT * FROM crm.visits LIMIT 0"),
    C(
        "visits_join_orders",
        "SELECT o.order_id FROM sales.orders o JOIN crm.visits v ON v.customer_id = o.order_id",
    ),
    C("visits_cross_join_count", "SELECT count(*) FROM crm.customers, crm.visits"),
]
VISITS = [Case(c.id, c.sql, must_refuse=True) for c in VISITS]

AGGREGATES = [
    C("count_distinct_email", "SELECT count(DISTINCT email) FROM crm.customers"),
    C("max_email", "SELECT max(email) FROM crm.customers"),
    C("min_iban", "SELECT min(iban) FROM sales.orders"),
    C("string_agg_email", "SELECT string_agg(email, ',') FROM crm.customers"),
    C("array_agg_iban", "SELECT array_agg(iban) FROM sales.orders"),
    C("count_email", "SELECT count(email) FROM crm.customers"),
    C("count_customers", "SELECT count(*) FROM crm.customers", expect=rows([2])),
    C("count_orders", "SELECT count(*) FROM sales.orders", expect=rows([2])),
    C("sum_amount", "SELECT sum(amount) FROM sales.orders", expect=rows([40.0])),
    C(
        "avg_max_min_amount",
        "SELECT avg(amount), max(amount), min(amount) FROM sales.orders",
        expect=rows([20.0, 30.0, 10.0]),
    ),
    C(
        "group_by_country",
        "SELECT country, count(*) FROM crm.customers GROUP BY country",
        expect=rows(["BE", 2]),
    ),
    C(
        "group_by_segment",
        "SELECT segment, count(*) FROM crm.customers GROUP BY segment",
        expect=rows(["pro", 1], ["retail", 1]),
    ),
    C("max_id", "SELECT max(customer_id) AS m FROM crm.customers", expect=rows([3])),
    C("count_star_and_email", "SELECT count(*), count(email) FROM crm.customers"),
    C("mode_email", "SELECT mode() WITHIN GROUP (ORDER BY email) FROM crm.customers"),
    C(
        "percentile_iban",
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY iban) FROM sales.orders",
    ),
    C("bool_or_email", "SELECT bool_or(email = 'ann@x') FROM crm.customers"),
    C("json_agg_row", "SELECT json_agg(c) FROM crm.customers c"),
    C("having_max_email", "SELECT count(*) FROM crm.customers HAVING max(email) > 'a'"),
    C("group_by_iban", "SELECT count(*) FROM sales.orders GROUP BY iban"),
    C(
        "having_hidden_id",
        "SELECT count(*) AS n FROM crm.customers GROUP BY customer_id HAVING customer_id = 2",
        expect=rows(),
    ),
    C("sum_ids", "SELECT sum(customer_id) AS s FROM crm.customers", expect=rows([4])),
    C(
        "count_join",
        "SELECT count(*) FROM crm.customers c JOIN sales.orders o ON o.country = c.country",
        expect=rows([4]),
    ),
    C(
        "count_distinct_country",
        "SELECT count(DISTINCT country) AS n FROM sales.orders",
        expect=rows([1]),
    ),
    C("min_length_email", "SELECT min(length(email)) FROM crm.customers"),
    C("sum_length_iban", "SELECT sum(length(iban)) FROM sales.orders"),
    C(
        "grouping_sets",
        "SELECT country, count(*) FROM crm.customers GROUP BY GROUPING SETS ((country), (email))",
    ),
    C("rollup_email", "SELECT email, count(*) FROM crm.customers GROUP BY ROLLUP (email)"),
]

ORDINALS = [
    C("order_by_1_masked", "SELECT email FROM crm.customers ORDER BY 1"),
    C("order_by_alias_masked", "SELECT email AS e FROM crm.customers ORDER BY e"),
    C("order_by_2_desc_masked", "SELECT customer_id, email FROM crm.customers ORDER BY 2 DESC"),
    C("star_order_by_3", "SELECT * FROM crm.customers ORDER BY 3"),
    C("star_order_by_4_iban", "SELECT * FROM sales.orders ORDER BY 4"),
    C("group_by_1_masked", "SELECT email FROM crm.customers GROUP BY 1"),
    C("group_by_1_count", "SELECT email, count(*) FROM crm.customers GROUP BY 1"),
    C("group_by_alias_iban", "SELECT iban AS i, count(*) FROM sales.orders GROUP BY i"),
    C("order_by_email_nulls_first", "SELECT email FROM crm.customers ORDER BY email NULLS FIRST"),
    C("order_by_unselected_email", "SELECT customer_id FROM crm.customers ORDER BY email"),
    C("order_by_length_email", "SELECT customer_id FROM crm.customers ORDER BY length(email)"),
    C("distinct_on_email", "SELECT DISTINCT ON (email) customer_id FROM crm.customers"),
    C("order_by_parenthesised_one", "SELECT email FROM crm.customers ORDER BY (1)"),
    C("derived_order_by_1", "SELECT * FROM (SELECT email AS e FROM crm.customers) s ORDER BY 1"),
    C("group_by_1_2", "SELECT email, customer_id FROM crm.customers GROUP BY 1, 2"),
    C(
        "order_by_1_allowed",
        "SELECT customer_id, email FROM crm.customers ORDER BY 1",
        expect=rows([1, "****"], [3, None]),
    ),
    C("alias_shadows_masked", "SELECT customer_id AS email FROM crm.customers ORDER BY email"),
    C("masked_alias_of_id", "SELECT email AS customer_id FROM crm.customers ORDER BY customer_id"),
    C("offset_masked", "SELECT email FROM crm.customers LIMIT 1 OFFSET 1"),
    C("distinct_masked", "SELECT DISTINCT email FROM crm.customers"),
    C(
        "union_order_by_2",
        "SELECT customer_id, email FROM crm.customers UNION SELECT 9, 'x' ORDER BY 2",
    ),
    C(
        "order_by_ordinal_window",
        "SELECT email, row_number() OVER (ORDER BY customer_id) FROM crm.customers ORDER BY 1",
    ),
]

MISCELLANEOUS = [
    C("whole_row", "SELECT c FROM crm.customers c"),
    C("table_star", "SELECT c.* FROM crm.customers c"),
    C("field_access", "SELECT (c).email FROM crm.customers c"),
    C("system_columns", "SELECT ctid, xmin FROM crm.customers"),
    C("tableoid", "SELECT tableoid FROM crm.customers"),
    C("whole_row_compare", "SELECT customer_id FROM crm.customers WHERE customers = customers"),
    C(
        "whole_row_not_null",
        "SELECT count(*) FROM crm.customers c WHERE c IS NOT NULL",
        expect=rows([1]),  # customer 3's email is NULL (shown as NULL to the grantee too)
    ),
    C("product_name_as_column", "SELECT customers FROM crm.customers"),
    C(
        "derived_column_alias_masked",
        "SELECT e FROM (SELECT email FROM crm.customers) AS s(e) WHERE e LIKE 'a%'",
        expect=rows(),
    ),
    C("collate_email", "SELECT customer_id FROM crm.customers WHERE email COLLATE \"C\" = 'x'"),
    C(
        "limit_offset_zero",
        "SELECT customer_id FROM crm.customers LIMIT 2 OFFSET 0",
        expect=BELGIAN_CUSTOMERS,
    ),
    C("limit_all", "SELECT customer_id FROM crm.customers LIMIT ALL"),
    C(
        "fetch_first",
        "SELECT customer_id FROM crm.customers FETCH FIRST 10 ROWS ONLY",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "or_hidden_ids",
        "SELECT customer_id FROM crm.customers WHERE customer_id = 2 OR customer_id = 4",
        expect=rows(),
    ),
    C("marker_alias", 'SELECT * FROM crm.customers AS "__portal_ref_0__"'),
    C("marker_string", "SELECT '__portal_ref_0__' AS x FROM crm.customers"),
    C("marker_upper", 'SELECT "__PORTAL_REF_0__".customer_id FROM crm.customers'),
    C("marker_cte", 'WITH "__portal_ref_1__" AS (SELECT 1) SELECT * FROM crm.customers'),
    C(
        "union_two_filters",
        "SELECT customer_id FROM crm.customers c WHERE c.customer_id = 1 UNION "
        "SELECT customer_id FROM crm.customers WHERE customer_id = 2",
        expect=rows([1]),
    ),
    C(
        "three_way_cross",
        "SELECT count(*) FROM crm.customers c1, crm.customers c2, crm.customers c3",
        expect=rows([8]),
    ),
    C(
        "too_many_references",
        "SELECT count(*) FROM " + ", ".join(f"crm.customers c{i}" for i in range(21)),
    ),
    C("very_long", "SELECT customer_id FROM crm.customers WHERE " + " OR ".join(["true"] * 30_000)),
    C("nul_character", "SELECT customer_id FROM crm.customers WHERE segment = 'a\x00b'"),
    C(
        "alias_governed",
        "SELECT customer_id FROM crm.customers AS governed",
        expect=BELGIAN_CUSTOMERS,
    ),
    C(
        "alias_capped_result",
        "SELECT customer_id FROM crm.customers AS capped_result",
        expect=BELGIAN_CUSTOMERS,
    ),
    C("deep_nesting", "SELECT " + "(" * 300 + "customer_id" + ")" * 300 + " FROM crm.customers"),
    C("empty", "   "),
    C("only_comment", "-- SELECT * FROM crm.customers"),
    C(
        "star_everything",
        "SELECT * FROM crm.customers c JOIN sales.orders o ON o.country = c.country",
    ),
    C("array_subscript", "SELECT (ARRAY[email])[1] FROM crm.customers"),
    C("at_time_zone", "SELECT now() AT TIME ZONE 'UTC', customer_id FROM crm.customers"),
    C("bitwise_and", "SELECT customer_id & 1 FROM crm.customers"),
    C("json_arrow", "SELECT segment::json -> 'a' FROM crm.customers"),
]

CORPUS: dict[str, list[Case]] = {
    "functions": FUNCTIONS,
    "casts": CASTS,
    "concatenation": CONCATENATION,
    "case": CASE_EXPRESSIONS,
    "coalesce": COALESCE,
    "like": LIKE,
    "comparisons": COMPARISONS,
    "joins": JOINS,
    "windows": WINDOWS,
    "set_operations": SET_OPERATIONS,
    "ctes": CTES,
    "correlated": CORRELATED,
    "exists_in": EXISTS_IN,
    "comments": COMMENTS,
    "quoting": QUOTING,
    "catalogs": CATALOGS,
    "other_schemas": OTHER_SCHEMAS,
    "table_functions": TABLE_FUNCTIONS,
    "server_functions": SERVER_FUNCTIONS,
    "writes": WRITES,
    "side_channels": SIDE_CHANNELS,
    "cast_tricks": CAST_TRICKS,
    "unicode_escapes": UNICODE_ESCAPES,
    "dollar_quoting": DOLLAR_QUOTING,
    "escape_strings": ESCAPE_STRINGS,
    "lateral_values_sample": LATERAL_VALUES_SAMPLE,
    "ports": PORTS,
    "visits": VISITS,
    "aggregates": AGGREGATES,
    "ordinals": ORDINALS,
    "miscellaneous": MISCELLANEOUS,
}
