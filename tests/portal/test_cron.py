"""Cron expressions people type: in words (cron_describe), the common shapes people
schedule checks and exports with read as a sentence, anything else shown as written; and
a wrong one refused (cron_parse) with the field that is wrong and what it accepts, in
words, never the parser's own text."""

import pytest

from portal.core.cron import cron_describe, cron_next_runs, cron_parse


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("* * * * *", "every minute"),
        ("*/15 * * * *", "every 15 minutes"),
        ("0 * * * *", "every hour"),
        ("15 * * * *", "every hour at 15 minutes past"),
        ("1 * * * *", "every hour at 1 minute past"),
        ("0 */6 * * *", "every 6 hours"),
        ("5 */2 * * *", "every 2 hours, at 5 minutes past"),
        ("0 6 * * *", "every day at 06:00 UTC"),
        ("30 7 * * 1-5", "every weekday at 07:30 UTC"),
        ("30 7 * * mon-fri", "every weekday at 07:30 UTC"),
        ("0 6,18 * * *", "every day at 06:00 and 18:00 UTC"),
        ("0 6 * * 1", "every Monday at 06:00 UTC"),
        ("0 6 * * mon,thu", "every Monday and Thursday at 06:00 UTC"),
        ("0 9 * * 1,3,5", "every Monday, Wednesday and Friday at 09:00 UTC"),
        ("0 6 * * 0,6", "every Saturday and Sunday at 06:00 UTC"),
        ("0 1 * * sun", "every Sunday at 01:00 UTC"),
        ("0 6 * * 0-6", "every day at 06:00 UTC"),
        ("0 6 1 * *", "on the 1st of every month at 06:00 UTC"),
        ("0 0 15,1 * *", "on the 1st and 15th of every month at 00:00 UTC"),
        ("0 0 22 * *", "on the 22nd of every month at 00:00 UTC"),
        ("0 0 11 * *", "on the 11th of every month at 00:00 UTC"),
    ],
)
def test_common_shapes_read_as_a_sentence(expression, words):
    assert cron_describe(expression) == words
    cron_next_runs(expression)  # and each is a schedule the portal accepts


def test_the_time_zone_is_the_schedules_own():
    assert cron_describe("0 6 * * *", tz="Europe/Brussels") == "every day at 06:00 Europe/Brussels"


@pytest.mark.parametrize(
    "expression",
    [
        "0 6-9 * * *",  # a range of hours
        "0 6 * 1 *",  # January only
        "0 6 1 * 1",  # day of month or day of week: cron fires on either
        "*/15 * * * 1-5",  # a repetition on some days only
        "0 23 * * 5-1",  # a range that wraps
        "0 6 L * *",  # not cron as the portal reads it
        "61 * * * *",
        "0 6 * *",  # four fields
        "",
    ],
)
def test_other_shapes_are_shown_as_written(expression):
    assert cron_describe(expression) == expression


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
