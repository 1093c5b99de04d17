"""Registering destinations: who may, what is refused (with messages naming the field), and
testing one."""

import os
import uuid
from urllib.parse import urlsplit

import psycopg
import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from products.choices import MembershipRole
from sharing.models import Sync, SyncDestination
from sharing.syncs.destinations import DestinationError
from sharing.syncs.destinations.base import destination_secret
from sharing.syncs.services.destinations import (
    destination_can_manage,
    destination_create,
    destination_delete,
    destination_test,
    destination_update,
    destinations_usable_by,
)
from sharing.syncs.services.syncs import destination_usable_by
from tests.factories import DomainFactory, MembershipFactory, UserFactory

HTTP = {"kind": "http", "url": "https://crm.example.com/api/leads"}


@pytest.fixture
def other_domain(db):
    return DomainFactory(name="Marketing", slug="marketing")


def errors_of(excinfo) -> dict[str, str]:
    return {field: " ".join(messages) for field, messages in excinfo.value.message_dict.items()}


def test_admins_register_for_every_domain_and_owners_for_their_own(
    admin_user, owner, steward, domain, other_domain
):
    shared = destination_create(by=admin_user, name="Shared CRM", **HTTP)
    assert shared.domain is None and shared.created_by == admin_user
    own = destination_create(by=owner, name="Sales CRM", domain=domain, **HTTP)
    assert own.domain == domain
    with pytest.raises(PermissionDenied, match="admins"):
        destination_create(by=owner, name="Everyone's CRM", **HTTP)
    with pytest.raises(PermissionDenied, match="owners of Marketing"):
        destination_create(by=owner, name="Their CRM", domain=other_domain, **HTTP)
    with pytest.raises(PermissionDenied):
        destination_create(by=steward, name="Steward CRM", domain=domain, **HTTP)
    assert SyncDestination.objects.count() == 2


def test_who_may_manage(admin_user, owner, member, outsider, domain, other_domain):
    mine = SyncDestination.objects.create(name="Sales CRM", domain=domain, **HTTP)
    shared = SyncDestination.objects.create(name="Shared CRM", **HTTP)
    assert destination_can_manage(user=admin_user, destination=shared)
    assert destination_can_manage(user=owner, destination=mine)
    assert not destination_can_manage(user=owner, destination=shared)
    assert not destination_can_manage(user=member, destination=mine)
    assert not destination_can_manage(user=outsider, domain=domain)
    assert destination_can_manage(user=owner, domain=domain)
    assert not destination_can_manage(user=owner, domain=other_domain)


def test_usable_destinations_are_shared_ones_and_those_of_the_users_domains(
    member, outsider, admin_user, domain, other_domain
):
    shared = SyncDestination.objects.create(name="Shared", **HTTP)
    sales = SyncDestination.objects.create(name="Sales", domain=domain, **HTTP)
    marketing = SyncDestination.objects.create(name="Marketing", domain=other_domain, **HTTP)
    assert set(destinations_usable_by(user=member)) == {shared, sales}
    assert set(destinations_usable_by(user=outsider)) == {shared}
    assert set(destinations_usable_by(user=admin_user)) == {shared, sales, marketing}
    # Sync validation asks the same rule.
    assert destination_usable_by(user=member, destination=sales)
    assert not destination_usable_by(user=member, destination=marketing)
    assert destination_usable_by(user=admin_user, destination=marketing)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"kind": "http"}, "url", "URL the records are POSTed to"),
        ({**HTTP, "secret_env": "sk_live_51Habc"}, "secret_env", "NAME of the environment"),
        ({**HTTP, "batch_size": 0}, "batch_size", "between 1 and 10,000"),
        ({**HTTP, "batch_size": 20_000}, "batch_size", "between 1 and 10,000"),
        ({**HTTP, "rate_per_second": 0}, "rate_per_second", "above 0"),
        ({**HTTP, "body_template": '{"items": []}'}, "body_template", "{{records}}"),
        ({**HTTP, "auth_header": "X-Api-Key"}, "secret_env", "X-Api-Key header's value"),
        ({"kind": "http", "url": "http://crm.example.com/leads"}, "url", "https://"),
        ({"kind": "http", "url": "https://127.0.0.1/leads"}, "url", "loopback, private"),
        ({"kind": "postgresql", "database": "crm"}, "host", "host name"),
        ({"kind": "mysql", "host": "maria"}, "table_name", "table the records are written"),
        ({"kind": "duckdb", "table_name": "leads"}, "path", "DuckDB database file"),
        ({"kind": "nats", "subject": "crm.>"}, "subject", "without wildcards"),
        ({"kind": "ftp"}, "kind", "not a valid choice"),
    ],
)
def test_invalid_destinations_are_refused_naming_the_field(admin_user, fields, field, words):
    with pytest.raises(ValidationError) as excinfo:
        destination_create(by=admin_user, name="CRM", **fields)
    assert words in errors_of(excinfo)[field]
    assert not SyncDestination.objects.exists()


def test_every_missing_field_is_named_at_once(admin_user):
    with pytest.raises(ValidationError) as excinfo:
        destination_create(by=admin_user, name="CRM", kind="postgresql")
    assert {"host", "database", "table_name"} <= set(errors_of(excinfo))


def test_names_are_unique_and_unknown_fields_refused(admin_user):
    destination_create(by=admin_user, name="CRM", **HTTP)
    with pytest.raises(ValidationError) as excinfo:
        destination_create(by=admin_user, name="CRM", **HTTP)
    assert "name" in errors_of(excinfo)
    with pytest.raises(ValidationError) as excinfo:
        destination_create(by=admin_user, name="CRM 2", password="hunter2", **HTTP)
    assert "not a destination field" in errors_of(excinfo)["password"]


def test_private_targets_are_allowed_when_the_setting_says_so(admin_user, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    destination = destination_create(
        by=admin_user,
        name="Local CRM",
        kind="http",
        url="http://127.0.0.1:8025/leads",
        secret_env="SYNC_SECRET_LOCAL_CRM_TOKEN",
    )
    assert destination.auth_header == "Authorization"


def test_owners_update_their_destinations_and_others_may_not(owner, member, domain):
    destination = SyncDestination.objects.create(name="Sales CRM", domain=domain, **HTTP)
    destination_update(destination=destination, by=owner, batch_size=200, rate_per_second=5)
    destination.refresh_from_db()
    assert (destination.batch_size, destination.rate_per_second) == (200, 5)
    with pytest.raises(PermissionDenied):
        destination_update(destination=destination, by=member, batch_size=100)
    with pytest.raises(ValidationError) as excinfo:
        destination_update(destination=destination, by=owner, url="ftp://crm.example.com")
    assert "url" in errors_of(excinfo)
    destination.refresh_from_db()
    assert destination.url == HTTP["url"]


def test_a_destination_used_by_syncs_is_neither_deleted_nor_narrowed(
    admin_user, owner, product, domain
):
    destination = SyncDestination.objects.create(name="Shared CRM", **HTTP)
    Sync.objects.create(
        product=product, name="Lead scores", destination=destination, created_by=owner
    )
    with pytest.raises(ValidationError, match="Lead scores"):
        destination_delete(destination=destination, by=admin_user)
    with pytest.raises(ValidationError) as excinfo:
        destination_update(destination=destination, by=admin_user, domain=domain.slug)
    assert "domain" in errors_of(excinfo)
    Sync.objects.all().delete()
    destination_delete(destination=destination, by=admin_user)
    assert not SyncDestination.objects.exists()


def test_only_managers_delete(owner, member, domain):
    destination = SyncDestination.objects.create(name="Sales CRM", domain=domain, **HTTP)
    with pytest.raises(PermissionDenied):
        destination_delete(destination=destination, by=member)
    newcomer = UserFactory(username="newcomer")
    MembershipFactory(domain=domain, user=newcomer, role=MembershipRole.OWNER)
    destination_delete(destination=destination, by=newcomer)
    assert not SyncDestination.objects.exists()


@pytest.fixture
def crm_table():
    database = urlsplit(os.environ.get("DATABASE_URL", "postgres:///portal")).path.lstrip("/")
    table = f"sync_dest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(host="127.0.0.1", dbname=database, user="postgres", autocommit=True) as c:
        c.execute(f"CREATE TABLE {table} (lead_id text PRIMARY KEY, owner text, score int)")
    yield database, table
    with psycopg.connect(host="127.0.0.1", dbname=database, user="postgres", autocommit=True) as c:
        c.execute(f"DROP TABLE {table}")


def test_testing_a_table_destination_says_what_it_found(admin_user, crm_table):
    database, table = crm_table
    destination = destination_create(
        by=admin_user,
        name="CRM table",
        kind="postgresql",
        host="127.0.0.1",
        database=database,
        username="postgres",
        table_name=table,
    )
    assert (
        destination_test(destination=destination) == f"Reachable: table public.{table}, 3 fields."
    )
    destination = destination_update(
        destination=destination, by=admin_user, table_name="crm_missing"
    )
    with pytest.raises(DestinationError, match="table public.crm_missing does not exist"):
        destination_test(destination=destination)


# --- what an owner inside the company may not point a destination at ----------------------


def test_a_secret_is_read_only_from_the_variables_meant_for_syncs(admin_user, owner, domain):
    """Naming SECRET_KEY as an HTTP destination's auth header would send the portal's own
    secret to the registrant's server: refused at save, and at every connection."""
    with pytest.raises(ValidationError) as excinfo:
        destination_create(
            by=owner, name="Exfiltrate", domain=domain, secret_env="SECRET_KEY", **HTTP
        )
    assert "SYNC_SECRET_" in errors_of(excinfo)["secret_env"]
    with pytest.raises(ValidationError):
        destination_create(by=admin_user, name="Admin too", secret_env="DATABASE_URL", **HTTP)
    # A row written around the services is refused when the writer connects.
    smuggled = SyncDestination.objects.create(name="Smuggled", secret_env="SECRET_KEY", **HTTP)
    with pytest.raises(DestinationError, match="SYNC_SECRET_"):
        destination_secret(smuggled)


def test_only_admins_register_table_destinations(admin_user, owner, domain, tmp_path):
    table = {"kind": "duckdb", "path": str(tmp_path / "crm.duckdb"), "table_name": "leads"}
    with pytest.raises(ValidationError) as excinfo:
        destination_create(by=owner, name="Own table", domain=domain, **table)
    assert "Only admins" in errors_of(excinfo)["kind"]
    assert destination_create(by=admin_user, name="Admin table", domain=domain, **table).pk


def test_nobody_writes_into_the_portals_own_database(admin_user, settings):
    portal = settings.DATABASES["default"]
    with pytest.raises(ValidationError) as excinfo:
        destination_create(
            by=admin_user,
            name="Users",
            kind="postgresql",
            host="localhost" if portal["HOST"] in ("127.0.0.1", "") else portal["HOST"],
            port=int(portal.get("PORT") or 5432),
            database=portal["NAME"],
            username="postgres",
            table_name="auth_user",
        )
    assert "portal's own database" in errors_of(excinfo)["database"]


def test_nats_destinations_keep_to_their_domains_subjects(admin_user, owner, domain):
    with pytest.raises(ValidationError) as excinfo:
        destination_create(
            by=owner, name="Forged", domain=domain, kind="nats", subject="marketing.campaigns"
        )
    assert "start it with sales." in errors_of(excinfo)["subject"]
    with pytest.raises(ValidationError) as excinfo:
        destination_create(
            by=admin_user, name="Events", kind="nats", subject="portal.events.access.granted"
        )
    assert "portal's own events" in errors_of(excinfo)["subject"]
    own = destination_create(
        by=owner, name="Scores", domain=domain, kind="nats", subject="sales.lead-scores"
    )
    assert own.subject == "sales.lead-scores"
