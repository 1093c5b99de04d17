"""Sync destinations: registering, changing and testing where syncs write.

Who: admins register destinations for any domain or none (none: every domain's syncs may
use it); a domain's owners register them for their domain only. A sync may use a
destination with no domain, or one of a domain its creator is a member of.

Secrets are never stored: `secret_env` names the environment variable holding the password
(tables) or the auth header's value (HTTP), and is checked to be a name, not a value."""

from __future__ import annotations

import re
import socket

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet

from portal.core.targets import TargetRefused, target_parse, target_resolve
from products.catalog.permissions import user_is_admin
from products.choices import MembershipRole
from products.models import Domain, DomainMembership
from sharing.models import Sync, SyncDestination
from sharing.models.syncs import DestinationKind
from sharing.syncs.destinations import destination_writer
from sharing.syncs.destinations.http import body_template_error

ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
BATCH_SIZE_MAX = 10_000
# The subject a destination publishes to: dot-separated tokens, no wildcards.
NATS_SUBJECT = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
# The fields a destination is registered with, in the order its form and API show them
# (its domain apart).
DESTINATION_FIELDS = (
    "name",
    "kind",
    "description",
    "secret_env",
    "url",
    "auth_header",
    "batch_size",
    "body_template",
    "rate_per_second",
    "host",
    "port",
    "database",
    "username",
    "path",
    "schema_name",
    "table_name",
    "nats_url",
    "subject",
)
FIELDS = {*DESTINATION_FIELDS, "domain"}
REQUIRED = {
    DestinationKind.HTTP: ("url",),
    DestinationKind.POSTGRESQL: ("host", "database", "table_name"),
    DestinationKind.MYSQL: ("host", "database", "table_name"),
    DestinationKind.DUCKDB: ("path", "table_name"),
    DestinationKind.NATS: ("subject",),
}
REQUIRED_WORDS = {
    "url": "Give the URL the records are POSTed to.",
    "host": "Give the database server's host name.",
    "database": "Give the database's name.",
    "table_name": "Give the table the records are written to.",
    "path": "Give the DuckDB database file's path.",
    "subject": "Give the NATS subject the records are published on.",
}


# --- who ------------------------------------------------------------------------------------


def destination_can_manage(
    *, user, destination: SyncDestination | None = None, domain: Domain | None = None
) -> bool:
    """Admins manage every destination; a domain's owners those of their domain (and may
    register new ones there). `domain` without `destination`: may `user` register one
    for that domain (None: for every domain, admins only)."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user_is_admin(user):
        return True
    domain_id = destination.domain_id if destination is not None else getattr(domain, "pk", None)
    if domain_id is None:
        return False
    return DomainMembership.objects.filter(
        domain_id=domain_id, user=user, role=MembershipRole.OWNER
    ).exists()


def destinations_usable_by(*, user) -> QuerySet[SyncDestination]:
    """The destinations `user`'s syncs may write to: those with no domain, and those of a
    domain `user` is a member of (any role); admins use every destination. The one rule:
    sync validation asks it too (sharing.syncs.services.syncs.destination_usable_by)."""
    if not user.is_authenticated:
        return SyncDestination.objects.none()
    if user_is_admin(user):
        return SyncDestination.objects.all()
    domains = DomainMembership.objects.filter(user=user).values("domain_id")
    return SyncDestination.objects.filter(Q(domain__isnull=True) | Q(domain_id__in=domains))


# --- validation -----------------------------------------------------------------------------


def _domain_of(value) -> Domain | None:
    if value in (None, ""):
        return None
    if isinstance(value, Domain):
        return value
    domain = Domain.objects.filter(slug=str(value)).first()
    if domain is None:
        raise ValidationError({"domain": f"There is no domain {value!r}."})
    return domain


def _url_error(url: str) -> str | None:
    """Why the records may not go to `url`: not https, or a host resolving to a private
    address (unless WEBHOOKS_ALLOW_PRIVATE_TARGETS). A host that does not resolve from here
    is accepted: every send resolves and checks it again, and the test button says so."""
    try:
        _scheme, host, port, _path = target_parse(url)
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TargetRefused as exc:
        return str(exc)
    except (OSError, UnicodeError):
        return None
    try:
        target_resolve(url)
    except TargetRefused as exc:
        return str(exc)
    return None


TABLE_KINDS = (DestinationKind.POSTGRESQL, DestinationKind.MYSQL, DestinationKind.DUCKDB)


def _same_server(host: str, port: int | None, other_host: str, other_port) -> bool:
    """Whether two host:port name one server (by the addresses the names resolve to)."""
    if int(port or 5432) != int(other_port or 5432):
        return False

    def addresses(name: str) -> set[str]:
        try:
            return {info[4][0] for info in socket.getaddrinfo(name or "localhost", None)}
        except (OSError, UnicodeError):
            return {name}

    return bool(addresses(host) & addresses(other_host))


def _is_portal_database(destination: SyncDestination) -> bool:
    portal = settings.DATABASES["default"]
    if destination.kind != DestinationKind.POSTGRESQL or "postgresql" not in portal["ENGINE"]:
        return False
    if (destination.database or "").strip() != portal.get("NAME"):
        return False
    return _same_server(destination.host, destination.port, portal.get("HOST"), portal.get("PORT"))


def _access_errors(destination: SyncDestination, by) -> dict[str, str]:
    """What `by` may not point a destination at (an attacker inside the company registers
    destinations too): a table destination holds database credentials and writes into the
    company's databases, so only admins register one; a secret is read only from the
    variables meant for syncs (not SECRET_KEY, DATABASE_URL...); nobody writes into the
    portal's own database or publishes among the portal's events; a domain's NATS
    destination publishes under the domain's own subjects."""
    errors: dict[str, str] = {}
    prefix = settings.SYNC_SECRET_ENV_PREFIX
    if destination.secret_env and not destination.secret_env.startswith(prefix):
        errors["secret_env"] = (
            f"The variable's name must start with {prefix} (for example {prefix}CRM_TOKEN): "
            "syncs read only the secrets set for them, never the portal's own."
        )
    if destination.kind in TABLE_KINDS and not user_is_admin(by):
        errors["kind"] = (
            "Only admins register table destinations: they hold database credentials and "
            "write into the company's databases. Ask an admin, or use an HTTP API or a NATS "
            "subject."
        )
    if _is_portal_database(destination):
        errors["database"] = "This is the portal's own database: syncs never write into it."
    subject = destination.subject or ""
    if destination.kind == DestinationKind.NATS and subject:
        events = settings.NATS_EVENTS_SUBJECT_PREFIX
        if subject == events or subject.startswith(events + "."):
            errors["subject"] = f"Subjects under {events} carry the portal's own events."
        elif destination.domain is not None and not subject.startswith(
            destination.domain.slug + "."
        ):
            errors["subject"] = (
                f"A destination of {destination.domain} publishes under its own subjects: "
                f"start it with {destination.domain.slug}. (for example "
                f"{destination.domain.slug}.lead-scores)."
            )
    return errors


def _clean(destination: SyncDestination, *, by) -> None:
    """Every problem of `destination` at once, as {field: message}."""
    errors: dict[str, str] = _access_errors(destination, by)
    try:
        destination.full_clean(exclude=["created_by", "domain"], validate_unique=True)
    except ValidationError as exc:
        errors.update({field: " ".join(messages) for field, messages in exc.message_dict.items()})
    kind = destination.kind
    for field in REQUIRED.get(kind, ()):
        if not str(getattr(destination, field) or "").strip() and field not in errors:
            errors[field] = REQUIRED_WORDS[field]
    if destination.secret_env and not ENV_NAME.fullmatch(destination.secret_env):
        errors["secret_env"] = (
            "Give the NAME of the environment variable that holds the secret (capitals, "
            "digits and _, for example CRM_API_TOKEN), never the secret itself."
        )
    if not 1 <= (destination.batch_size or 0) <= BATCH_SIZE_MAX:
        errors["batch_size"] = f"The batch size is between 1 and {BATCH_SIZE_MAX:,} records."
    if destination.rate_per_second is not None and not destination.rate_per_second > 0:
        errors["rate_per_second"] = (
            "The rate is a number of requests per second above 0 (empty: no limit)."
        )
    if kind == DestinationKind.HTTP:
        if destination.url and "url" not in errors:
            url_error = _url_error(destination.url)
            if url_error:
                errors["url"] = url_error
        template_error = body_template_error(destination.body_template or "")
        if template_error:
            errors["body_template"] = template_error
        if destination.auth_header and not destination.secret_env:
            errors["secret_env"] = (
                f"Name the environment variable that holds the {destination.auth_header} "
                "header's value."
            )
    if (
        kind == DestinationKind.NATS
        and destination.subject
        and not NATS_SUBJECT.fullmatch(destination.subject)
    ):
        errors["subject"] = (
            "Give the subject as dot-separated tokens without wildcards, for example "
            "crm.lead-scores."
        )
    if errors:
        raise ValidationError(errors)


def _apply(destination: SyncDestination, fields: dict) -> None:
    unknown = sorted(set(fields) - FIELDS)
    if unknown:
        raise ValidationError({unknown[0]: f"{unknown[0]!r} is not a destination field."})
    for name, value in fields.items():
        if name == "domain":
            destination.domain = _domain_of(value)
        elif isinstance(value, str) and name not in ("body_template", "description"):
            setattr(destination, name, value.strip())
        else:
            setattr(destination, name, value)
    if destination.kind == DestinationKind.HTTP and destination.secret_env:
        destination.auth_header = destination.auth_header or "Authorization"


# --- writes ---------------------------------------------------------------------------------


def destination_create(*, by, **fields) -> SyncDestination:
    """A destination registered by `by` (an admin, or an owner of its domain)."""
    destination = SyncDestination(created_by=by)
    _apply(destination, fields)
    if not destination_can_manage(user=by, domain=destination.domain):
        raise PermissionDenied(
            "Only admins register destinations for every domain; a domain's owners register "
            "them for their own domain."
            if destination.domain is None
            else f"Only the owners of {destination.domain} and admins register its destinations."
        )
    _clean(destination, by=by)
    destination.save()
    return destination


def destination_update(*, destination: SyncDestination, by, **fields) -> SyncDestination:
    """Change `destination` (its managers only). It may be narrowed to a domain only while
    no sync uses it (those syncs' creators may not be members of that domain)."""
    if not destination_can_manage(user=by, destination=destination):
        raise PermissionDenied("Only the destination's domain owners and admins change it.")
    with transaction.atomic():
        destination = SyncDestination.objects.select_for_update().get(pk=destination.pk)
        domain_before = destination.domain_id
        _apply(destination, fields)
        if destination.domain_id != domain_before:
            if not destination_can_manage(user=by, domain=destination.domain):
                raise PermissionDenied("You may move a destination only to a domain you own.")
            if destination.domain_id is not None and destination.syncs.exists():
                raise ValidationError(
                    {
                        "domain": "Syncs use this destination: it may not be narrowed to one "
                        "domain until they are moved or deleted."
                    }
                )
        _clean(destination, by=by)
        destination.save()
    return destination


def destination_delete(*, destination: SyncDestination, by) -> None:
    """Delete `destination`; refused while a sync uses it."""
    if not destination_can_manage(user=by, destination=destination):
        raise PermissionDenied("Only the destination's domain owners and admins delete it.")
    names = list(Sync.objects.filter(destination=destination).values_list("name", flat=True)[:5])
    if names:
        raise ValidationError(
            f"Syncs use this destination ({', '.join(names)}): delete them or point them "
            "elsewhere first."
        )
    destination.delete()


def destination_test(*, destination: SyncDestination) -> str:
    """Connect and look: what the destination is, in words, or DestinationError (its
    .message for people, .technical for admins). Nothing is written."""
    with destination_writer(destination, key_fields=[], run_id="test") as writer:
        writer.check()
        fields = writer.fields()
        if destination.kind == DestinationKind.HTTP:
            return f"Reachable: {destination.url} (a connection opened; nothing was sent)."
        if destination.kind == DestinationKind.NATS:
            return f"Reachable: subject {destination.subject}, stored by stream {writer.stream}."
        return f"Reachable: table {writer.relation_name}, {len(fields)} fields."
