"""The business glossary: terms owned by a domain, proposed by its members, approved by
its owners and stewards, versioned on every change, and linked to the products and
columns that use them.

Who may do what:
- any member of the owning domain (and admins) proposes a term and edits its drafts;
- the domain's owners and stewards (and admins) approve, deprecate, and edit approved or
  deprecated terms;
- a product's editors (its domain's owners and stewards, admins) link terms to the product
  and its columns.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from products.catalog.permissions import (
    can_edit_product,
    domain_role,
    managers_only_message,
    user_is_admin,
)
from products.choices import MANAGING_ROLES, TermStatus
from products.models import Column, DataProduct, Domain, GlossaryTerm, GlossaryTermVersion

MAX_SYNONYMS = 20
MAX_SYNONYM_LENGTH = 100
MAX_NOTE_LENGTH = 500
CONTENT_FIELDS = ("name", "definition", "synonyms")

# Status changes: action -> (statuses it starts from, status it leads to).
TERM_TRANSITIONS = {
    "approve": ((TermStatus.DRAFT, TermStatus.DEPRECATED), TermStatus.APPROVED),
    "deprecate": ((TermStatus.DRAFT, TermStatus.APPROVED), TermStatus.DEPRECATED),
}


# --- permissions -------------------------------------------------------------------------


def can_propose_term(*, user, domain: Domain) -> bool:
    """Members of the domain (any role) and admins propose terms and edit drafts."""
    return user_is_admin(user) or domain_role(user=user, domain=domain) is not None


def can_approve_term(*, user, domain: Domain) -> bool:
    """Owners and stewards of the domain, and admins."""
    return user_is_admin(user) or domain_role(user=user, domain=domain) in MANAGING_ROLES


def can_edit_term(*, user, term: GlossaryTerm) -> bool:
    if term.status == TermStatus.DRAFT:
        return can_propose_term(user=user, domain=term.domain)
    return can_approve_term(user=user, domain=term.domain)


def term_domains_for(*, user):
    """Domains in which the user may propose terms."""
    if user_is_admin(user):
        return Domain.objects.all()
    if not user or not user.is_authenticated:
        return Domain.objects.none()
    return Domain.objects.filter(memberships__user_id=user.pk).distinct()


# --- input -------------------------------------------------------------------------------


def _clean_synonyms(synonyms, *, name: str) -> list[str]:
    if synonyms is None:
        return []
    if isinstance(synonyms, str):
        synonyms = synonyms.split(",")
    if not isinstance(synonyms, list | tuple):
        raise ValidationError({"synonyms": "Give the synonyms as a list of words or phrases."})
    cleaned: list[str] = []
    seen = {name.strip().casefold()}
    for value in synonyms:
        if not isinstance(value, str):
            raise ValidationError({"synonyms": "Each synonym is a word or phrase (text)."})
        text = " ".join(value.split())
        if not text or text.casefold() in seen:
            continue
        if len(text) > MAX_SYNONYM_LENGTH:
            raise ValidationError(
                {"synonyms": f"“{text[:30]}…” is longer than {MAX_SYNONYM_LENGTH} characters."}
            )
        seen.add(text.casefold())
        cleaned.append(text)
    if len(cleaned) > MAX_SYNONYMS:
        raise ValidationError({"synonyms": f"At most {MAX_SYNONYMS} synonyms."})
    return cleaned


def _clean_content(*, name, definition, synonyms) -> dict:
    errors: dict[str, str] = {}
    name = " ".join((name or "").split())
    definition = (definition or "").strip()
    if not name:
        errors["name"] = "Name the term, as people say it (for example “Net revenue”)."
    elif len(name) > 200:
        errors["name"] = "At most 200 characters."
    elif not slugify(name):
        errors["name"] = "The name needs at least one letter or digit."
    if not definition:
        errors["definition"] = "Write the definition: what the term means and how it is counted."
    if errors:
        raise ValidationError(errors)
    return {
        "name": name,
        "definition": definition,
        "synonyms": _clean_synonyms(synonyms, name=name),
    }


def _note(note: str | None) -> str:
    return " ".join((note or "").split())[:MAX_NOTE_LENGTH]


def _snapshot(term: GlossaryTerm, *, by, changes: list[str], note: str) -> GlossaryTermVersion:
    return GlossaryTermVersion.objects.create(
        term=term,
        number=term.version,
        name=term.name,
        definition=term.definition,
        synonyms=list(term.synonyms),
        status=term.status,
        changes=changes,
        change_note=_note(note),
        changed_by=by if getattr(by, "is_authenticated", False) else None,
        changed_at=term.updated_at,
    )


def _unique_slug(domain: Domain, name: str) -> str:
    base = slugify(name)[:110]
    slug, n = base, 2
    while GlossaryTerm.objects.filter(domain=domain, slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


# --- writes ------------------------------------------------------------------------------


@transaction.atomic
def term_create(
    *, domain: Domain, by, name: str, definition: str, synonyms=None, note: str = ""
) -> GlossaryTerm:
    """Propose a term in `domain` (a draft until its owners or stewards approve it)."""
    if not can_propose_term(user=by, domain=domain):
        raise PermissionDenied(
            f"Only members of the {domain.name} domain, and admins, propose its terms."
        )
    content = _clean_content(name=name, definition=definition, synonyms=synonyms)
    if GlossaryTerm.objects.filter(domain=domain, name__iexact=content["name"]).exists():
        raise ValidationError(
            {"name": f"The {domain.name} glossary already has a term “{content['name']}”."}
        )
    term = GlossaryTerm.objects.create(
        domain=domain,
        slug=_unique_slug(domain, content["name"]),
        status=TermStatus.DRAFT,
        version=1,
        created_by=by,
        **content,
    )
    _snapshot(term, by=by, changes=["created"], note=note)
    return term


@transaction.atomic
def term_update(
    *,
    term: GlossaryTerm,
    by,
    name: str | None = None,
    definition: str | None = None,
    synonyms=None,
    note: str = "",
) -> GlossaryTerm:
    """Change a term's name, definition or synonyms (None: unchanged). Drafts: any member
    of the domain; approved and deprecated terms: owners and stewards only. A change that
    changes nothing writes nothing; any other adds a version."""
    if not can_edit_term(user=by, term=term):
        if term.status == TermStatus.DRAFT:
            raise PermissionDenied(
                f"Only members of the {term.domain.name} domain, and admins, edit its terms."
            )
        raise PermissionDenied(
            f"This term is {term.get_status_display().lower()}: only owners and stewards of "
            f"the {term.domain.name} domain, and admins, change it."
        )
    term = GlossaryTerm.objects.select_for_update().get(pk=term.pk)
    content = _clean_content(
        name=term.name if name is None else name,
        definition=term.definition if definition is None else definition,
        synonyms=term.synonyms if synonyms is None else synonyms,
    )
    if (
        content["name"].casefold() != term.name.casefold()
        and GlossaryTerm.objects.filter(domain=term.domain_id, name__iexact=content["name"])
        .exclude(pk=term.pk)
        .exists()
    ):
        raise ValidationError(
            {"name": f"The {term.domain.name} glossary already has a term “{content['name']}”."}
        )
    changes = [field for field in CONTENT_FIELDS if getattr(term, field) != content[field]]
    if not changes:
        return term
    for field in changes:
        setattr(term, field, content[field])
    term.version += 1
    term.save()
    _snapshot(term, by=by, changes=changes, note=note)
    return term


@transaction.atomic
def term_status_change(*, term: GlossaryTerm, by, action: str, note: str = "") -> GlossaryTerm:
    """Approve or deprecate a term (owners and stewards of its domain, admins)."""
    if action not in TERM_TRANSITIONS:
        raise ValidationError({"action": f"Unknown action {action!r}: approve or deprecate."})
    if not can_approve_term(user=by, domain=term.domain):
        raise PermissionDenied(managers_only_message(term.domain, f"{action} its terms"))
    term = GlossaryTerm.objects.select_for_update().get(pk=term.pk)
    sources, target = TERM_TRANSITIONS[action]
    if term.status not in sources:
        raise ValidationError(
            {"status": f"This term is already {term.get_status_display().lower()}."}
        )
    term.status = target
    if target == TermStatus.APPROVED:
        term.approved_by, term.approved_at = by, timezone.now()
    term.version += 1
    term.save()
    _snapshot(term, by=by, changes=["status"], note=note)
    return term


def term_approve(*, term: GlossaryTerm, by, note: str = "") -> GlossaryTerm:
    return term_status_change(term=term, by=by, action="approve", note=note)


def term_deprecate(*, term: GlossaryTerm, by, note: str = "") -> GlossaryTerm:
    return term_status_change(term=term, by=by, action="deprecate", note=note)


# --- links ---------------------------------------------------------------------------


def _check_link(*, term: GlossaryTerm, product: DataProduct, by, linking: bool) -> None:
    if not can_edit_product(user=by, product=product):
        raise PermissionDenied(
            managers_only_message(product.domain, f"link glossary terms to {product.name}")
        )
    if not GlossaryTerm.objects.visible_to(by).filter(pk=term.pk).exists():
        raise ValidationError({"term": "There is no such term, or you may not see it."})
    if linking and term.status == TermStatus.DEPRECATED:
        raise ValidationError(
            {"term": f"“{term.name}” is deprecated: link the term that replaces it instead."}
        )


@transaction.atomic
def term_link_product(*, term: GlossaryTerm, product: DataProduct, by) -> None:
    """Say that `product` uses `term` (the product's editors)."""
    _check_link(term=term, product=product, by=by, linking=True)
    term.products.add(product)


@transaction.atomic
def term_unlink_product(*, term: GlossaryTerm, product: DataProduct, by) -> None:
    _check_link(term=term, product=product, by=by, linking=False)
    term.products.remove(product)


@transaction.atomic
def term_link_column(*, term: GlossaryTerm, column: Column, by) -> None:
    """Say that `column` holds what `term` means (the product's editors)."""
    _check_link(term=term, product=column.port.product, by=by, linking=True)
    term.columns.add(column)


@transaction.atomic
def term_unlink_column(*, term: GlossaryTerm, column: Column, by) -> None:
    _check_link(term=term, product=column.port.product, by=by, linking=False)
    term.columns.remove(column)
