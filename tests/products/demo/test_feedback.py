"""The demo's feedback: threads in each state (one overdue), two announcements (the
deprecation naming its replacement), follows and the notifications behind the bell;
seeding again writes nothing."""

import pytest

from portal.models import Notification
from products.choices import LifecycleStatus
from products.demo.feedback import feedback_seed
from products.feedback.services.announcements import announcements_active
from products.feedback.services.feedback import feedback_overdue
from products.models import Announcement, FeedbackThread, ProductFollow
from tests.factories import DomainFactory, ProductFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


def test_demo_feedback_is_seeded_once(domain):
    users = {
        name: UserFactory(username=name, first_name=name.title(), last_name="Demo")
        for name in ("owner", "steward", "analyst", "viewer")
    }
    orders = ProductFactory(domain=domain, slug="orders", name="Orders")
    legacy = ProductFactory(
        domain=domain, slug="daily-revenue", name="Daily revenue", status=LifecycleStatus.DEPRECATED
    )
    ProductFactory(domain=DomainFactory(slug="marketing"), slug="campaigns", name="Campaigns")

    first = feedback_seed(users=users)
    assert first.created == {"feedback threads": 4, "announcements": 2, "follows": 2}
    assert first.overdue_products == ["sales.orders"]
    statuses = dict(FeedbackThread.objects.values_list("title", "status"))
    assert statuses == {
        "Why do refunds show as negative amounts?": "resolved",
        "Some order lines appear twice": "acknowledged",
        "Add the promotion code to each order line": "open",
        "The channel breakdown saved our quarterly review": "resolved",
    }
    overdue = feedback_overdue(product=orders)
    assert [row["title"] for row in overdue] == ["Add the promotion code to each order line"]
    answered = FeedbackThread.objects.get(title__startswith="Why do refunds")
    assert answered.first_response_by == users["owner"] and answered.comments.count() == 1

    (deprecation,) = announcements_active(product=legacy)
    assert deprecation.kind == "deprecation" and deprecation.replacement == orders
    assert Announcement.objects.filter(delivered_at__isnull=True).count() == 0
    assert ProductFollow.objects.count() == 2
    assert Notification.objects.filter(user=users["viewer"], read_at__isnull=True).count() == 3
    assert Notification.objects.filter(user=users["analyst"]).count() == 2

    again = feedback_seed(users=users)
    assert again.created == {} and again.overdue_products == []
    assert FeedbackThread.objects.count() == 4 and Notification.objects.count() == 5
