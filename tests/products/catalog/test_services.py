"""The catalog's rules, as services enforce them for pages, API and tasks alike."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django_celery_beat.models import PeriodicTask

from products.catalog.services.ports import data_source_create, output_port_create
from products.catalog.services.products import (
    product_create,
    product_deprecate,
    product_publish,
    product_retire,
    product_update,
)
from products.choices import LifecycleStatus, MembershipRole
from products.models import DataProduct
from products.trust.services.checks import check_create
from tests.factories import (
    DataSourceFactory,
    DomainFactory,
    MembershipFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
)


def _draft(domain, owner, **fields):
    return product_create(
        domain=domain, name="Orders", summary="One row per order", by=owner, **fields
    )


def test_owner_creates_a_draft_owned_by_them(domain, owner):
    product = _draft(domain, owner, tags=["Revenue", "revenue", "B2B Sales"])
    assert product.status == LifecycleStatus.DRAFT
    assert product.key == "sales.orders"
    assert list(product.owners.all()) == [owner]
    assert sorted(product.tags.values_list("name", flat=True)) == ["b2b-sales", "revenue"]


@pytest.mark.parametrize("role", [MembershipRole.MEMBER, None])
def test_members_and_outsiders_cannot_create(domain, role):
    user = UserFactory()
    if role:
        MembershipFactory(domain=domain, user=user, role=role)
    with pytest.raises(PermissionDenied):
        _draft(domain, user)


def test_owner_of_another_domain_cannot_create(domain):
    other_owner = UserFactory()
    MembershipFactory(domain=DomainFactory(), user=other_owner, role=MembershipRole.OWNER)
    with pytest.raises(PermissionDenied):
        _draft(domain, other_owner)


def test_duplicate_slug_in_domain_is_a_field_error(domain, owner):
    _draft(domain, owner)
    with pytest.raises(ValidationError) as error:
        _draft(domain, owner)
    assert "__all__" in error.value.message_dict or "slug" in error.value.message_dict


def test_empty_name_is_a_field_error(domain, owner):
    with pytest.raises(ValidationError) as error:
        product_create(domain=domain, name="  ", by=owner)
    assert "name" in error.value.message_dict
    assert not DataProduct.objects.exists()


def test_publishing_needs_description_owner_and_port(domain, owner):
    product = _draft(domain, owner, description="")
    product.owners.clear()
    with pytest.raises(ValidationError) as error:
        product_publish(product=product, by=owner)
    assert error.value.message_dict["status"] == [
        "Write a description.",
        "Name at least one owner.",
        "Add at least one output port.",
    ]
    product.refresh_from_db()
    assert product.status == LifecycleStatus.DRAFT

    product_update(product=product, by=owner, description="All orders.", owners=[owner])
    OutputPortFactory(product=product)
    product = product_publish(product=product, by=owner)
    assert product.status == LifecycleStatus.PUBLISHED
    assert product.published_at is not None


def test_lifecycle_moves_forward_only_along_its_graph(domain, steward):
    product = ProductFactory(domain=domain, status=LifecycleStatus.DRAFT)
    with pytest.raises(ValidationError):
        product_retire(product=product, by=steward)
    OutputPortFactory(product=product)
    product.owners.add(steward)
    product_publish(product=product, by=steward)
    product_deprecate(product=product, by=steward)
    product = product_retire(product=product, by=steward)
    assert product.status == LifecycleStatus.RETIRED
    with pytest.raises(ValidationError):
        product_publish(product=product, by=steward)


def test_only_managers_change_lifecycle(domain, member, outsider, admin_user):
    product = ProductFactory(domain=domain, status=LifecycleStatus.PUBLISHED)
    for user in (member, outsider):
        with pytest.raises(PermissionDenied):
            product_deprecate(product=product, by=user)
    assert product_deprecate(product=product, by=admin_user).status == LifecycleStatus.DEPRECATED


def test_unknown_fields_are_refused(domain, owner):
    product = _draft(domain, owner)
    with pytest.raises(ValidationError) as error:
        product_update(product=product, by=owner, status=LifecycleStatus.PUBLISHED)
    assert "status" in error.value.message_dict


def test_visibility(domain, owner, member, outsider, admin_user):
    published = ProductFactory(domain=domain, status=LifecycleStatus.PUBLISHED)
    deprecated = ProductFactory(domain=domain, status=LifecycleStatus.DEPRECATED)
    draft = ProductFactory(domain=domain, status=LifecycleStatus.DRAFT)
    retired = ProductFactory(domain=domain, status=LifecycleStatus.RETIRED)
    other_draft = ProductFactory(status=LifecycleStatus.DRAFT)
    from django.contrib.auth.models import AnonymousUser

    def visible(user):
        return set(DataProduct.objects.visible_to(user))

    assert visible(AnonymousUser()) == set()
    assert visible(outsider) == {published, deprecated}
    assert visible(member) == {published, deprecated, draft, retired}
    assert visible(owner) == {published, deprecated, draft, retired}
    assert visible(admin_user) == {published, deprecated, draft, retired, other_draft}


def test_table_port_needs_source_and_table(domain, owner):
    product = _draft(domain, owner)
    with pytest.raises(ValidationError) as error:
        output_port_create(product=product, by=owner, name="orders", kind="table")
    assert set(error.value.message_dict) == {"source", "table_name"}
    port = output_port_create(
        product=product,
        by=owner,
        name="Orders table",
        kind="table",
        source=DataSourceFactory(),
        table_name="orders",
    )
    assert port.slug == "orders-table"


def test_file_port_must_stay_inside_storage(domain, owner):
    product = _draft(domain, owner)
    with pytest.raises(ValidationError) as error:
        output_port_create(
            product=product,
            by=owner,
            name="escape",
            kind="file",
            file_path="../../etc/passwd",
            file_format="csv",
        )
    assert "outside the portal's storage" in error.value.message_dict["file_path"][0]


def test_data_source_takes_a_variable_name_never_a_password(admin_user, owner):
    with pytest.raises(PermissionDenied):
        data_source_create(by=owner, name="wh", kind="postgresql", database="wh")
    with pytest.raises(ValidationError) as error:
        data_source_create(
            by=admin_user,
            name="wh",
            kind="postgresql",
            database="wh",
            password_env="s3cr3t p@ss!",
        )
    assert "password_env" in error.value.message_dict
    source = data_source_create(
        by=admin_user,
        name="wh",
        kind="postgresql",
        database="wh",
        password_env="WAREHOUSE_PASSWORD",
    )
    assert source.password_env == "WAREHOUSE_PASSWORD"


@pytest.mark.usefixtures("eager_tasks")
def test_product_check_schedule_is_a_cron_and_moves_beat_tasks(
    domain, owner, django_capture_on_commit_callbacks
):

    product = _draft(domain, owner)
    with pytest.raises(ValidationError) as error:
        product_update(product=product, by=owner, check_schedule="hourly")
    assert "check_schedule" in error.value.message_dict
    port = OutputPortFactory(product=product)
    check_create(port=port, by=owner, name="rows", kind="row_count", params={"min": 1})
    with django_capture_on_commit_callbacks(execute=True):
        product_update(product=product, by=owner, check_schedule="15 6 * * 1-5")
    assert list(
        PeriodicTask.objects.filter(name__startswith=f"checks:port:{port.pk}:").values_list(
            "name", flat=True
        )
    ) == [f"checks:port:{port.pk}:15 6 * * 1-5"]
