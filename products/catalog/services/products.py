from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from portal.core.cron import cron_parse
from portal.core.task_queue import enqueue_on_commit
from products.catalog.permissions import can_edit_product, can_manage_domain, managers_only_message
from products.catalog.services.events import product_event_emit
from products.catalog.services.search_index import catalog_changed, product_search_index_update
from products.choices import LIFECYCLE_TRANSITIONS, LifecycleStatus
from products.models import DataProduct, Domain, Tag

MAX_TAGS = 20

# Fields a product's editors may set through product_create / product_update.
EDITABLE_FIELDS = (
    "name",
    "summary",
    "description",
    "purpose_use_case",
    "purpose_intended_users",
    "purpose_expected_outcome",
    "audience",
    "version",
    "check_schedule",
    "feedback_response_days",
)


def _normalise_tags(tags: Iterable[str]) -> list[str]:
    names: list[str] = []
    for raw in tags:
        name = slugify(str(raw))[:60]
        if name and name not in names:
            names.append(name)
    if len(names) > MAX_TAGS:
        raise ValidationError({"tags": f"At most {MAX_TAGS} tags."})
    return names


def _set_tags(product: DataProduct, tags: Iterable[str]) -> None:
    names = _normalise_tags(tags)
    existing = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=name) for name in names if name not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    product.tags.set([existing[name] for name in names])


def _validate_check_schedule(product: DataProduct) -> None:
    try:
        cron_parse(product.check_schedule)
    except ValueError as exc:
        raise ValidationError({"check_schedule": str(exc)}) from exc


def _check_owners(owners) -> list:
    owners = list(owners)
    User = get_user_model()
    for owner in owners:
        if not isinstance(owner, User):
            raise ValidationError({"owners": "Owners must be existing users."})
    return owners


@transaction.atomic
def product_create(
    *,
    domain: Domain,
    name: str,
    by,
    slug: str = "",
    tags: Iterable[str] = (),
    owners: Iterable | None = None,
    **fields,
) -> DataProduct:
    """Create a draft product in a domain the author manages. Its owners default to the
    author."""
    if not can_manage_domain(user=by, domain=domain):
        raise PermissionDenied(managers_only_message(domain, "create products in it", admins=False))
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be set." for field in unknown})
    product = DataProduct(
        domain=domain,
        name=(name or "").strip(),
        slug=slug or slugify(name or "")[:80],
        created_by=by if getattr(by, "is_authenticated", False) else None,
        status=LifecycleStatus.DRAFT,
        **fields,
    )
    # full_clean reports the (domain, slug) constraint as a non-field error; say it on slug.
    if product.slug and DataProduct.objects.filter(domain=domain, slug=product.slug).exists():
        raise ValidationError(
            {"slug": f"{domain.name} already has a product {product.key}; choose another slug."}
        )
    product.full_clean()
    _validate_check_schedule(product)
    product.save()
    _set_tags(product, tags)
    product.owners.set(_check_owners(owners if owners is not None else [by]))
    product_search_index_update(product_ids=[product.pk])
    product_event_emit("portal.product.created", product=product)
    return product


@transaction.atomic
def product_update(
    *,
    product: DataProduct,
    by,
    tags: Iterable[str] | None = None,
    owners: Iterable | None = None,
    **fields,
) -> DataProduct:
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied("Only the domain's owners and stewards edit this product.")
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: "This field cannot be changed here." for field in unknown})
    schedule_before = product.check_schedule
    version_before = product.version
    for field, value in fields.items():
        setattr(product, field, value.strip() if isinstance(value, str) else value)
    product.full_clean()
    _validate_check_schedule(product)
    product.save()
    if product.check_schedule != schedule_before:
        # The checks' beat schedules belong to trust (a feature above the catalog).
        enqueue_on_commit("products.tasks.check_schedules_sync", product.pk)
    if tags is not None:
        _set_tags(product, tags)
    if owners is not None:
        owners = _check_owners(owners)
        if not owners and product.status != LifecycleStatus.DRAFT:
            raise ValidationError({"owners": "A published product needs at least one owner."})
        product.owners.set(owners)
    product_search_index_update(product_ids=[product.pk])
    if product.version != version_before:
        product_event_emit(
            "portal.product.version_changed",
            product=product,
            data={"previous_version": version_before},
        )
    return product


# The event each lifecycle transition writes (deprecated -> published: published again).
TRANSITION_EVENTS = {
    LifecycleStatus.PUBLISHED: "portal.product.published",
    LifecycleStatus.DEPRECATED: "portal.product.deprecated",
    LifecycleStatus.RETIRED: "portal.product.retired",
}


def _transition(*, product: DataProduct, by, to: str) -> DataProduct:
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied(
            "Only the domain's owners and stewards, or admins, change a product's lifecycle."
        )
    with transaction.atomic():
        product = DataProduct.objects.select_for_update().get(pk=product.pk)
        allowed = LIFECYCLE_TRANSITIONS[LifecycleStatus(product.status)]
        if to not in allowed:
            raise ValidationError(
                {
                    "status": f"A {product.get_status_display().lower()} product cannot become "
                    f"{LifecycleStatus(to).label.lower()}."
                }
            )
        now = timezone.now()
        product.status = to
        if to == LifecycleStatus.PUBLISHED:
            product.published_at = now
        elif to == LifecycleStatus.DEPRECATED:
            product.deprecated_at = now
        elif to == LifecycleStatus.RETIRED:
            product.retired_at = now
        product.save(
            update_fields=["status", "published_at", "deprecated_at", "retired_at", "updated_at"]
        )
        catalog_changed()  # who may find it has changed
        product_event_emit(TRANSITION_EVENTS[to], product=product)
    return product


def publish_blockers(product: DataProduct) -> list[str]:
    """What stops a product from being published, in words its owner can act on."""
    blockers = []
    if not product.description.strip():
        blockers.append("Write a description.")
    if not product.owners.exists():
        blockers.append("Name at least one owner.")
    if not product.ports.exists():
        blockers.append("Add at least one output port.")
    return blockers


def product_publish(*, product: DataProduct, by) -> DataProduct:
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied(
            "Only the domain's owners and stewards, or admins, publish a product."
        )
    blockers = publish_blockers(product)
    if blockers:
        raise ValidationError({"status": blockers})
    return _transition(product=product, by=by, to=LifecycleStatus.PUBLISHED)


def product_deprecate(*, product: DataProduct, by) -> DataProduct:
    return _transition(product=product, by=by, to=LifecycleStatus.DEPRECATED)


def product_retire(*, product: DataProduct, by) -> DataProduct:
    return _transition(product=product, by=by, to=LifecycleStatus.RETIRED)
