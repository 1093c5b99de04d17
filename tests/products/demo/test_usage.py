"""The demo seeder gives the usage pages something to show: a busy product, a growing
one, and an unused legacy product its owner may propose to retire; written once."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from products.models import ProductPageView, UsageSummaryRun
from products.usage.selectors import usage_dashboard
from sharing.models import AccessEvent

pytestmark = pytest.mark.usefixtures("demo_settings")


@pytest.mark.django_db(
    transaction=True
)  # the connectors read the warehouse over their own connections
def test_the_demo_shows_usage_once():
    call_command("seed_demo", "--rows-scale", "0.02", stdout=StringIO())
    events, views = AccessEvent.objects.count(), ProductPageView.objects.count()
    assert events > 100 and views > 10

    owner = get_user_model().objects.get(username="owner")
    dashboard = usage_dashboard(user=owner)  # computed by the seeder
    assert dashboard.as_of is not None
    keys = [row.product.key for row in dashboard.most_used]
    assert keys[0] == "sales.orders"
    assert "marketing.web-sessions" in [row.product.key for row in dashboard.fastest_growing]
    unused = {row.product.key: row for row in dashboard.unused}
    assert "sales.daily-revenue" in unused and unused["sales.daily-revenue"].can_edit
    assert unused["sales.daily-revenue"].last_read_at is not None

    out = StringIO()
    call_command("seed_demo", "--rows-scale", "0.02", stdout=out)
    assert (AccessEvent.objects.count(), ProductPageView.objects.count()) == (events, views)
    assert UsageSummaryRun.objects.count() == 1
    assert "usage events" not in out.getvalue()
