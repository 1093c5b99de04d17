"""The notifications page renders each body's Markdown as sanitised HTML (never as
Markdown source, never a script), with the title as the link that opens it."""

import pytest
from django.urls import reverse

from portal.core.notifications import notification_create

pytestmark = pytest.mark.django_db


def test_bodies_render_as_safe_html(client, outsider):
    notice = notification_create(
        user=outsider,
        title="Your access to <Orders> is approved",
        body='**bold** and <script>alert("x")</script> [a link](javascript:alert(1))',
        url="/my/access/",
        key="test:1",
    )
    client.force_login(outsider)
    html = client.get(reverse("portal:notifications")).content.decode()
    assert "<strong>bold</strong>" in html
    assert "**bold**" not in html
    assert "<script>alert" not in html
    assert "javascript:" not in html
    assert "Your access to &lt;Orders&gt; is approved" in html  # titles are text
    open_url = reverse("portal:notification-open", args=[notice.pk])
    assert f'class="notification-title" href="{open_url}"' in html


def test_the_page_points_to_the_work_inbox(client, outsider):
    client.force_login(outsider)
    html = client.get(reverse("portal:notifications")).content.decode()
    assert f'href="{reverse("portal:my-work")}"' in html
