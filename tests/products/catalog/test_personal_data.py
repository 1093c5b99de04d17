"""Columns whose names say personal data are flagged to their owners with a suggested
classification, on the schema, after an upload and on the column's page; readers see no
hint, and nothing is reclassified without the owner."""

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from products.catalog.personal_data import personal_data_hint, personal_data_suggestion
from products.choices import Classification
from products.models import Column
from tests.factories import ColumnFactory, FilePortFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("name", "what", "suggested"),
    [
        ("email", "e-mail addresses", Classification.CONFIDENTIAL),
        ("customer_email", "e-mail addresses", Classification.CONFIDENTIAL),
        ("customerEmail", "e-mail addresses", Classification.CONFIDENTIAL),
        ("E-Mail", "e-mail addresses", Classification.CONFIDENTIAL),
        ("email_address", "e-mail addresses", Classification.CONFIDENTIAL),
        ("Phone Number", "phone numbers", Classification.CONFIDENTIAL),
        ("mobile", "phone numbers", Classification.CONFIDENTIAL),
        ("first_name", "people's names", Classification.CONFIDENTIAL),
        ("LastName", "people's names", Classification.CONFIDENTIAL),
        ("customer_name", "people's names", Classification.CONFIDENTIAL),
        ("street_address", "postal addresses", Classification.CONFIDENTIAL),
        ("zip", "postal addresses", Classification.CONFIDENTIAL),
        ("ip_address", "IP addresses", Classification.CONFIDENTIAL),
        ("date_of_birth", "dates of birth", Classification.CONFIDENTIAL),
        ("IBAN", "bank account numbers", Classification.RESTRICTED),
        ("payer_iban", "bank account numbers", Classification.RESTRICTED),
        ("ssn", "national identity numbers", Classification.RESTRICTED),
        ("credit_card_number", "card numbers", Classification.RESTRICTED),
    ],
)
def test_names_that_say_personal_data_get_a_hint(name, what, suggested):
    hint = personal_data_hint(name)
    assert hint is not None, name
    assert (hint.what, hint.suggested) == (what, suggested)


@pytest.mark.parametrize(
    "name",
    [
        "amount",
        "domain_name",
        "filename",
        "product_name",
        "emailed_at",
        "status",
        "zipped",
        "shipping_method",
        "country",
        "",
        "id",
    ],
)
def test_ordinary_names_get_none(name):
    assert personal_data_hint(name) is None


def test_a_column_already_classified_high_enough_is_not_flagged():
    assert personal_data_suggestion("email", Classification.CONFIDENTIAL) is None
    assert personal_data_suggestion("email", Classification.RESTRICTED) is None
    assert personal_data_suggestion("email", Classification.INTERNAL) is not None
    assert personal_data_suggestion("iban", Classification.CONFIDENTIAL) is not None


@pytest.fixture
def email_column(product):
    port = FilePortFactory(product=product, name="Customers", slug="customers")
    return ColumnFactory(port=port, name="customer_email", classification="internal")


def test_the_owner_sees_the_hint_on_the_schema_and_a_reader_does_not(
    client, product, owner, email_column
):
    client.force_login(owner)
    page = html.unescape(client.get(product.get_absolute_url()).content.decode())
    assert "looks like personal data" in page
    assert "Looks like e-mail addresses" in page
    edit = reverse(
        "products:column-edit",
        args=[product.domain.slug, product.slug, "customers", email_column.pk],
    )
    assert f"{edit}?classification=confidential" in page

    reader = UserFactory(username="reader")
    client.force_login(reader)
    page = html.unescape(client.get(product.get_absolute_url()).content.decode())
    assert "Looks like e-mail addresses" not in page
    assert "looks like personal data" not in page


def test_the_column_page_preselects_the_suggestion_and_saving_applies_it(
    client, product, owner, email_column
):
    edit = reverse(
        "products:column-edit",
        args=[product.domain.slug, product.slug, "customers", email_column.pk],
    )
    client.force_login(owner)
    page = client.get(f"{edit}?classification=confidential").content.decode()
    assert (
        'value="confidential" selected' in page or '<option value="confidential" selected>' in page
    )
    assert "suggests e-mail addresses" in html.unescape(page)
    # An unknown value in the link is ignored: the column's own classification is shown.
    page = client.get(f"{edit}?classification=top-secret").content.decode()
    assert '<option value="internal" selected>' in page
    email_column.refresh_from_db()
    assert email_column.classification == Classification.INTERNAL  # nothing changed by a GET

    client.post(edit, {"description": "", "classification": "confidential"})
    email_column.refresh_from_db()
    assert email_column.classification == Classification.CONFIDENTIAL


def test_an_upload_with_personal_columns_says_so(client, product, owner):
    client.force_login(owner)
    csv = b"order_id,customer_email,phone,amount\n1,a@example.com,+3212345678,9.5\n"
    response = client.post(
        reverse("products:port-upload", args=[product.domain.slug, product.slug]),
        {"file": SimpleUploadedFile("customers.csv", csv), "name": "Customers"},
        follow=True,
    )
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "2 columns look like personal data (customer_email, phone)" in page
    assert set(Column.objects.filter(port__slug="customers").values_list("name", flat=True)) >= {
        "customer_email",
        "phone",
    }
