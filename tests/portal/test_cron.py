"""Cron expressions people type: a wrong one is refused with the field that is wrong and
what it accepts, in words, never the parser's own text."""

import pytest

from portal.core.cron import cron_next_runs, cron_parse


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("61 * * * *", "The minute field '61' is not valid: use 0 to 59"),
        ("0 25 * * *", "The hour field '25' is not valid: use 0 to 23"),
        ("0 6 32 * *", "The day of month field '32' is not valid: use 1 to 31"),
        ("0 6 * 13 *", "The month field '13' is not valid: use 1 to 12"),
        ("0 6 * * funday", "The day of week field 'funday' is not valid"),
        ("0 6 * *", "Write 5 fields"),
        ("", "Write 5 fields"),
    ],
)
def test_a_wrong_expression_names_its_field_in_words(expression, words):
    with pytest.raises(ValueError) as caught:
        cron_parse(expression)
    message = str(caught.value)
    assert words in message
    assert "Invalid" not in message and ">" not in message


@pytest.mark.parametrize(
    "expression", ["0 6 * * *", "*/15 * * * *", "0 6 * * mon-fri", "0 0 1 1 *"]
)
def test_good_expressions_parse_and_fire(expression):
    cron_parse(expression)
    assert len(cron_next_runs(expression, count=2)) == 2
