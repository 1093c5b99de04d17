"""The feedback response objective: business-day arithmetic, overdue threads in the
trust score's support component (with their evidence), the median time to first
response on the product page and in the API, and the objective on the edit form and
the API."""

from datetime import UTC, datetime, timedelta

import pytest

from products.feedback.services.feedback import (
    business_days_late,
    feedback_comment_create,
    feedback_overdue,
    feedback_status_change,
    feedback_summary,
    feedback_thread_create,
    response_due_date,
)
from products.models import FeedbackThread
from products.trust.services.trust_score import trust_score_compute, trust_score_latest
from tests.factories import UserFactory
from tests.products.feedback.helpers import login, product_url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def at(days: float = 0, hours: float = 0) -> datetime:
    return MONDAY + timedelta(days=days, hours=hours)


def thread_opened(product, by, when: datetime, title="Question", **fields) -> FeedbackThread:
    thread = feedback_thread_create(
        product=product, by=by, kind=fields.pop("kind", "question"), title=title, body="Why?"
    )
    FeedbackThread.objects.filter(pk=thread.pk).update(created_at=when, last_activity_at=when)
    thread.refresh_from_db()
    return thread


def answer(thread, by, when: datetime, body="Because."):
    comment = feedback_comment_create(thread=thread, by=by, body=body)
    FeedbackThread.objects.filter(pk=thread.pk).update(first_response_at=when)
    return comment


# --- business days --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opened", "days", "due"),
    [
        (at(), 3, "2026-03-05"),  # Monday + 3 -> Thursday
        (at(days=3), 3, "2026-03-10"),  # Thursday + 3 -> next Tuesday
        (at(days=5), 3, "2026-03-12"),  # Saturday counts from Monday -> Thursday
        (at(days=6, hours=13), 1, "2026-03-10"),  # Sunday 23:00 -> Tuesday
        (at(), 10, "2026-03-16"),  # two weeks
    ],
)
def test_the_due_date_skips_weekends(opened, days, due):
    assert response_due_date(opened_at=opened, days=days).isoformat() == due


@pytest.mark.parametrize(
    ("now", "late"),
    [
        (at(days=3, hours=13.9), 0),  # Thursday 23:54: still in time
        (at(days=4), 1),  # Friday
        (at(days=5), 1),  # Saturday: no business day added
        (at(days=6, hours=13), 1),  # Sunday night
        (at(days=7), 2),  # Monday
        (at(days=11), 6),  # the Friday after
    ],
)
def test_lateness_counts_business_days_after_the_due_date(now, late):
    assert business_days_late(opened_at=at(), days=3, now=now) == late


# --- the trust score's support component -----------------------------------------------------


def test_an_overdue_unanswered_thread_lowers_support_with_its_evidence(product, owner, outsider):
    overdue = thread_opened(product, outsider, at(), title="Where is March?")
    thread_opened(product, outsider, at(days=3), title="Recent")  # due next Tuesday
    answered = thread_opened(product, outsider, at(), title="Answered late but answered")
    answer(answered, owner, at(days=6))
    closed = thread_opened(product, outsider, at(), title="Declined without a reply")
    feedback_status_change(thread=closed, by=owner, status="declined", note="Out of scope.")
    withdrawn = thread_opened(product, outsider, at(), title="Withdrawn")
    feedback_status_change(thread=withdrawn, by=outsider, status="withdrawn")
    thread_opened(product, outsider, at(), title="Thanks!", kind="praise")  # needs no answer

    # Monday a week later: the first thread is 2 business days late (Friday, Monday).
    score = trust_score_compute(product=product, now=at(days=7, hours=2))
    assert score.support == 100 - 10 - 2
    support = score.evidence["support"]
    assert support["feedback_response_days"] == 3
    assert support["most_overdue_business_days"] == 2
    assert support["overdue_threads"] == [
        {
            "id": overdue.pk,
            "title": "Where is March?",
            "kind": "question",
            "status": "open",
            "opened_at": at().isoformat(),
            "due_date": "2026-03-05",
            "business_days_overdue": 2,
        }
    ]
    assert (
        "1 feedback thread unanswered past the 3-business-day response objective"
        in (support["note"])
    )

    # A week later still, the recent one is overdue too, and both are later.
    later = trust_score_compute(product=product, now=at(days=14, hours=2))
    rows = later.evidence["support"]["overdue_threads"]
    assert [(row["title"], row["business_days_overdue"]) for row in rows] == [
        ("Where is March?", 7),
        ("Recent", 4),
    ]
    assert later.support == 100 - 2 * 10 - 7


def test_a_longer_objective_makes_the_same_thread_in_time(product, outsider):
    thread_opened(product, outsider, at())
    product.feedback_response_days = 10
    product.save()
    score = trust_score_compute(product=product, now=at(days=7))
    assert score.support == 100.0
    assert score.evidence["support"]["overdue_threads"] == []
    assert "feedback answered within the response objective" in score.evidence["support"]["note"]


def test_only_an_answer_by_the_owning_domain_stops_the_clock(product, owner, member, outsider):
    thread = thread_opened(product, outsider, at())
    feedback_comment_create(thread=thread, by=outsider, body="Any news?")  # the author
    feedback_comment_create(thread=thread, by=UserFactory(username="peer"), body="+1")
    assert [row["id"] for row in feedback_overdue(product=product, now=at(days=8))] == [thread.pk]
    # Acknowledging without a word is not an answer; a note with it is.
    feedback_status_change(thread=thread, by=owner, status="acknowledged")
    assert feedback_overdue(product=product, now=at(days=8)) != []
    feedback_comment_create(thread=thread, by=member, body="On it.")
    assert feedback_overdue(product=product, now=at(days=8)) == []


@pytest.mark.usefixtures("eager_tasks")
def test_answering_an_overdue_thread_raises_the_score_once_it_commits(
    product, owner, outsider, django_capture_on_commit_callbacks
):
    thread = thread_opened(product, outsider, datetime.now(UTC) - timedelta(days=20))
    before = trust_score_compute(product=product)
    assert before.support < 100
    with django_capture_on_commit_callbacks(execute=True):
        feedback_comment_create(thread=thread, by=owner, body="Sorry for the wait: fixed.")
    latest = trust_score_latest(product=product)
    assert latest.pk != before.pk and latest.support == 100.0


# --- median time to first response -----------------------------------------------------------


def test_median_first_response_on_the_page_and_in_the_api(
    client, api_client, product, owner, outsider, django_assert_max_num_queries
):
    now = datetime.now(UTC)
    for hours in (2, 4, 30):
        thread = thread_opened(product, outsider, now - timedelta(days=5), title=f"{hours} h")
        answer(thread, owner, now - timedelta(days=5) + timedelta(hours=hours))
    old = thread_opened(product, outsider, now - timedelta(days=200), title="Last year")
    answer(old, owner, now - timedelta(days=150))  # outside the 90-day window
    thread_opened(product, outsider, now - timedelta(days=1), title="Waiting")

    summary = feedback_summary(product=product)
    assert summary.median_first_response_hours == 4.0
    assert (summary.responded, summary.unresolved, summary.overdue) == (3, 5, 0)

    login(client, outsider)
    page = client.get(product.get_absolute_url()).content.decode()
    assert "Median first response" in page and "4 hours" in page
    assert "3 business days" in page
    tab = client.get(product_url("feedback-list", product)).content.decode()
    assert "4 hours" in tab

    api_client.force_authenticate(outsider)
    with django_assert_max_num_queries(5):  # user, product (+2), threads
        data = api_client.get(f"/api/v1/products/{product.key}/feedback/summary/").json()
    assert data == {
        "product": product.key,
        "response_days": 3,
        "median_first_response_hours": 4.0,
        "responded": 3,
        "unresolved": 5,
        "overdue": [],
    }


def test_no_answers_yet_says_so(client, product, outsider):
    login(client, outsider)
    assert "no answers yet" in client.get(product.get_absolute_url()).content.decode()
    assert feedback_summary(product=product).median_first_response_hours is None


# --- setting the objective -----------------------------------------------------------------


def test_owners_set_the_objective_on_the_edit_form_and_in_the_api(
    client, api_client, product, owner
):
    login(client, owner)
    form = client.get(product_url("product-edit", product)).content.decode()
    assert 'name="feedback_response_days"' in form and 'value="3"' in form
    data = {
        "name": product.name,
        "summary": product.summary,
        "description": product.description,
        "audience": "internal",
        "version": "1.0.0",
        "check_schedule": "0 * * * *",
        "owners": [owner.pk],
        "feedback_response_days": "0",
    }
    bad = client.post(product_url("product-edit", product), data)
    assert bad.status_code == 400 and b"greater than or equal to 1" in bad.content
    ok = client.post(product_url("product-edit", product), {**data, "feedback_response_days": 5})
    assert ok.status_code == 302
    product.refresh_from_db()
    assert product.feedback_response_days == 5

    api_client.force_authenticate(owner)
    url = f"/api/v1/products/{product.key}/"
    assert api_client.get(url).json()["feedback_response_days"] == 5
    too_long = api_client.patch(url, {"feedback_response_days": 31}, format="json")
    assert too_long.status_code == 400 and "feedback_response_days" in too_long.json()
    changed = api_client.patch(url, {"feedback_response_days": 2}, format="json")
    assert changed.status_code == 200 and changed.json()["feedback_response_days"] == 2
