"""Retirement through the API and the pages: who may do what (anonymous 401, outsider
403, editor), bad input answered with a 400 naming the field and nothing written, the
banner on the product page, and the retirement page's forms."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from products.choices import LifecycleStatus
from products.models import DataProduct, RetirementEvent, RetirementObjection, RetirementProposal
from products.retirement.services import retirement_propose
from sharing.models import AccessGrant
from tests.factories import DomainFactory, ProductFactory, UserFactory

BASE = "/api/v1/products/sales.orders-v1/retirement/"
REASON = "Replaced by orders-v2."

pytestmark = pytest.mark.usefixtures("eager_tasks")


@pytest.fixture
def product(domain, owner):
    product = ProductFactory(domain=domain, name="Orders v1", slug="orders-v1", owners=[owner])
    long_ago = timezone.now() - timedelta(days=200)
    DataProduct.objects.filter(pk=product.pk).update(created_at=long_ago, published_at=long_ago)
    product.refresh_from_db()
    return product


@pytest.fixture
def grantee(product):
    user = UserFactory(username="grantee")
    AccessGrant.objects.create(
        product=product, user=user, expires_at=timezone.now() + timedelta(days=90), reason="x"
    )
    return user


# --- API -------------------------------------------------------------------------------


def test_anonymous_gets_401(api_client, product):
    for method, path in [
        ("get", BASE),
        ("post", BASE),
        ("post", BASE + "objections/"),
        ("post", BASE + "withdraw/"),
        ("post", BASE + "proceed/"),
    ]:
        assert getattr(api_client, method)(path, {}, format="json").status_code == 401


def test_propose_bad_input_is_400_and_writes_nothing(api_client, product, owner):
    api_client.force_authenticate(owner)
    for body, field in [
        ({"reason": REASON, "notice_days": 6}, "notice_days"),
        ({"reason": REASON, "notice_days": "soon"}, "notice_days"),
        ({"notice_days": 30}, "reason"),
        ({"reason": "   ", "notice_days": 30}, "reason"),
        ({"reason": REASON, "status": "retired"}, "status"),
    ]:
        response = api_client.post(BASE, body, format="json")
        assert response.status_code == 400, body
        assert field in response.json(), (body, response.json())
    draft = ProductFactory(domain=product.domain, slug="plan", status=LifecycleStatus.DRAFT)
    response = api_client.post(
        f"/api/v1/products/{draft.key}/retirement/", {"reason": REASON}, format="json"
    )
    assert response.status_code == 400 and "draft" in response.json()["product"][0]
    assert not RetirementProposal.objects.exists() and not RetirementEvent.objects.exists()
    assert mail.outbox == []


def test_non_editors_get_403_and_hidden_products_404(api_client, product, member, outsider):
    for user in (member, outsider):
        api_client.force_authenticate(user)
        response = api_client.post(BASE, {"reason": REASON}, format="json")
        assert response.status_code == 403
        assert "owners and stewards" in response.json()["detail"]
    hidden = ProductFactory(domain=DomainFactory(slug="hr"), status=LifecycleStatus.DRAFT)
    response = api_client.post(
        f"/api/v1/products/{hidden.key}/retirement/", {"reason": REASON}, format="json"
    )
    assert response.status_code == 404


def test_the_api_flow(
    api_client, product, owner, grantee, outsider, django_capture_on_commit_callbacks
):
    api_client.force_authenticate(outsider)
    assert api_client.get(BASE).status_code == 404  # nothing proposed yet

    api_client.force_authenticate(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(BASE, {"reason": REASON, "notice_days": 10}, format="json")
    assert response.status_code == 201
    data = response.json()
    assert (data["status"], data["notice_days"], data["proposed_by"]) == ("proposed", 10, "owner")
    assert [e["kind"] for e in data["events"]] == ["proposed"] and data["events"][0]["told"] == 1
    assert [m.to for m in mail.outbox] == [["grantee@example.com"]]

    api_client.force_authenticate(outsider)
    response = api_client.post(BASE + "objections/", {"reason": "I like it"}, format="json")
    assert response.status_code == 403
    api_client.force_authenticate(grantee)
    assert api_client.post(BASE + "objections/", {}, format="json").status_code == 400
    response = api_client.post(BASE + "objections/", {"reason": "Still used"}, format="json")
    assert response.status_code == 201 and response.json()["user"] == "grantee"
    assert (
        api_client.post(BASE + "objections/", {"reason": "Again"}, format="json").status_code == 400
    )
    assert api_client.post(BASE + "withdraw/", {}, format="json").status_code == 403

    # Everyone who sees the product reads the proposal; objectors' names are for editors.
    api_client.force_authenticate(outsider)
    data = api_client.get(BASE).json()
    assert data["status"] == "objected" and data["objections"][0]["user"] is None
    assert data["objections"][0]["reason"] == "Still used"
    api_client.force_authenticate(owner)
    assert api_client.get(BASE).json()["objections"][0]["user"] == "grantee"

    response = api_client.post(BASE + "proceed/", {"reason": "Go"}, format="json")
    assert response.status_code == 400 and "notice period" in response.json()["proposal"][0]
    response = api_client.post(BASE + "withdraw/", {"reason": "It stays."}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    assert api_client.post(BASE + "withdraw/", {}, format="json").status_code == 404


# --- pages -----------------------------------------------------------------------------


def test_banner_on_the_product_page(client, product, owner, outsider):
    client.force_login(owner)
    html = client.get(product.get_absolute_url()).content.decode()
    assert "No reads in 90 days" in html and "Propose retirement" in html
    client.force_login(outsider)
    html = client.get(product.get_absolute_url()).content.decode()
    assert "No reads in 90 days" not in html  # only editors are told

    proposal = retirement_propose(product=product, by=owner, reason=REASON, notice_days=20)
    html = client.get(product.get_absolute_url()).content.decode()
    assert "Retirement proposed." in html and "20 days left" in html
    assert proposal.notice_ends_at.strftime("%-d %b %Y") in html


def test_retirement_page_propose_validation_and_permissions(client, product, owner, outsider):
    url = f"{product.get_absolute_url()}retirement/"
    client.force_login(outsider)
    html = client.get(url).content.decode()
    assert "No retirement proposed" in html and 'id="propose"' not in html
    assert client.post(url + "propose/", {"reason": REASON, "notice_days": 30}).status_code == 403

    client.force_login(owner)
    assert 'id="propose"' in client.get(url).content.decode()
    response = client.post(url + "propose/", {"reason": REASON, "notice_days": 3})
    assert response.status_code == 400
    assert "At least 7 days" in response.content.decode()
    response = client.post(url + "propose/", {"reason": "", "notice_days": 30})
    assert response.status_code == 400
    assert not RetirementProposal.objects.exists()

    response = client.post(url + "propose/", {"reason": REASON, "notice_days": 30})
    assert response.status_code == 302 and response["Location"] == url
    html = client.get(url).content.decode()
    assert "Proposal in progress" in html and "30 days left" in html
    assert "Withdraw the proposal" in html


def test_retirement_page_object_and_withdraw(client, product, owner, grantee, outsider):
    url = f"{product.get_absolute_url()}retirement/"
    retirement_propose(product=product, by=owner, reason=REASON, notice_days=14)
    client.force_login(outsider)
    html = client.get(url).content.decode()
    assert 'id="object"' not in html and "Only people with access" in html
    assert client.post(url + "object/", {"reason": "x"}).status_code == 403

    client.force_login(grantee)
    assert 'id="object"' in client.get(url).content.decode()
    assert client.post(url + "object/", {"reason": ""}).status_code == 400
    response = client.post(url + "object/", {"reason": "The monthly close reads it."})
    assert response.status_code == 302
    html = client.get(url).content.decode()
    assert "You objected" in html and "The monthly close reads it." in html
    assert RetirementObjection.objects.get().user == grantee

    client.force_login(owner)
    html = client.get(url).content.decode()
    assert "grantee" in html and "Go ahead despite" not in html  # notice still running
    assert client.post(url + "withdraw/", {"reason": "It stays."}).status_code == 302
    assert RetirementProposal.objects.get().status == "withdrawn"
    html = client.get(url).content.decode()
    assert "Withdrawn <time" in html and 'id="propose"' in html
    assert client.post(url + "withdraw/", {}).status_code == 302  # nothing in progress: said so


def test_retirement_page_query_count(
    client, product, owner, grantee, django_assert_max_num_queries
):
    proposal = retirement_propose(product=product, by=owner, reason=REASON, notice_days=14)
    for _ in range(5):
        user = UserFactory()
        AccessGrant.objects.create(
            product=product, user=user, expires_at=timezone.now() + timedelta(days=9), reason="x"
        )
        RetirementObjection.objects.create(
            proposal=proposal, user=user, reason="no", at=timezone.now()
        )
    client.force_login(owner)
    with django_assert_max_num_queries(20):
        assert client.get(f"{product.get_absolute_url()}retirement/").status_code == 200


def test_the_endpoints_are_in_the_openapi_schema(db):
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    for path, method in [
        ("/api/v1/products/{product_key}/usage/", "get"),
        ("/api/v1/usage/", "get"),
        ("/api/v1/products/{product_key}/retirement/", "get"),
        ("/api/v1/products/{product_key}/retirement/", "post"),
        ("/api/v1/products/{product_key}/retirement/objections/", "post"),
        ("/api/v1/products/{product_key}/retirement/withdraw/", "post"),
        ("/api/v1/products/{product_key}/retirement/proceed/", "post"),
    ]:
        assert method in paths[path], (path, method)
    assert "201" in paths["/api/v1/products/{product_key}/retirement/"]["post"]["responses"]
