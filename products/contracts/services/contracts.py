"""Data contracts (ODCS v3.1), version by version.

- `contract_import`: YAML in; parsed safely, validated against the ODCS JSON schema,
  mapped (products.contracts.services.mapping) and tried against the catalog in a
  transaction that is rolled back, so that every problem (with its path) is reported and
  nothing is stored when there is one. The result is a draft version.
- `contract_publish`: applies a draft to the catalog through the catalog's own services
  (columns, checks, SLOs, product fields, support channels: their validation stays in one
  place). Breaking changes against the current version (a column removed, a type changed,
  a column made required, a quality tolerance tightened) must be confirmed, and the
  product's current grantees are emailed when it is published.
- `contract_export`: the catalog's state of any product as an ODCS document that
  validates against the schema and imports back to the same mapped fields.
- `product_create_from_contract`: a new draft product from a contract alone.
"""

from __future__ import annotations

import difflib
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from portal.core.task_queue import enqueue_on_commit
from products.catalog.permissions import can_edit_product
from products.catalog.services.events import product_event_emit
from products.catalog.services.ports import (
    columns_declare,
    output_port_create,
    output_port_update,
    port_default_schema,
)
from products.catalog.services.products import product_create, product_update
from products.catalog.services.search_index import product_search_index_update
from products.choices import (
    BREAKING_CHANGE_KINDS,
    ROW_LEVEL_CHECKS,
    CheckKind,
    ContractChangeKind,
    ContractStatus,
    PortKind,
    SourceKind,
)
from products.connectors import ConnectorError, RelationMissing, connector_for_port
from products.contracts.services.documents import (
    ContractInvalid,
    ContractTooLarge,
    Problem,
    document_dump,
    document_parse,
    odcs_validate,
    path_join,
    semver_key,
)
from products.contracts.services.mapping import (
    LIFECYCLE_TO_ODCS,
    ODCS_API_VERSION,
    SERVER_PROPERTY,
    ContractMapping,
    MappedCheck,
    MappedColumn,
    MappedPort,
    contract_map,
    logical_type,
    quality_rule,
    sla_property,
)
from products.feedback.services.support import support_channels_of, support_channels_set
from products.models import (
    Contract,
    DataProduct,
    DataSource,
    Domain,
    OutputPort,
    ServiceLevelObjective,
)
from products.trust.services.checks import check_create, check_update
from products.trust.services.slos import slo_create, slo_delete, slo_update

__all__ = [
    "BreakingChangesUnconfirmed",
    "ContractChange",
    "ContractInvalid",
    "ContractTooLarge",
    "contract_current",
    "contract_delete",
    "contract_diff",
    "contract_export",
    "contract_import",
    "contract_publish",
    "contract_yaml",
    "contracts_of_product",
    "product_create_from_contract",
]


class BreakingChangesUnconfirmed(Exception):
    """Publishing would break consumers; the owner must confirm, knowing these changes."""

    def __init__(self, changes: list[ContractChange], version: str, current: str) -> None:
        self.changes = changes
        self.version = version
        self.current = current
        super().__init__(
            f"Version {version} has {len(changes)} breaking change"
            f"{'s' if len(changes) != 1 else ''} against {current}: confirm to publish it."
        )


@dataclass(frozen=True)
class ContractChange:
    kind: str
    subject: str  # what changed: "orders.amount", "orders / Not null amount", "latency"
    message: str
    path: str = ""  # where, in the newer document (or the older one for a removal)

    @property
    def breaking(self) -> bool:
        return self.kind in BREAKING_CHANGE_KINDS

    @property
    def label(self) -> str:
        return ContractChangeKind(self.kind).label

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "breaking": self.breaking, "label": self.label}


# --- reads ---------------------------------------------------------------------------------


def contracts_of_product(*, product: DataProduct) -> QuerySet[Contract]:
    """A product's contract versions, newest first, with who created and published them."""
    return (
        Contract.objects.filter(product=product)
        .select_related("created_by", "published_by", "default_source")
        .order_by("-created_at", "-pk")
    )


def contract_current(*, product: DataProduct) -> Contract | None:
    """The product's current contract: the version published last."""
    return (
        Contract.objects.filter(product=product, status=ContractStatus.PUBLISHED)
        .order_by("-published_at", "-pk")
        .first()
    )


def contract_yaml(*, contract: Contract) -> str:
    return document_dump(contract.document)


# --- applying a mapping to the catalog -------------------------------------------------------


class _Rollback(Exception):
    pass


@dataclass
class _Applied:
    problems: list[Problem]
    notes: list[Problem]


# A note stored with a contract imported with `allow_missing_relations`: publishing it
# later creates those ports without asking again.
MISSING_RELATION_WARNING = "Warning: the relation"


def _relation_problem(
    port: OutputPort, mapped: MappedPort, *, allowed: set[str] | bool
) -> tuple[Problem | None, Problem | None]:
    """Whether the relation a new table port names exists on its source: (problem, note).
    Missing: a problem naming it, unless allowed (the owner said so explicitly), then a
    warning note. A source that cannot be reached: a note, the import goes on."""
    if port.kind != PortKind.TABLE:
        return None, None
    relation = f"{port.schema_name or port_default_schema(port.source)}.{port.table_name}"
    where = f"data source {port.source.name!r}"
    try:
        with connector_for_port(port) as connector:
            connector.describe()
    except RelationMissing:
        if allowed is True or (allowed and mapped.path in allowed):
            return None, Problem(
                mapped.path,
                f"{MISSING_RELATION_WARNING} {relation} does not exist on {where}: the "
                f"port {port.slug!r} was added as you allowed, and reading it fails until "
                "the relation is created.",
            )
        return Problem(
            mapped.path,
            f"The relation {relation} does not exist on {where}: create it first, correct "
            "the contract's server (schema and table), or import with "
            "'allow missing relations' to add the port anyway.",
        ), None
    except ConnectorError:
        return None, Problem(
            mapped.path,
            f"Could not check that the relation {relation} exists: {where} did not answer.",
        )
    return None, None


def _error_problems(exc: ValidationError, path_of: Callable[[str], str]) -> list[Problem]:
    if hasattr(exc, "error_dict"):
        return [
            Problem(path_of(field), f"{field}: {message}" if field != "__all__" else message)
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    return [Problem(path_of(""), message) for message in exc.messages]


def _users(names: list[str]) -> tuple[list, list[str]]:
    User = get_user_model()
    found, unknown = [], []
    for name in names:
        user = (
            User.objects.filter(is_active=True)
            .filter(Q(username__iexact=name) | Q(email__iexact=name))
            .order_by("pk")
            .first()
        )
        (found.append(user) if user else unknown.append(name))
    return found, unknown


def _location(
    port: MappedPort, default_source: DataSource | None
) -> tuple[dict[str, Any] | None, str]:
    """Where a new port for a schema object reads from: the registered source its server
    names (by name, or by database and host), a file in portal storage for a `local`
    server, or the default source chosen at import. (fields, or None and why not)."""
    server = port.server or {}
    kind = str(server.get("type") or "")
    if kind == "local":
        return {
            "kind": PortKind.FILE,
            "file_path": str(server.get("path") or ""),
            "file_format": str(server.get("format") or "").lower(),
        }, ""
    source = None
    if server.get("server"):
        source = DataSource.objects.filter(name=str(server["server"])).first()
    if source is None and kind in ("postgresql", "postgres") and server.get("database"):
        local = {"", "localhost", "127.0.0.1"}
        for candidate in DataSource.objects.filter(
            kind=SourceKind.POSTGRESQL, database=str(server["database"])
        ):
            same_host = candidate.host == server.get("host") or (
                candidate.host in local and server.get("host") in local
            )
            if same_host and (candidate.port or 5432) == (server.get("port") or 5432):
                source = candidate
                break
    if source is None and kind == "duckdb" and server.get("database"):
        source = DataSource.objects.filter(
            kind=SourceKind.DUCKDB, path=str(server["database"])
        ).first()
    if source is not None:
        schema = str(server.get("schema") or "")
    elif default_source is not None:
        source, schema = default_source, ""
    else:
        named = f" {server.get('server') or server.get('id')!r}" if server else ""
        return None, (
            f"The product has no output port {port.slug!r} and no registered data source "
            f"matches the contract's server{named}: choose a data source for new ports, or "
            "add the port first."
        )
    return {
        "kind": PortKind.TABLE,
        "source": source,
        "schema_name": schema,
        "table_name": port.table_name,
    }, ""


def _apply(
    *,
    product: DataProduct,
    mapping: ContractMapping,
    by,
    default_source: DataSource | None,
    allow_missing_relations: set[str] | bool = False,
) -> _Applied:
    """Make the catalog say what the mapping says, through the catalog's services. Each
    step runs in its own savepoint so that every problem is collected; the caller rolls
    everything back when there is one. A new table port whose relation does not exist on
    its source is a problem, unless `allow_missing_relations` (True, or the JSON paths of
    the schema objects allowed) makes it a warning note."""

    problems: list[Problem] = []
    notes: list[Problem] = []

    def attempt(fn: Callable[[], Any], path_of: Callable[[str], str]) -> tuple[bool, Any]:
        try:
            with transaction.atomic():
                return True, fn()
        except ValidationError as exc:
            problems.extend(_error_problems(exc, path_of))
            return False, None

    # The product: description, purpose, summary, version, tags, owners.
    updates: dict[str, Any] = dict(mapping.product)
    if mapping.version:
        updates["version"] = mapping.version
    if mapping.tags is not None:
        updates["tags"] = mapping.tags
    if mapping.owners is not None:
        owners, unknown = _users(mapping.owners)
        for name in unknown:
            notes.append(Problem("$.team", f"No portal user {name!r}: not made an owner."))
        if owners:
            updates["owners"] = owners
    paths = {**mapping.product_paths, "version": "$.version", "tags": "$.tags", "owners": "$.team"}
    attempt(
        lambda: product_update(product=product, by=by, **updates),
        lambda field: paths.get(field, "$"),
    )

    # Output ports, their columns and checks.
    existing_ports = {port.slug: port for port in OutputPort.objects.filter(product=product)}
    for mapped in mapping.ports:
        port = existing_ports.get(mapped.slug)
        if port is None:
            location, why = _location(mapped, default_source)
            if location is None:
                problems.append(Problem(mapped.path, why))
                continue
            ok, port = attempt(
                lambda m=mapped, loc=location: output_port_create(
                    product=product, by=by, name=m.name, description=m.description, **loc
                ),
                lambda field, m=mapped: path_join(m.path, "name") if field == "name" else m.path,
            )
            if not ok:
                continue
            # Only once the port is accepted (its domain may use the relation): the
            # source is never asked about relations the domain may not use.
            problem, note = _relation_problem(port, mapped, allowed=allow_missing_relations)
            if problem is not None:
                problems.append(problem)
                continue
            if note is not None:
                notes.append(note)
        elif mapped.description and port.description != mapped.description:
            port.product = product
            attempt(
                lambda p=port, m=mapped: output_port_update(
                    port=p, by=by, description=m.description
                ),
                lambda field, m=mapped: path_join(m.path, "description"),
            )
        port.product = product
        _apply_columns(port, mapped, by, attempt, columns_declare)
        _apply_checks(port, mapped, by, attempt, check_create, check_update)

    # SLOs: the contract's slaProperties define all of them.
    if mapping.slos is not None:
        current = {slo.kind: slo for slo in ServiceLevelObjective.objects.filter(product=product)}
        wanted = {slo.kind for slo in mapping.slos}
        for kind, slo in current.items():
            if kind not in wanted:
                slo.product = product
                attempt(lambda s=slo: slo_delete(slo=s, by=by), lambda field: "$.slaProperties")
        for mapped in mapping.slos:
            fields = {
                "target_percent": mapped.target_percent,
                "threshold_hours": mapped.threshold_hours,
                "description": mapped.description,
                "value": mapped.value,
                "unit": mapped.unit,
            }
            slo = current.get(mapped.kind)
            if slo is not None:
                slo.product = product
                action = lambda s=slo, f=fields: slo_update(slo=s, by=by, **f)  # noqa: E731
            else:
                action = lambda k=mapped.kind, f=fields: slo_create(  # noqa: E731
                    product=product, by=by, kind=k, **f
                )
            attempt(action, lambda field, m=mapped: m.path)

    if mapping.ports:
        product_search_index_update(product_ids=[product.pk])

    if mapping.support is not None:
        attempt(
            lambda: support_channels_set(
                product=product,
                by=by,
                channels=[
                    {k: v for k, v in asdict(item).items() if k != "path"}
                    for item in mapping.support
                ],
            ),
            lambda field: _support_path(field),
        )
    return _Applied(problems=problems, notes=notes)


def _support_path(field: str) -> str:
    # support_channels_set keys its errors "channels[<i>].<field>".
    if field.startswith("channels["):
        return "$.support" + field[len("channels") :]
    return "$.support"


def _apply_columns(port, mapped: MappedPort, by, attempt, columns_declare) -> None:
    def path_of(field: str) -> str:
        # columns_declare keys its errors "columns[<i>].<field>".
        if field.startswith("columns["):
            index = int(field[len("columns[") : field.index("]")])
            if index < len(mapped.columns):
                return mapped.columns[index].path
        return mapped.path

    attempt(
        lambda: columns_declare(
            port=port,
            by=by,
            reindex=False,
            columns=[
                {k: v for k, v in asdict(column).items() if k != "path"}
                for column in mapped.columns
            ],
        ),
        path_of,
    )


def _apply_checks(port, mapped: MappedPort, by, attempt, check_create, check_update) -> None:
    existing = {check.name: check for check in port.checks.all()}
    for check in existing.values():
        check.port = port
    for item in mapped.checks:
        fields = {
            "kind": item.kind,
            "column": item.column,
            "params": item.params,
            "tolerance_percent": item.tolerance_percent,
            "severity": item.severity,
            "schedule": item.schedule,
            "enabled": True,
        }
        check = existing.get(item.name)
        if check is not None:
            action = lambda c=check, f=fields: check_update(check=c, by=by, **f)  # noqa: E731
        else:
            action = lambda n=item.name, f=fields: check_create(  # noqa: E731
                port=port, by=by, name=n, **f
            )
        attempt(action, lambda field, i=item: i.path)
    # The contract defines the port's checks: the others stop running (their history stays).
    names = {item.name for item in mapped.checks}
    for name, check in existing.items():
        if name not in names and check.enabled:
            attempt(lambda c=check: check_update(check=c, by=by, enabled=False), lambda f: "$")


def _try_apply(
    *,
    product: DataProduct,
    mapping: ContractMapping,
    by,
    default_source,
    allow_missing_relations: bool = False,
) -> list[Problem]:
    """Apply in a transaction that is always rolled back: what publishing would report.
    Returns the notes (what was not mapped); raises ContractInvalid on problems."""
    outcome: dict[str, _Applied] = {}
    fresh = DataProduct.objects.select_related("domain").get(pk=product.pk)
    try:
        with transaction.atomic():
            outcome["applied"] = _apply(
                product=fresh,
                mapping=mapping,
                by=by,
                default_source=default_source,
                allow_missing_relations=allow_missing_relations,
            )
            raise _Rollback
    except _Rollback:
        pass
    applied = outcome["applied"]
    if applied.problems:
        raise ContractInvalid(applied.problems)
    return applied.notes


# --- import, publish, delete -------------------------------------------------------------------


def _parse_and_map(text: str | bytes) -> tuple[dict, ContractMapping]:
    document = document_parse(text)
    problems = odcs_validate(document)
    if problems:
        count = len(problems)
        raise ContractInvalid(
            problems,
            summary=f"The contract does not follow ODCS v3.1: {count} problem"
            f"{'s' if count != 1 else ''}.",
        )
    mapping = contract_map(document)
    if mapping.problems:
        raise ContractInvalid(mapping.problems)
    return document, mapping


def _version_taken(version: str) -> ContractInvalid:
    return ContractInvalid(
        [
            Problem(
                "$.version",
                f"Version {version} of this contract exists already: raise the version.",
            )
        ]
    )


def contract_import(
    *,
    product: DataProduct,
    by,
    text: str | bytes,
    default_source: DataSource | None = None,
    allow_missing_relations: bool = False,
) -> Contract:
    """Store a draft version of the product's contract from ODCS YAML. Raises
    ContractTooLarge, or ContractInvalid listing every problem with its path (nothing is
    stored then). A new port naming a relation its source does not have is a problem;
    with `allow_missing_relations` it is imported with a warning kept in the version's
    notes (and publishing it adds the port)."""
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied(
            "Only the domain's owners and stewards, and admins, import contracts."
        )
    document, mapping = _parse_and_map(text)
    if Contract.objects.filter(product=product, version=mapping.version).exists():
        raise _version_taken(mapping.version)
    notes = _try_apply(
        product=product,
        mapping=mapping,
        by=by,
        default_source=default_source,
        allow_missing_relations=allow_missing_relations,
    )
    try:
        with transaction.atomic():
            return Contract.objects.create(
                product=product,
                version=mapping.version,
                document=document,
                unmapped=[p.as_dict() for p in [*mapping.unmapped, *notes]],
                default_source=default_source,
                created_by=by if getattr(by, "is_authenticated", False) else None,
            )
    except IntegrityError:  # the same version imported at the same moment
        raise _version_taken(mapping.version) from None


def _allowed_missing(contract: Contract) -> set[str]:
    """The schema objects whose missing relation the owner allowed when importing."""
    return {
        note.get("path", "")
        for note in contract.unmapped or []
        if str(note.get("message", "")).startswith(MISSING_RELATION_WARNING)
    }


def contract_publish(
    *,
    contract: Contract,
    by,
    confirm_breaking: bool = False,
    allow_missing_relations: bool = False,
) -> Contract:
    """Make a draft the product's current contract and apply it to the catalog. Raises
    BreakingChangesUnconfirmed when it breaks the current version and `confirm_breaking`
    is not set; ContractInvalid when the catalog refuses part of it (nothing changes then),
    such as a new port on a relation that does not exist, unless it was allowed when the
    version was imported or `allow_missing_relations` is set (then its warning is kept in
    the version's notes). The product's current grantees are emailed the breaking
    changes."""
    if not can_edit_product(user=by, product=contract.product):
        raise PermissionDenied(
            "Only the domain's owners and stewards, and admins, publish contracts."
        )
    with transaction.atomic():
        product = (
            DataProduct.objects.select_for_update()
            .select_related("domain")
            .get(pk=contract.product_id)
        )
        contract = Contract.objects.select_for_update().get(pk=contract.pk)
        contract.product = product
        if contract.status == ContractStatus.PUBLISHED:
            raise ValidationError({"version": f"Version {contract.version} is published already."})
        current = contract_current(product=product)
        if current is not None and semver_key(contract.version) <= semver_key(current.version):
            raise ValidationError(
                {
                    "version": f"Version {contract.version} is not above the current version "
                    f"{current.version}: import a higher version to publish."
                }
            )
        breaking = [
            change
            for change in contract_publish_changes(contract=contract, current=current)
            if change.breaking
        ]
        if breaking and not confirm_breaking:
            raise BreakingChangesUnconfirmed(
                breaking, contract.version, current.version if current else "the catalog"
            )
        applied = _apply(
            product=product,
            mapping=contract_map(contract.document),
            by=by,
            default_source=contract.default_source,
            allow_missing_relations=allow_missing_relations or _allowed_missing(contract),
        )
        if applied.problems:
            raise ContractInvalid(
                applied.problems, summary="The catalog refused part of this contract."
            )
        contract.status = ContractStatus.PUBLISHED
        contract.published_at = timezone.now()
        contract.published_by = by if getattr(by, "is_authenticated", False) else None
        contract.breaking_changes = [change.as_dict() for change in breaking]
        kept = list(contract.unmapped or [])
        warnings = [
            note.as_dict()
            for note in applied.notes
            if note.message.startswith(MISSING_RELATION_WARNING) and note.as_dict() not in kept
        ]
        contract.unmapped = kept + warnings
        contract.save(
            update_fields=[
                "status",
                "published_at",
                "published_by",
                "breaking_changes",
                "unmapped",
            ]
        )
        if breaking:
            enqueue_on_commit("products.tasks.contract_breaking_notify", contract.pk, once=True)
        product_event_emit(
            "portal.contract.published",
            product=product,
            data={
                "contract_id": contract.pk,
                "version": contract.version,
                "breaking": bool(breaking),
                "breaking_changes": [
                    {"kind": change.kind, "subject": change.subject, "message": change.message}
                    for change in breaking
                ],
                "published_by": by.get_username() if contract.published_by else "",
            },
        )
    return contract


def contract_publish_baseline(*, product: DataProduct, new: dict) -> dict:
    """What publishing `new` is compared with when the product has no contract yet: the
    catalog as it is, limited to the output ports `new` names (it leaves the others
    alone). A first contract that drops columns consumers read breaks them too."""

    document = contract_export(product=product)
    named = {slugify(str(obj.get("name") or ""))[:80] for obj in new.get("schema") or []}
    document["schema"] = [
        obj for obj in document.get("schema", []) if slugify(obj["name"])[:80] in named
    ]
    return document


def contract_publish_changes(
    *, contract: Contract, current: Contract | None = None
) -> list[ContractChange]:
    """What publishing the draft changes: against the current version, or (the first
    time) against the catalog."""
    if current is None:
        current = contract_current(product=contract.product)
    old = (
        current.document
        if current is not None
        else contract_publish_baseline(product=contract.product, new=contract.document)
    )
    return contract_diff(old=old, new=contract.document)


def contract_delete(*, contract: Contract, by) -> None:
    """Delete a draft version (a published one is history and stays)."""
    if not can_edit_product(user=by, product=contract.product):
        raise PermissionDenied(
            "Only the domain's owners and stewards, and admins, delete contracts."
        )
    if contract.status != ContractStatus.DRAFT:
        raise ValidationError({"version": "A published version cannot be deleted."})
    contract.delete()


def _domain_for(name: str) -> Domain | None:
    if not name:
        return None
    return Domain.objects.filter(Q(slug__iexact=name) | Q(name__iexact=name)).first()


def product_create_from_contract(
    *,
    by,
    text: str | bytes,
    domain: Domain | None = None,
    name: str = "",
    default_source: DataSource | None = None,
    allow_missing_relations: bool = False,
) -> Contract:
    """A new draft product from a contract alone: its domain (the contract's `domain`,
    unless one is given), name (the contract's `name`, else `name`), description, ports,
    columns, checks, SLOs and support channels. The contract becomes its first published
    version. A port on a relation its source lacks is refused unless
    `allow_missing_relations` (then it is added with a warning in the version's notes)."""

    document, mapping = _parse_and_map(text)
    mapping.name = mapping.name or (name or "").strip()
    problems = []
    domain = domain or _domain_for(mapping.domain)
    if domain is None:
        problems.append(
            Problem(
                "$.domain",
                f"No domain {mapping.domain!r} in the portal: choose a domain."
                if mapping.domain
                else "Name the domain (its slug or name), or choose one.",
            )
        )
    if not mapping.name:
        problems.append(Problem("$.name", "Name the product: the contract's name, or give a name."))
    if problems:
        raise ContractInvalid(problems)
    with transaction.atomic():
        try:
            product = product_create(domain=domain, name=mapping.name, by=by)
        except ValidationError as exc:
            raise ContractInvalid(_error_problems(exc, lambda field: "$.name")) from None
        contract = Contract.objects.create(
            product=product,
            version=mapping.version,
            document=document,
            unmapped=[p.as_dict() for p in mapping.unmapped],
            default_source=default_source,
            created_by=by if getattr(by, "is_authenticated", False) else None,
        )
        contract = contract_publish(
            contract=contract, by=by, allow_missing_relations=allow_missing_relations
        )
    return contract


# --- diff and breaking changes -----------------------------------------------------------------


def _normal_type(data_type: str) -> str:
    return " ".join((data_type or "").lower().split())


def _tightened(old: MappedCheck, new: MappedCheck) -> list[str]:
    """How `new` allows less than `old` (the same rule), in words; empty if it does not."""
    reasons = []
    if (old.kind in ROW_LEVEL_CHECKS or old.kind == CheckKind.CUSTOM_SQL) and (
        new.tolerance_percent < old.tolerance_percent
    ):
        reasons.append(
            f"tolerance {old.tolerance_percent:g}% -> {new.tolerance_percent:g}% failing rows"
        )
    a, b = old.params or {}, new.params or {}
    if old.kind in (CheckKind.ROW_COUNT, CheckKind.RANGE):
        if b.get("min") is not None and (a.get("min") is None or b["min"] > a["min"]):
            reasons.append(f"minimum {a.get('min', 'none')} -> {b['min']}")
        if b.get("max") is not None and (a.get("max") is None or b["max"] < a["max"]):
            reasons.append(f"maximum {a.get('max', 'none')} -> {b['max']}")
    elif old.kind == CheckKind.ACCEPTED_VALUES:
        dropped = [v for v in a.get("values") or [] if v not in (b.get("values") or [])]
        if dropped:
            reasons.append(f"no longer accepted: {', '.join(map(str, dropped[:10]))}")
    elif old.kind == CheckKind.FRESHNESS:
        if (b.get("max_age_hours") or 0) < (a.get("max_age_hours") or 0):
            reasons.append(f"max age {a.get('max_age_hours')} h -> {b.get('max_age_hours')} h")
    elif old.kind == CheckKind.VOLUME_CHANGE:
        if (b.get("max_change_percent") or 0) < (a.get("max_change_percent") or 0):
            reasons.append(
                f"max change {a.get('max_change_percent')}% -> {b.get('max_change_percent')}%"
            )
    return reasons


def _column_changes(port: str, old: MappedColumn, new: MappedColumn) -> list[ContractChange]:
    subject = f"{port}.{new.name}"
    changes = []
    old_type, new_type = _normal_type(old.data_type), _normal_type(new.data_type)
    if old_type and new_type and old_type != new_type:
        changes.append(
            ContractChange(
                ContractChangeKind.TYPE_CHANGED,
                subject,
                f"Type {old.data_type} -> {new.data_type}.",
                path_join(new.path, "physicalType"),
            )
        )
    if old.nullable and not new.nullable:
        changes.append(
            ContractChange(
                ContractChangeKind.COLUMN_REQUIRED,
                subject,
                "Now required: rows with an empty value break the contract.",
                path_join(new.path, "required"),
            )
        )
    elif new.nullable and not old.nullable:
        changes.append(
            ContractChange(
                ContractChangeKind.COLUMN_RELAXED,
                subject,
                "No longer required.",
                path_join(new.path, "required"),
            )
        )
    documented = [
        f"{label} {getattr(old, name)!r} -> {getattr(new, name)!r}"
        for name, label in (
            ("classification", "classification"),
            ("primary_key", "primary key"),
            ("description", "description"),
        )
        if getattr(old, name) != getattr(new, name)
    ]
    if old_type != new_type and not (old_type and new_type):
        documented.append(f"type {old.data_type!r} -> {new.data_type!r}")
    if documented:
        changes.append(
            ContractChange(
                ContractChangeKind.COLUMN_CHANGED,
                subject,
                "; ".join(documented)[:500] + ".",
                new.path,
            )
        )
    return changes


def _check_changes(port: str, old: MappedCheck, new: MappedCheck) -> list[ContractChange]:
    subject = f"{port} / {new.name}"
    reasons = _tightened(old, new) if old.kind == new.kind else []
    if reasons:
        return [
            ContractChange(
                ContractChangeKind.TOLERANCE_TIGHTENED,
                subject,
                "Tightened: " + "; ".join(reasons) + ".",
                new.path,
            )
        ]
    differences = [
        name
        for name in ("kind", "column", "params", "tolerance_percent", "severity", "schedule")
        if getattr(old, name) != getattr(new, name)
    ]
    if not differences:
        return []
    return [
        ContractChange(
            ContractChangeKind.CHECK_CHANGED,
            subject,
            f"Changed: {', '.join(differences)}.",
            new.path,
        )
    ]


def contract_diff(*, old: dict | None, new: dict) -> list[ContractChange]:
    """What changes from one contract document to another, in the catalog's terms, each
    change marked breaking or not. `old` None: the first version (nothing breaks)."""
    if old is None:
        return []
    before, after = contract_map(old), contract_map(new)
    changes: list[ContractChange] = []
    old_ports = {port.slug: port for port in before.ports}
    new_ports = {port.slug: port for port in after.ports}
    for slug, old_port in old_ports.items():
        new_port = new_ports.get(slug)
        if new_port is None:
            changes.extend(
                ContractChange(
                    ContractChangeKind.COLUMN_REMOVED,
                    f"{old_port.name}.{c.name}",
                    f"Removed with the object {old_port.name}.",
                    c.path,
                )
                for c in old_port.columns
            )
            changes.extend(
                ContractChange(
                    ContractChangeKind.CHECK_REMOVED,
                    f"{old_port.name} / {c.name}",
                    f"Removed with the object {old_port.name}.",
                    c.path,
                )
                for c in old_port.checks
            )
            continue
        name = new_port.name
        old_columns = {c.name: c for c in old_port.columns}
        new_columns = {c.name: c for c in new_port.columns}
        for column in old_port.columns:
            if column.name not in new_columns:
                changes.append(
                    ContractChange(
                        ContractChangeKind.COLUMN_REMOVED,
                        f"{name}.{column.name}",
                        "Removed: queries that read it will fail.",
                        column.path,
                    )
                )
        for column in new_port.columns:
            previous = old_columns.get(column.name)
            if previous is None:
                changes.append(
                    ContractChange(
                        ContractChangeKind.COLUMN_ADDED,
                        f"{name}.{column.name}",
                        f"Added ({column.data_type or 'no type'}"
                        f"{', required' if not column.nullable else ''}).",
                        column.path,
                    )
                )
            else:
                changes.extend(_column_changes(name, previous, column))
        old_checks = {c.name: c for c in old_port.checks}
        new_checks = {c.name: c for c in new_port.checks}
        for check in old_port.checks:
            if check.name not in new_checks:
                changes.append(
                    ContractChange(
                        ContractChangeKind.CHECK_REMOVED,
                        f"{name} / {check.name}",
                        "Removed.",
                        check.path,
                    )
                )
        for check in new_port.checks:
            previous = old_checks.get(check.name)
            if previous is None:
                changes.append(
                    ContractChange(
                        ContractChangeKind.CHECK_ADDED,
                        f"{name} / {check.name}",
                        f"Added ({CheckKind(check.kind).label.lower()}).",
                        check.path,
                    )
                )
            else:
                changes.extend(_check_changes(name, previous, check))
    for slug, new_port in new_ports.items():
        if slug not in old_ports:
            changes.extend(
                ContractChange(
                    ContractChangeKind.COLUMN_ADDED,
                    f"{new_port.name}.{c.name}",
                    f"Added with the object {new_port.name}.",
                    c.path,
                )
                for c in new_port.columns
            )
            changes.extend(
                ContractChange(
                    ContractChangeKind.CHECK_ADDED,
                    f"{new_port.name} / {c.name}",
                    f"Added with the object {new_port.name}.",
                    c.path,
                )
                for c in new_port.checks
            )
    if before.slos is not None or after.slos is not None:
        old_slos = {s.kind: s for s in before.slos or []}
        new_slos = {s.kind: s for s in after.slos or []}
        for kind in sorted(set(old_slos) | set(new_slos)):
            a, b = old_slos.get(kind), new_slos.get(kind)
            strip = lambda s: {k: v for k, v in asdict(s).items() if k != "path"}  # noqa: E731
            if a is None or b is None or strip(a) != strip(b):
                words = "Added" if a is None else "Removed" if b is None else "Changed"
                changes.append(
                    ContractChange(
                        ContractChangeKind.SLO_CHANGED,
                        sla_property(b or a)["property"],
                        f"{words}.",
                        (b or a).path,
                    )
                )
    for field_name in sorted(set(before.product) | set(after.product)):
        if before.product.get(field_name) != after.product.get(field_name):
            changes.append(
                ContractChange(
                    ContractChangeKind.PRODUCT_CHANGED,
                    field_name.replace("_", " "),
                    "Changed.",
                    after.product_paths.get(field_name, "$.description"),
                )
            )
    if before.tags != after.tags and after.tags is not None:
        changes.append(
            ContractChange(ContractChangeKind.PRODUCT_CHANGED, "tags", "Changed.", "$.tags")
        )
    order = {kind: i for i, kind in enumerate(ContractChangeKind.values)}
    return sorted(changes, key=lambda c: (not c.breaking, order[c.kind], c.subject))


def contract_text_diff(*, old: Contract, new: Contract) -> list[str]:
    """A unified diff of the two versions' YAML, line by line, for people who want it."""
    return list(
        difflib.unified_diff(
            contract_yaml(contract=old).splitlines(),
            contract_yaml(contract=new).splitlines(),
            fromfile=f"version {old.version}",
            tofile=f"version {new.version}",
            lineterm="",
        )
    )


# --- export ----------------------------------------------------------------------------------


def product_uuid(product: DataProduct, *, of: str = "product") -> str:
    """A stable identifier of the product (or of its contract) for ODPS and ODCS."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{settings.PORTAL_SITE_URL}#{product.key}#{of}"))


def contract_id_for(*, product: DataProduct) -> str:
    """The ODCS `id` of the product's contract: its current version's, or one derived
    from the product's key."""
    current = contract_current(product=product)
    if current is not None and current.contract_id:
        return current.contract_id
    return product_uuid(product, of="contract")


def _utc(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _server(port: OutputPort) -> dict[str, Any]:
    """A port's location, naming the registered source but never its host or path."""
    if port.kind == PortKind.FILE:
        return {
            "id": port.slug,
            "server": port.slug,
            "type": "local",
            "description": f"A {port.file_format or 'file'} file in the portal's storage.",
            "path": port.file_path,
            "format": port.file_format or "parquet",
        }
    server: dict[str, Any] = {
        "id": port.slug,
        "server": port.source.name if port.source_id else port.slug,
        "type": "custom",
        "description": "A data source registered in the portal, by name.",
    }
    if port.schema_name:
        server["schema"] = port.schema_name
    return server


def product_description(*, product: DataProduct) -> dict[str, Any]:
    """The product's purpose as ODCS and ODPS both write it (`description`: purpose, usage,
    and the rest as customProperties); empty when nothing is documented."""
    description: dict[str, Any] = {}
    if product.description:
        description["purpose"] = product.description
    if product.purpose_use_case:
        description["usage"] = product.purpose_use_case
    custom = [
        {"property": prop, "value": getattr(product, field_name)}
        for prop, field_name in (
            ("summary", "summary"),
            ("intendedUsers", "purpose_intended_users"),
            ("expectedOutcome", "purpose_expected_outcome"),
        )
        if getattr(product, field_name)
    ]
    if custom:
        description["customProperties"] = custom
    return description


def contract_export(*, product: DataProduct) -> dict[str, Any]:
    """The catalog's state of the product as an ODCS v3.1.0 document (valid against the
    schema; importing it gives back the same mapped fields)."""

    current = contract_current(product=product)
    document: dict[str, Any] = {
        "apiVersion": ODCS_API_VERSION,
        "kind": "DataContract",
        "id": contract_id_for(product=product),
        "name": product.name,
        "version": product.version,
        "status": LIFECYCLE_TO_ODCS.get(product.status, str(product.status)),
        "domain": product.domain.slug,
    }
    description = product_description(product=product)
    if description:
        document["description"] = description
    tags = [tag.name for tag in product.tags.all()]
    if tags:
        document["tags"] = tags

    ports = list(
        OutputPort.objects.filter(product=product)
        .select_related("source")
        .prefetch_related("columns", "checks")
        .order_by("name")
    )
    if ports:
        document["servers"] = [_server(port) for port in ports]
        document["schema"] = [_schema_object(port) for port in ports]
    else:
        document["schema"] = []

    owners = list(product.owners.order_by("username"))
    if owners:
        document["team"] = {
            "name": product.domain.name,
            "members": [
                {"username": user.username, "role": "owner"}
                | ({"name": user.get_full_name()} if user.get_full_name() else {})
                for user in owners
            ],
        }
    channels = list(support_channels_of(product=product))
    if channels:
        document["support"] = [
            {"channel": c.channel}
            | {
                key: getattr(c, key)
                for key in ("url", "tool", "scope", "description")
                if getattr(c, key)
            }
            for c in channels
        ]
    slos = list(ServiceLevelObjective.objects.filter(product=product).order_by("kind"))
    if slos:
        document["slaProperties"] = [sla_property(slo) for slo in slos]
    document["contractCreatedTs"] = _utc(current.created_at if current else timezone.now())
    problems = odcs_validate(document)
    if problems:  # a bug, not bad input: the export must always be valid
        raise RuntimeError(f"The ODCS export of {product.key} is invalid: {problems[:5]}")
    return document


def _schema_object(port: OutputPort) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "name": port.name,
        "physicalType": "file" if port.kind == PortKind.FILE else "table",
    }
    if port.kind == PortKind.TABLE and port.table_name:
        obj["physicalName"] = port.table_name
    if port.description:
        obj["description"] = port.description
    columns = sorted(port.columns.all(), key=lambda c: (c.position, c.name))
    checks = sorted((c for c in port.checks.all() if c.enabled), key=lambda c: c.name)
    by_column: dict[str, list] = {}
    for check in checks:
        if check.column:
            by_column.setdefault(check.column, []).append(check)
    properties = []
    pk_position = 0
    for column in columns:
        prop: dict[str, Any] = {"name": column.name}
        if column.primary_key:
            pk_position += 1
            prop.update(primaryKey=True, primaryKeyPosition=pk_position)
        logical = logical_type(column.data_type)
        if logical:
            prop["logicalType"] = logical
        if column.data_type:
            prop["physicalType"] = column.data_type
        prop["required"] = not column.nullable
        if column.description:
            prop["description"] = column.description
        prop["classification"] = column.classification
        rules = [quality_rule(check) for check in by_column.pop(column.name, [])]
        if rules:
            prop["quality"] = rules
        properties.append(prop)
    obj["properties"] = properties
    # Checks on the whole table, and column checks whose column the port no longer has.
    table_rules = [quality_rule(check) for check in checks if not check.column]
    for orphans in by_column.values():
        for check in orphans:
            rule = quality_rule(check)
            if rule["type"] == "custom":
                rule["implementation"]["column"] = check.column
                table_rules.append(rule)
    if table_rules:
        obj["quality"] = table_rules
    obj["customProperties"] = [{"property": SERVER_PROPERTY, "value": port.slug}]
    return obj
