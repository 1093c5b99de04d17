"""Row filters in words (sharing.access.filters.filter_in_words), as every page shows
them, and the filter builder's configuration; awkward values included."""

import json
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from django.template import Context, Template

from sharing.access.filters import (
    Clause,
    filter_builder_config,
    filter_in_words,
    filter_phrases,
    parse_filter,
)


@pytest.mark.parametrize(
    ("row_filter", "words"),
    [
        (None, ""),
        ([], ""),
        ("", ""),
        ([{"column": "country", "op": "in", "value": ["BE", "NL"]}], "country is BE or NL"),
        ([{"column": "country", "op": "in", "value": ["BE"]}], "country is BE"),
        (
            [{"column": "country", "op": "in", "value": ["BE", "NL", "FR"]}],
            "country is BE, NL or FR",
        ),
        ([{"column": "country", "op": "not in", "value": ["BE"]}], "country is not BE"),
        (
            [{"column": "country", "op": "not in", "value": ["BE", "NL"]}],
            "country is neither BE nor NL",
        ),
        (
            [{"column": "country", "op": "not in", "value": ["BE", "NL", "FR"]}],
            "country is none of BE, NL or FR",
        ),
        ([{"column": "amount", "op": ">=", "value": 10}], "amount is at least 10"),
        ([{"column": "amount", "op": "<", "value": 2.5}], "amount is less than 2.5"),
        ([{"column": "amount", "op": "<=", "value": 10.0}], "amount is at most 10"),
        ([{"column": "amount", "op": "<=", "value": 1e20}], "amount is at most 1e+20"),
        ([{"column": "amount", "op": "!=", "value": -3}], "amount is not -3"),
        ([{"column": "email", "op": "is null"}], "email has no value"),
        ([{"column": "email", "op": "is not null", "value": "ignored"}], "email has a value"),
        ([{"column": "paid", "op": "=", "value": True}], "paid is true"),
        ([{"column": "paid", "op": "=", "value": False}], "paid is false"),
        ([{"column": "day", "op": ">", "value": "2024-01-31"}], "day is more than 2024-01-31"),
        # Text that would blur the sentence is quoted: empty, spaces, commas, joining words.
        ([{"column": "name", "op": "=", "value": ""}], "name is “”"),
        ([{"column": "name", "op": "=", "value": " BE"}], "name is “ BE”"),
        (
            [{"column": "name", "op": "in", "value": ["Smith, J", "Bread and butter"]}],
            "name is “Smith, J” or “Bread and butter”",
        ),
        ([{"column": "name", "op": "=", "value": 'say "hi"'}], 'name is “say "hi"”'),
        ([{"column": "name", "op": "=", "value": "O'Brien"}], "name is O'Brien"),
        # Text that looks like a number stays as written.
        ([{"column": "zip", "op": "=", "value": "0123"}], "zip is 0123"),
        # A >= then a <= on one column: a range, as the builder writes "between".
        (
            [
                {"column": "amount", "op": ">=", "value": 10},
                {"column": "amount", "op": "<=", "value": 20},
            ],
            "amount is between 10 and 20",
        ),
        # Several conditions: joined with "and".
        (
            [
                {"column": "country", "op": "in", "value": ["BE", "NL"]},
                {"column": "amount", "op": ">=", "value": 10},
                {"column": "email", "op": "is null"},
            ],
            "country is BE or NL and amount is at least 10 and email has no value",
        ),
        # Not a range: other columns, or the bounds the other way round.
        (
            [
                {"column": "amount", "op": "<=", "value": 20},
                {"column": "amount", "op": ">=", "value": 10},
            ],
            "amount is at most 20 and amount is at least 10",
        ),
        (
            [
                {"column": "a", "op": ">=", "value": 1},
                {"column": "b", "op": "<=", "value": 2},
            ],
            "a is at least 1 and b is at most 2",
        ),
        # JSON text, as stored by older rows or typed in a form.
        ('[{"column": "country", "op": "=", "value": "BE"}]', "country is BE"),
    ],
)
def test_filter_in_words(row_filter, words):
    assert filter_in_words(row_filter) == words


def test_typed_values_read_as_written():
    clauses = [
        Clause("day", "=", date(2024, 2, 29)),
        Clause("at", ">=", datetime(2024, 2, 29, 13, 5)),
        Clause("opens", "<", time(9, 30)),
        Clause("price", "=", Decimal("12.50")),
        Clause("big", "in", (2**63 - 1, Decimal("1E+3"))),
    ]
    assert filter_phrases(tuple(clauses)) == filter_phrases(clauses)  # a decision's tuple
    assert filter_phrases(clauses) == [
        "day is 2024-02-29",
        "at is at least 2024-02-29T13:05:00",
        "opens is less than 09:30:00",
        "price is 12.50",
        "big is 9223372036854775807 or 1000",
    ]


def test_long_text_is_cut_and_a_broken_filter_is_shown_as_given():
    long = "x" * 100
    assert filter_in_words([{"column": "c", "op": "=", "value": long}]) == f"c is {'x' * 60}…"
    assert filter_in_words("not json") == "not json"
    assert filter_in_words([{"column": "c", "op": "~", "value": 1}]) == (
        '[{"column": "c", "op": "~", "value": 1}]'
    )


def test_the_template_filter_reads_a_stored_filter():
    template = Template("{% load filter_tags %}Rows where {{ grant.row_filter|filter_in_words }}.")
    stored = [{"column": "country", "op": "in", "value": ["BE", "<NL>"]}]
    html = template.render(Context({"grant": {"row_filter": stored}}))
    assert html == "Rows where country is BE or &lt;NL&gt;."  # escaped like any text
    assert (
        Template("{% load filter_tags %}[{{ f|filter_in_words }}]").render(Context({"f": None}))
        == "[]"
    )


def test_messages_name_the_condition_in_words():
    with pytest.raises(ValueError, match=r"Condition 2 \(country is one of\) takes a list"):
        parse_filter(
            [
                {"column": "amount", "op": ">", "value": 1},
                {"column": "country", "op": "in", "value": []},
            ]
        )
    with pytest.raises(ValueError, match=r"Condition 1 \(amount is at least\) takes one value"):
        parse_filter([{"column": "amount", "op": ">=", "value": None}])


def test_builder_config_offers_operators_by_column_type():
    config = json.loads(
        filter_builder_config(
            {"amount": "numeric(12,2)", "country": "text", "day": "date", "paid": "boolean"},
            values_url="/values/",
        )
    )
    ops = {column["name"]: column["ops"] for column in config["columns"]}
    kinds = {column["name"]: column["kind"] for column in config["columns"]}
    assert kinds == {"amount": "number", "country": "text", "day": "date", "paid": "boolean"}
    assert "between" in ops["amount"] and "between" in ops["day"]
    assert "between" not in ops["country"] and ops["country"][:4] == ["=", "!=", "in", "not in"]
    assert ops["paid"] == ["=", "!=", "is null", "is not null"]
    assert config["valuesUrl"] == "/values/"
    assert config["words"]["in"] == "is one of" and config["words"]["between"] == "is between"
    # Every operator the builder writes (between as >= and <=) is one the parser reads.
    for column in config["columns"]:
        for op in column["ops"]:
            written = [">=", "<="] if op == "between" else [op]
            for each in written:
                value = [] if each in ("is null", "is not null") else 1
                value = [1] if each in ("in", "not in") else value
                assert parse_filter([{"column": column["name"], "op": each, "value": value}])
