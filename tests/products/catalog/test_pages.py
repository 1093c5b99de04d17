"""Product and domain pages: who sees what (a hidden product is a 404), what the page
shows, safe Markdown, and a query count that does not grow with ports and columns."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.core.markdown import render_markdown
from products.choices import Classification, LifecycleStatus, MembershipRole
from tests.factories import (
    ColumnFactory,
    DomainFactory,
    MembershipFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

HOSTILE_MARKDOWN = """
# Orders

<script>alert('script')</script>

<img src="x.png" onerror="alert('img')">

[click me](javascript:alert('link')) and <a href="JaVaScRiPt:alert('raw')">raw</a>

<p onclick="alert('click')" style="color:red">styled</p>

<iframe src="https://evil.example"></iframe>

**Bold** and [docs](https://example.com/orders).
"""


@pytest.fixture
def product(domain, owner):
    return ProductFactory(
        domain=domain,
        name="Orders",
        slug="orders",
        summary="One row per order line.",
        description="**Bold** facts about orders.",
        purpose_use_case="Weekly revenue reporting",
        purpose_intended_users="Sales analysts",
        purpose_expected_outcome="One number for revenue",
        tags=["revenue", "daily"],
        owners=[owner],
        version="1.2.0",
    )


@pytest.fixture
def draft(domain, owner):
    return ProductFactory(
        domain=domain, name="Secret plan", slug="secret-plan", status=LifecycleStatus.DRAFT
    )


def test_product_page_shows_what_a_consumer_needs(client, product, outsider, owner):
    port = OutputPortFactory(product=product, name="orders table", table_name="orders")
    ColumnFactory(
        port=port,
        name="amount",
        data_type="DOUBLE",
        nullable=False,
        description="Order total in euros",
        classification=Classification.CONFIDENTIAL,
    )
    client.force_login(outsider)

    response = client.get("/products/sales/orders/")

    assert response.status_code == 200
    content = response.content.decode()
    for text in (
        "<h1>Orders",
        "sales.orders",
        "One row per order line.",
        "<strong>Bold</strong> facts about orders.",
        "Weekly revenue reporting",
        "Sales analysts",
        "One number for revenue",
        'href="/domains/sales/"',
        "owner@example.com",
        "badge-status-published",
        "1.2.0",
        'href="/search/?tag=revenue"',
        "orders table",
        "<code>amount</code>",
        "DOUBLE",
        "Order total in euros",
        "badge-class-confidential",
    ):
        assert text in content, text
    assert port.location in content
    # An outsider gets no edit controls.
    for text in ("Edit product", "Refresh schema", "/deprecate/", "Add output port", "Lifecycle"):
        assert text not in content


def test_hidden_draft_is_a_404_for_outsiders_and_shown_to_members(client, draft, outsider, member):
    client.force_login(outsider)
    response = client.get("/products/sales/secret-plan/")
    assert response.status_code == 404
    assert b"We can\xe2\x80\x99t find that page" in response.content  # our 404 template
    assert client.get("/products/sales/no-such-thing/").status_code == 404

    client.force_login(member)
    response = client.get("/products/sales/secret-plan/")
    assert response.status_code == 200
    assert b"This is a draft" in response.content
    assert b"Edit product" not in response.content  # members read, owners and stewards edit


def test_editors_see_lifecycle_actions_and_what_blocks_publishing(client, draft, owner):
    client.force_login(owner)
    content = client.get("/products/sales/secret-plan/").content.decode()
    assert "Before you can publish" in content
    assert "Name at least one owner." in content
    assert "Add at least one output port." in content
    assert 'action="/products/sales/secret-plan/publish/"' in content
    assert "Refresh schema" not in content  # no port yet
    assert "Add output port" in content


def test_published_product_offers_deprecate_not_publish(client, product, steward):
    client.force_login(steward)
    content = client.get(product.get_absolute_url()).content.decode()
    assert 'action="/products/sales/orders/deprecate/"' in content
    assert "/publish/" not in content and "/retire/" not in content


def test_markdown_is_rendered_safely_on_the_page(client, product, outsider):
    product.description = HOSTILE_MARKDOWN
    product.save()
    client.force_login(outsider)
    content = client.get(product.get_absolute_url()).content.decode()
    description = content.split('<div class="prose">', 1)[1].split("</div>", 1)[0]
    assert "<strong>Bold</strong>" in description
    assert 'href="https://example.com/orders"' in description
    assert "<script" not in description
    assert "alert(" not in description
    assert "onerror" not in description and "onclick" not in description
    assert "javascript:" not in description.lower()
    assert "<iframe" not in description and "style=" not in description


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("<script>alert(1)</script>", "<script"),
        ('<img src="a.png" onerror="alert(1)">', "onerror"),
        ("[x](javascript:alert(1))", "javascript:"),
        ('<a href="  jAvAsCrIpT:alert(1)">x</a>', "javascript"),
        ("[x](data:text/html;base64,PHNjcmlwdD4=)", "data:"),
        ('<svg onload="alert(1)"></svg>', "onload"),
    ],
)
def test_markdown_renderer_neutralises_scripts(source, forbidden):
    assert forbidden not in render_markdown(source).lower()


def test_markdown_renderer_keeps_ordinary_formatting():
    html = render_markdown("## Columns\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n`code` and *em*")
    assert "<h2>Columns</h2>" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert "<code>code</code>" in html and "<em>em</em>" in html


def _product_with(domain, *, ports: int, columns: int):
    product = ProductFactory(domain=domain, tags=["a", "b"])
    for _ in range(ports):
        port = OutputPortFactory(product=product)
        for _ in range(columns):
            ColumnFactory(port=port)
    return product


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("who", ["outsider", "owner"])
def test_product_page_query_count_does_not_grow_with_ports_and_columns(
    client, domain, owner, outsider, who, django_assert_max_num_queries
):
    user = {"outsider": outsider, "owner": owner}[who]
    client.force_login(user)
    small = _product_with(domain, ports=1, columns=2)
    large = _product_with(domain, ports=4, columns=40)
    large.owners.set([owner, UserFactory(), UserFactory()])

    small_count = _count_queries(client, small.get_absolute_url())
    # 17: the feedback card (follow state, feedback summary) and announcement banner add 3;
    # the page view's one UPSERT and the retirement banner's proposal lookup 2 more; the
    # top bar's links by what the person can use (portal_display.main_nav) 1 more.
    with django_assert_max_num_queries(18):
        client.get(large.get_absolute_url())
    assert _count_queries(client, large.get_absolute_url()) == small_count


def test_domain_page_lists_visible_products_and_team(client, domain, owner, member, outsider):
    ProductFactory(domain=domain, name="Orders")
    ProductFactory(domain=domain, name="Secret plan", status=LifecycleStatus.DRAFT)
    ProductFactory(domain=DomainFactory(slug="hr"), name="Salaries")

    client.force_login(outsider)
    response = client.get("/domains/sales/")
    assert response.status_code == 200
    names = [product.name for product in response.context["products"]]
    assert names == ["Orders"]
    content = response.content.decode()
    assert "owner" in content and "Owner" in content and "Member" in content
    assert "New product" not in content

    client.force_login(member)
    names = [p.name for p in client.get("/domains/sales/").context["products"]]
    assert names == ["Orders", "Secret plan"]

    client.force_login(owner)
    assert b"/products/new/?domain=sales" in client.get("/domains/sales/").content

    assert client.get("/domains/nowhere/").status_code == 404


def test_domain_list_counts_published_products(client, domain, outsider):
    ProductFactory(domain=domain)
    ProductFactory(domain=domain, status=LifecycleStatus.DRAFT)
    DomainFactory(name="Marketing", slug="marketing")
    client.force_login(outsider)
    response = client.get("/domains/")
    content = response.content.decode()
    assert "1 published product<" in content
    assert "0 published products" in content


def test_my_products_groups_the_users_domains(client, domain, owner, outsider):
    marketing = DomainFactory(name="Marketing", slug="marketing")
    MembershipFactory(domain=marketing, user=owner, role=MembershipRole.MEMBER)
    ProductFactory(domain=domain, name="Orders")
    ProductFactory(domain=domain, name="Secret plan", status=LifecycleStatus.DRAFT)
    ProductFactory(domain=marketing, name="Campaigns")
    ProductFactory(domain=DomainFactory(slug="hr"), name="Salaries")

    client.force_login(owner)
    response = client.get("/my/products/")
    groups = {g["domain"].name: g for g in response.context["groups"]}
    assert list(groups) == ["Marketing", "Sales"]
    assert [p.name for p in groups["Sales"]["products"]] == ["Secret plan", "Orders"]
    assert groups["Sales"]["can_create"] and not groups["Marketing"]["can_create"]
    content = response.content.decode()
    assert "badge-status-draft" in content
    assert 'href="/products/new/"' in content

    client.force_login(outsider)
    content = client.get("/my/products/").content.decode()
    assert "You are not on a domain team yet" in content
    assert 'href="/products/new/"' not in content
