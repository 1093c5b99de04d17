"""Feedback threads: opening, replying, status changes and incident links through the
pages, the API and the services; who may do what; bad input (empty or oversized bodies,
replies to closed threads, unsafe Markdown); notifications to the right people exactly
once; query counts of the list pages."""

import pytest
from django.core import mail
from django.urls import reverse

from portal.models import Notification
from products.choices import FeedbackKind, FeedbackStatus, LifecycleStatus
from products.feedback.services.feedback import (
    MAX_BODY_LENGTH,
    feedback_comment_create,
    feedback_status_change,
    feedback_thread_create,
)
from products.feedback.tasks import feedback_notify
from products.models import FeedbackComment, FeedbackStatusChange, FeedbackThread
from products.trust.services.incidents import incident_open
from tests.factories import ProductFactory, UserFactory
from tests.products.feedback.helpers import login, product_url, thread_url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def open_thread(product, by, **fields):
    values = {
        "kind": FeedbackKind.QUESTION,
        "title": "Why negative amounts?",
        "body": "See row 12.",
    }
    return feedback_thread_create(product=product, by=by, **{**values, **fields})


def notified(key_prefix: str) -> list[tuple[str, str]]:
    return sorted(
        Notification.objects.filter(key__startswith=key_prefix).values_list("user__username", "key")
    )


# --- opening a thread --------------------------------------------------------------------


def test_a_signed_in_user_opens_a_thread_and_the_team_is_told_once(
    client,
    product,
    owner,
    steward,
    member,
    outsider,
    eager_tasks,
    django_capture_on_commit_callbacks,
):
    login(client, outsider)
    page = client.get(product_url("feedback-create", product) + "?kind=issue")
    assert page.status_code == 200 and b'value="issue"' in page.content
    assert b"Linked incident" not in page.content  # only editors link incidents

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            product_url("feedback-create", product),
            {"kind": "issue", "title": "  Totals   look doubled ", "body": "Since **Monday**."},
        )
    thread = FeedbackThread.objects.get()
    assert response.status_code == 302 and response["Location"] == thread_url(thread)
    assert (thread.author, thread.kind, thread.title) == (outsider, "issue", "Totals look doubled")
    assert thread.status == FeedbackStatus.OPEN and thread.notified_at is not None
    assert len(callbacks) == 1

    # The domain's owner and steward (the product's owner is the owner): one each.
    key = f"feedback-thread:{thread.pk}"
    assert notified("feedback-thread:") == [("owner", key), ("steward", key)]
    assert sorted(m.to[0] for m in mail.outbox) == ["owner@example.com", "steward@example.com"]
    assert all(
        m.subject == "[sales.orders] New issue on Orders: Totals look doubled" for m in mail.outbox
    )
    assert thread_url(thread) in mail.outbox[0].body

    # The task delivered again: nothing more.
    feedback_notify("thread", thread.pk)
    feedback_notify.delay("thread", thread.pk)
    assert len(mail.outbox) == 2 and Notification.objects.count() == 2


def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    client, api_client, product, outsider
):
    login(client, outsider)
    create = product_url("feedback-create", product)
    for data, field_message in (
        ({"kind": "question", "title": "Q", "body": "   "}, b"Write something."),
        (
            {"kind": "question", "title": "Q", "body": "x" * (MAX_BODY_LENGTH + 1)},
            b"At most 20,000 characters",
        ),
        ({"kind": "question", "title": "", "body": "Hello"}, b"Give the thread a title"),
        ({"kind": "rant", "title": "Q", "body": "Hello"}, b"Select a valid choice"),
    ):
        response = client.post(create, data)
        assert response.status_code == 400, data
        assert field_message in response.content
    assert FeedbackThread.objects.count() == 0

    api_client.force_authenticate(outsider)
    api = f"/api/v1/products/{product.key}/feedback/"
    empty = api_client.post(api, {"kind": "question", "title": "Q", "body": ""}, format="json")
    assert empty.status_code == 400 and empty.json() == {"body": ["Write something."]}
    big = api_client.post(
        api, {"kind": "issue", "title": "Q", "body": "y" * (MAX_BODY_LENGTH + 1)}, format="json"
    )
    assert big.status_code == 400
    assert big.json()["body"] == ["At most 20,000 characters (this one has 20,001)."]
    unknown = api_client.post(
        api, {"kind": "praise", "title": "Q", "body": "ok", "x": 1}, format="json"
    )
    assert unknown.status_code == 400 and "x" in unknown.json()
    assert FeedbackThread.objects.count() == 0

    exact = api_client.post(
        api, {"kind": "praise", "title": "Q", "body": "z" * MAX_BODY_LENGTH}, format="json"
    )
    assert exact.status_code == 201 and FeedbackThread.objects.count() == 1


def test_a_hidden_product_takes_no_feedback(client, api_client, domain, outsider, member):
    draft = ProductFactory(domain=domain, status=LifecycleStatus.DRAFT)
    login(client, outsider)
    assert client.get(product_url("feedback-list", draft)).status_code == 404
    assert (
        client.post(product_url("feedback-create", draft), {"kind": "question"}).status_code == 404
    )
    api_client.force_authenticate(outsider)
    response = api_client.post(
        f"/api/v1/products/{draft.key}/feedback/",
        {"kind": "question", "title": "Q", "body": "B"},
        format="json",
    )
    assert response.status_code == 404
    # The domain's members see drafts, and may give feedback on them.
    thread = open_thread(draft, member)
    api_client.force_authenticate(outsider)
    assert api_client.get(f"/api/v1/feedback/{thread.pk}/").status_code == 404
    client.logout()
    assert client.get(product_url("feedback-list", draft)).status_code == 302  # sign in


# --- markdown ----------------------------------------------------------------------------


def test_markdown_with_scripts_handlers_and_javascript_links_is_rendered_harmless(
    client, api_client, product, outsider
):
    body = (
        "Hello **there**\n\n<script>alert('x')</script>\n\n"
        '<img src="x" onerror="alert(1)">\n\n[click](javascript:alert(2)) '
        '<a href="javascript:alert(3)" onclick="alert(4)">me</a>'
    )
    thread = open_thread(product, outsider, body=body)
    feedback_comment_create(thread=thread, by=outsider, body="<script>bad()</script> *fine*")
    login(client, outsider)
    html = client.get(thread_url(thread)).content.decode()
    assert "<strong>there</strong>" in html and "<em>fine</em>" in html
    for unsafe in ("<script>alert", "<script>bad", "onerror=", "onclick=", "javascript:"):
        assert unsafe not in html, unsafe
    api_client.force_authenticate(outsider)
    data = api_client.get(f"/api/v1/feedback/{thread.pk}/").json()
    assert data["body"] == body  # as written
    for part in (data["body_html"], data["comments"][0]["body_html"]):
        assert "<script" not in part and "onerror" not in part and "javascript:" not in part


# --- replies -----------------------------------------------------------------------------


def test_replies_notify_the_author_and_participants_once_never_the_replier(
    product, owner, steward, outsider, eager_tasks, django_capture_on_commit_callbacks
):
    other = UserFactory(username="other")
    with django_capture_on_commit_callbacks(execute=True):
        thread = open_thread(product, outsider)
    Notification.objects.all().delete()
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        first = feedback_comment_create(thread=thread, by=owner, body="Returns are negative.")
    assert notified("feedback-comment:") == [("outsider", f"feedback-comment:{first.pk}")]
    assert [m.to for m in mail.outbox] == [["outsider@example.com"]]
    assert (
        mail.outbox[0].subject.startswith("[sales.orders] ")
        and "replied to" in mail.outbox[0].subject
    )

    with django_capture_on_commit_callbacks(execute=True):
        second = feedback_comment_create(thread=thread, by=other, body="Same here.")
    assert sorted(
        Notification.objects.filter(key=f"feedback-comment:{second.pk}").values_list(
            "user__username", flat=True
        )
    ) == ["outsider", "owner"]  # the author and the earlier replier; not the steward
    feedback_notify("comment", second.pk)  # delivered twice
    assert Notification.objects.filter(key=f"feedback-comment:{second.pk}").count() == 2
    assert len(mail.outbox) == 3


def test_the_first_answer_by_the_domain_team_is_the_first_response(
    product, owner, member, outsider
):
    thread = open_thread(product, outsider)
    feedback_comment_create(thread=thread, by=outsider, body="More detail: row 12.")
    feedback_comment_create(thread=thread, by=UserFactory(), body="Me too.")
    thread.refresh_from_db()
    assert thread.first_response_at is None  # neither the author nor a bystander answers
    reply = feedback_comment_create(thread=thread, by=member, body="Looking.")
    thread.refresh_from_db()
    assert reply.by_team and thread.first_response_by == member
    assert thread.first_response_at == reply.created_at
    feedback_comment_create(thread=thread, by=owner, body="Fixed.")
    thread.refresh_from_db()
    assert thread.first_response_by == member  # the first one stays


def test_replying_to_a_closed_thread_reopens_it_only_for_its_author_or_an_owner(
    client, api_client, product, owner, outsider
):
    bystander = UserFactory(username="bystander")
    thread = open_thread(product, outsider)
    feedback_status_change(thread=thread, by=owner, status="resolved", note="Explained.")

    # A bystander: 403 on the page, with HTMX (the message in the block), and in the API.
    login(client, bystander)
    page = client.get(thread_url(thread))
    assert b"Only its author or the product's owners can reopen it" in page.content
    assert client.post(thread_url(thread, "reply"), {"body": "Still broken"}).status_code == 403
    htmx = client.post(
        thread_url(thread, "reply"), {"body": "Still broken"}, HTTP_HX_REQUEST="true"
    )
    assert htmx.status_code == 403 and b"Only its author or the product" in htmx.content
    api_client.force_authenticate(bystander)
    api = api_client.post(f"/api/v1/feedback/{thread.pk}/comments/", {"body": "x"}, format="json")
    assert api.status_code == 403 and "Only its author" in api.json()["detail"]
    thread.refresh_from_db()
    assert thread.status == FeedbackStatus.RESOLVED and FeedbackComment.objects.count() == 0

    # The author: the reply reopens it (recorded on the timeline).
    login(client, outsider)
    response = client.post(
        thread_url(thread, "reply"), {"body": "Still broken"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    thread.refresh_from_db()
    assert thread.status == FeedbackStatus.OPEN and thread.resolution_note == ""
    assert thread.status_changes.order_by("-pk").first().to_status == FeedbackStatus.OPEN

    # An owner reopens by replying too.
    feedback_status_change(thread=thread, by=owner, status="declined", note="Works as designed.")
    api_client.force_authenticate(owner)
    answer = api_client.post(
        f"/api/v1/feedback/{thread.pk}/comments/", {"body": "Reconsidering."}, format="json"
    )
    assert answer.status_code == 201 and answer.json()["status"] == "open"


def test_htmx_reply_swaps_the_conversation_and_an_empty_one_says_why(client, product, outsider):
    thread = open_thread(product, outsider)
    login(client, outsider)
    empty = client.post(thread_url(thread, "reply"), {"body": " "}, HTTP_HX_REQUEST="true")
    assert empty.status_code == 400 and b"Write a reply." in empty.content
    assert b"data-feedback-conversation" in empty.content and b"<html" not in empty.content
    too_long = client.post(
        thread_url(thread, "reply"), {"body": "x" * (MAX_BODY_LENGTH + 1)}, HTTP_HX_REQUEST="true"
    )
    assert too_long.status_code == 400 and b"At most 20,000 characters" in too_long.content
    ok = client.post(thread_url(thread, "reply"), {"body": "Row *12*"}, HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and b"<em>12</em>" in ok.content and "HX-Refresh" not in ok
    plain = client.post(thread_url(thread, "reply"), {"body": "Without JS"})
    comment = FeedbackComment.objects.order_by("-pk").first()
    assert plain.status_code == 302 and plain["Location"].endswith(f"#comment-{comment.pk}")
    assert FeedbackComment.objects.count() == 2


# --- status ------------------------------------------------------------------------------


def test_owners_and_stewards_change_the_status_with_a_note_others_cannot(
    client,
    api_client,
    product,
    owner,
    steward,
    member,
    outsider,
    eager_tasks,
    django_capture_on_commit_callbacks,
):
    thread = open_thread(product, outsider)
    feedback_comment_create(thread=thread, by=member, body="Forwarding to the owner.")
    api_client.force_authenticate(member)  # a member is not an editor
    refused = api_client.post(
        f"/api/v1/feedback/{thread.pk}/status/", {"status": "acknowledged"}, format="json"
    )
    assert refused.status_code == 403
    login(client, outsider)
    assert (
        client.post(thread_url(thread, "status"), {"status": "resolved", "note": "x"}).status_code
        == 403
    )

    login(client, owner)
    page = client.get(thread_url(thread))
    assert b"Change status" in page.content
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            client.post(thread_url(thread, "status"), {"status": "acknowledged"}).status_code == 302
        )
    change = FeedbackStatusChange.objects.get()
    assert sorted(
        Notification.objects.filter(key=f"feedback-status:{change.pk}").values_list(
            "user__username", flat=True
        )
    ) == ["member", "outsider"]  # the author and the replier; not the owner who did it
    assert len(mail.outbox) == 2 and "is acknowledged" in mail.outbox[0].subject

    no_note = client.post(thread_url(thread, "status"), {"status": "resolved", "note": ""})
    assert no_note.status_code == 400 and b"Say why the thread is resolved" in no_note.content
    again = client.post(thread_url(thread, "status"), {"status": "acknowledged"})
    assert again.status_code == 400 and b"acknowledged already" in again.content

    api_client.force_authenticate(steward)
    done = api_client.post(
        f"/api/v1/feedback/{thread.pk}/status/",
        {"status": "resolved", "note": "Returns are *negative* lines."},
        format="json",
    )
    assert done.status_code == 200
    data = done.json()
    assert data["status"] == "resolved" and data["resolution_note"].startswith("Returns")
    assert [c["to_status"] for c in data["status_changes"]] == ["acknowledged", "resolved"]
    thread.refresh_from_db()
    assert thread.closed_at is not None
    assert thread.first_response_by == member  # the member answered first
    bad = api_client.post(
        f"/api/v1/feedback/{thread.pk}/status/", {"status": "acknowledged"}, format="json"
    )
    assert bad.status_code == 400 and "cannot become acknowledged" in bad.json()["status"][0]


def test_the_author_may_withdraw_an_open_thread_nobody_else_can(
    api_client, product, owner, outsider
):
    thread = open_thread(product, outsider)
    api_client.force_authenticate(owner)
    response = api_client.post(
        f"/api/v1/feedback/{thread.pk}/status/", {"status": "withdrawn"}, format="json"
    )
    assert response.status_code == 403
    api_client.force_authenticate(outsider)
    response = api_client.post(
        f"/api/v1/feedback/{thread.pk}/status/",
        {"status": "withdrawn", "note": "Found it."},
        format="json",
    )
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    again = api_client.post(
        f"/api/v1/feedback/{thread.pk}/status/", {"status": "withdrawn"}, format="json"
    )
    assert again.status_code == 400
    resolve = api_client.post(
        f"/api/v1/feedback/{thread.pk}/status/", {"status": "resolved", "note": "x"}, format="json"
    )
    assert resolve.status_code == 403  # the author is not an editor


# --- incidents ---------------------------------------------------------------------------


def test_editors_link_an_issue_to_one_of_the_products_incidents(
    client, api_client, product, owner, outsider
):
    incident, _ = incident_open(
        product=product, cause="slo", cause_key="slo:1", title="Orders late"
    )
    elsewhere, _ = incident_open(
        product=ProductFactory(), cause="slo", cause_key="slo:2", title="Other product"
    )
    issue = open_thread(product, outsider, kind="issue")
    question = open_thread(product, outsider, kind="question", title="A question")

    api_client.force_authenticate(outsider)
    url = f"/api/v1/feedback/{issue.pk}/incident/"
    assert api_client.post(url, {"incident": incident.pk}, format="json").status_code == 403
    api_client.force_authenticate(owner)
    foreign = api_client.post(url, {"incident": elsewhere.pk}, format="json")
    assert foreign.status_code == 400 and "has no incident" in foreign.json()["incident"][0]
    not_issue = api_client.post(
        f"/api/v1/feedback/{question.pk}/incident/", {"incident": incident.pk}, format="json"
    )
    assert not_issue.status_code == 400
    assert not_issue.json() == {"incident": ["Only an issue can be linked to an incident."]}
    linked = api_client.post(url, {"incident": incident.pk}, format="json")
    assert linked.status_code == 200 and linked.json()["incident"] == incident.pk

    login(client, outsider)
    page = client.get(thread_url(issue))
    assert b"Linked to the incident" in page.content and b"Orders late" in page.content
    login(client, owner)
    assert client.post(thread_url(issue, "incident"), {"incident": ""}).status_code == 302
    issue.refresh_from_db()
    assert issue.incident is None
    # An editor may link one when opening an issue.
    created = api_client.post(
        f"/api/v1/products/{product.key}/feedback/",
        {"kind": "issue", "title": "Late", "body": "Since 6:00", "incident": incident.pk},
        format="json",
    )
    assert created.status_code == 201 and created.json()["incident"] == incident.pk


# --- lists -------------------------------------------------------------------------------


def test_the_feedback_tab_filters_and_its_query_count_is_pinned(
    client, product, owner, outsider, django_assert_max_num_queries
):
    open_thread(product, outsider, kind="issue", title="Broken totals")
    praise = open_thread(product, outsider, kind="praise", title="Great product")
    feedback_status_change(thread=praise, by=owner, status="resolved", note="Thanks!")
    login(client, outsider)
    url = product_url("feedback-list", product)
    page = client.get(url + "?kind=issue")
    assert b"Broken totals" in page.content and b"Great product" not in page.content
    page = client.get(url + "?status=resolved")
    assert b"Great product" in page.content and b"Broken totals" not in page.content
    assert b"No thread matches" in client.get(url + "?kind=request").content
    stale = client.get(url + "?kind=nonsense&status=whatever")  # ignored, not refused
    assert stale.status_code == 200 and b"Broken totals" in stale.content

    # Session, user, product (tags, owners), the editor check, trust badge, incident and
    # announcement banners, the feedback summary, the page of threads and its count; the
    # top bar's links by what the person can use (portal_display.main_nav).
    with django_assert_max_num_queries(13) as small:
        client.get(url)
    someone = UserFactory(username="someone")
    for n in range(15):
        thread = open_thread(product, someone, title=f"Thread {n}")
        feedback_comment_create(thread=thread, by=owner, body="Answer")
    with django_assert_max_num_queries(len(small)):
        assert client.get(url).status_code == 200


def test_feedback_api_list_filters_and_query_count(
    api_client, product, owner, outsider, django_assert_max_num_queries
):
    for n in range(3):
        open_thread(product, outsider, kind="issue", title=f"Issue {n}")
    open_thread(product, outsider, kind="praise", title="Nice")
    api_client.force_authenticate(outsider)
    url = f"/api/v1/products/{product.key}/feedback/"
    assert api_client.get(url, {"kind": "issue"}).json()["count"] == 3
    assert api_client.get(url, {"status": "unresolved"}).json()["count"] == 4
    bad = api_client.get(url, {"status": "sleeping"})
    assert bad.status_code == 400 and "status" in bad.json()
    with django_assert_max_num_queries(5) as small:  # user, product (+2), threads, count
        api_client.get(url)
    someone = UserFactory(username="someone")
    for n in range(10):
        open_thread(product, someone, title=f"More {n}")
    with django_assert_max_num_queries(len(small)):
        assert api_client.get(url).json()["count"] == 14


def test_my_feedback_lists_threads_i_opened_or_replied_to(
    client, product, owner, outsider, django_assert_max_num_queries
):
    mine = open_thread(product, outsider, title="Mine")
    replied = open_thread(product, owner, title="Owner's question")
    feedback_comment_create(thread=replied, by=outsider, body="+1")
    open_thread(product, owner, title="Not mine")
    hidden = ProductFactory(domain=product.domain, status=LifecycleStatus.DRAFT)
    open_thread(hidden, owner, title="On a draft")
    login(client, outsider)
    page = client.get(reverse("products:my-feedback"))
    content = page.content.decode()
    assert "Mine" in content and "Owner&#x27;s question" in content
    assert "Not mine" not in content and "On a draft" not in content
    feedback_status_change(thread=mine, by=owner, status="declined", note="No.")
    assert b"Mine" not in client.get(reverse("products:my-feedback") + "?status=unresolved").content

    with django_assert_max_num_queries(4) as small:  # session, user, threads, count
        client.get(reverse("products:my-feedback"))
    for n in range(10):
        open_thread(ProductFactory(domain=product.domain), outsider, title=f"Elsewhere {n}")
    with django_assert_max_num_queries(len(small)):
        assert client.get(reverse("products:my-feedback")).status_code == 200


def test_empty_states_say_what_to_do_next(client, product, outsider):
    login(client, outsider)
    assert b"Start the first thread" in client.get(product_url("feedback-list", product)).content
    assert b"You have not given feedback yet" in client.get(reverse("products:my-feedback")).content


def test_the_thread_page_query_count_does_not_grow_with_replies(
    client, product, owner, outsider, django_assert_max_num_queries
):
    thread = open_thread(product, outsider)
    feedback_comment_create(thread=thread, by=owner, body="First")
    login(client, outsider)
    client.get(thread_url(thread))
    with django_assert_max_num_queries(14) as small:
        assert client.get(thread_url(thread)).status_code == 200
    someone = UserFactory(username="someone")
    for n in range(10):
        feedback_comment_create(thread=thread, by=someone if n % 2 else owner, body=f"Reply {n}")
    feedback_status_change(thread=thread, by=owner, status="acknowledged", note="On it")
    with django_assert_max_num_queries(len(small)):
        assert client.get(thread_url(thread)).status_code == 200
