"""The shell every page shares (issue 15): one way to show a moment and a person, the top
bar's links by what each person can use, and the portal's own 404 and 500 pages under
DEBUG (Django's debug pages only with DEBUG_PAGES)."""

import re
from datetime import date, timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from portal.templatetags.portal_display import schedule_in_words
from products.choices import MembershipRole
from tests.factories import MembershipFactory, ProductFactory, UserFactory


def render(source: str, **context) -> str:
    return Template("{% load portal_display %}" + source).render(Context(context))


def test_a_moment_reads_relative_with_the_exact_time_on_hover():
    now = timezone.now()
    past = render("{{ t|when }}", t=now - timedelta(hours=3, minutes=5))
    match = re.fullmatch(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', past)
    assert match, past
    iso, title, shown = match.groups()
    assert shown == "3\xa0hours ago"
    assert iso.startswith(str((now - timedelta(hours=3, minutes=5)).year)) and "T" in iso
    assert re.fullmatch(r"\w{3} \d{1,2} \w{3} \d{4}, \d\d:\d\d UTC", title), title

    assert ">in 2\xa0days<" in render("{{ t|when }}", t=now + timedelta(days=2, minutes=5))
    assert ">just now<" in render("{{ t|when }}", t=now - timedelta(seconds=10))
    exact = render('{{ t|when:"exact" }}', t=now + timedelta(days=2, minutes=5))
    assert 'title="in 2\xa0days"' in exact and " UTC</time>" in exact


def test_a_day_reads_relative_and_nothing_shows_for_no_moment():
    today = timezone.localdate()
    assert ">today<" in render("{{ d|when }}", d=today)
    assert ">yesterday<" in render("{{ d|when }}", d=today - timedelta(days=1))
    assert f'datetime="{today + timedelta(days=3)}"' in render(
        "{{ d|when }}", d=today + timedelta(days=3)
    )
    assert render("{{ d|when }}", d=None) == ""
    assert render('{{ d|when|default:"never" }}', d=None) == "never"
    assert isinstance(today, date)


@pytest.mark.django_db
def test_people_show_by_their_full_name_else_their_username():
    named = UserFactory(username="jdoe", first_name="Jane", last_name="Doe")
    plain = UserFactory(username="analyst", first_name="", last_name="")
    assert render("{{ u|person }}", u=named) == "Jane Doe"
    assert render("{{ u|person }}", u=plain) == "analyst"
    assert render('{{ u|person|default:"a former member" }}', u=None) == "a former member"


def _nav_links(client) -> list[str]:
    html = client.get("/").content.decode()
    nav = re.search(r'<nav class="mainnav".*?</nav>', html, re.S).group(0)
    return re.findall(r">([^<>]+)</a>", nav)


@pytest.mark.django_db
def test_the_top_bar_shows_each_person_what_they_can_use(client, domain, owner, admin_user):
    reader = UserFactory(username="reader")
    member = UserFactory(username="member")
    MembershipFactory(domain=domain, user=member, role=MembershipRole.MEMBER)
    ProductFactory(domain=domain)

    client.force_login(reader)
    assert _nav_links(client) == ["Catalog", "Domains", "Glossary", "Metrics", "SQL"]
    # What the links led to: a reader cannot create a share, and the dashboard is for
    # the teams that run products; the API docs stay one click away in the user menu.
    assert 'href="/api/v1/docs/"' in client.get("/").content.decode()

    client.force_login(member)
    assert _nav_links(client) == ["Catalog", "Domains", "Glossary", "Metrics", "SQL", "Usage"]

    client.force_login(owner)
    assert _nav_links(client) == [
        "Catalog", "Domains", "Glossary", "Metrics", "SQL", "Delta Sharing", "Usage",
    ]  # fmt: skip

    client.force_login(admin_user)
    assert _nav_links(client) == [
        "Catalog", "Domains", "Glossary", "Metrics", "SQL", "Delta Sharing", "Usage", "Audit",
        "Admin",
    ]  # fmt: skip


@pytest.mark.django_db
def test_the_api_docs_open_inside_the_portal(client, outsider):
    client.force_login(outsider)
    html = client.get("/api/v1/docs/").content.decode()
    assert '<header class="topbar">' in html and 'id="swagger-ui"' in html
    assert 'href="/"' in html  # the way back: the brand and the breadcrumb


@pytest.mark.django_db
@pytest.mark.parametrize("signed_in", [False, True])
def test_an_unknown_address_shows_the_portal_404_not_the_route_list(
    client, settings, outsider, signed_in
):
    settings.DEBUG = True  # as `make run`
    settings.DEBUG_PAGES = False
    if signed_in:
        client.force_login(outsider)
    paths = ["/no-such-page/"] + (["/domains/no-such-domain/"] if signed_in else [])
    for path in paths:  # no route, and a view's own 404
        response = client.get(path)
        html = response.content.decode()
        assert response.status_code == 404, path
        assert "We can’t find that page" in html, path
        assert "Using the URLconf" not in html and "DEBUG = True" not in html, path
        assert 'action="/search/"' in html and 'href="/"' in html

    settings.DEBUG_PAGES = True  # asked for: Django's debug page
    assert "Using the URLconf" in client.get("/no-such-page/").content.decode()


@pytest.mark.django_db
def test_a_server_error_shows_the_portal_500_under_debug(client, settings, outsider):
    settings.DEBUG = True
    settings.DEBUG_PAGES = False
    client.raise_request_exception = False
    client.force_login(outsider)
    # The portal's URLs plus one view that raises, as a bug would.
    settings.ROOT_URLCONF = "tests.portal.site.failing_urls"
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "Traceback" not in html and "DEBUG = True" not in html


def test_export_schedules_read_in_words_with_the_cron_on_hover():
    assert str(schedule_in_words("30 7 * * 1-5", "Europe/Brussels")) == (
        '<span title="cron: 30 7 * * 1-5">every weekday at 07:30 Europe/Brussels</span>'
    )
    # A shape with no sentence is shown as written, never described wrongly.
    assert str(schedule_in_words("0 6-9 * * *", "UTC")) == "<code>0 6-9 * * *</code> in UTC"
