"""Who may do what in the catalog. Every page, API view and task asks these functions;
none re-implements them. Which products a user may *see* is
`DataProduct.objects.visible_to(user)`; which they may *change* is decided here."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

from products.choices import MANAGING_ROLES, MembershipRole
from products.models import DataProduct, Domain, DomainMembership

User = AbstractBaseUser | AnonymousUser

# Said to someone who manages no domain when they try to create a product.
CREATORS_ONLY_MESSAGE = (
    "Only owners and stewards of a domain create products. Ask a domain owner "
    "to add you to their team."
)


def managers_only_message(domain: Domain, action: str, *, admins: bool = True) -> str:
    """The refusal of an action reserved to the domain's owners and stewards (and admins),
    one sentence for every page, API view and service, e.g. "Only owners and stewards of
    the Sales domain, and admins, change this product." (`action`: "change this product")."""
    who = f"Only owners and stewards of the {domain.name} domain"
    return f"{who}, and admins, {action}." if admins else f"{who} {action}."


def user_is_admin(user: User) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


def domain_role(*, user: User, domain: Domain) -> str | None:
    """The user's role in the domain, or None."""
    if not user or not user.is_authenticated:
        return None
    return (
        DomainMembership.objects.filter(user_id=user.pk, domain_id=domain.pk)
        .values_list("role", flat=True)
        .first()
    )


def can_manage_domain(*, user: User, domain: Domain) -> bool:
    """Owners and stewards of the domain, and admins: create and change its products."""
    if user_is_admin(user):
        return True
    return domain_role(user=user, domain=domain) in MANAGING_ROLES


def can_edit_product(*, user: User, product: DataProduct) -> bool:
    return can_manage_domain(user=user, domain=product.domain)


def require_product_editor(
    *, user: User, product: DataProduct, action: str = "change this product"
) -> None:
    """PermissionDenied (403) unless the user may change the product; the message names who
    may `action`."""
    if not can_edit_product(user=user, product=product):
        raise PermissionDenied(managers_only_message(product.domain, action))


def can_manage_members(*, user: User, domain: Domain) -> bool:
    """Domain owners and admins change a domain's team."""
    return user_is_admin(user) or domain_role(user=user, domain=domain) == MembershipRole.OWNER


def managed_domains(*, user: User):
    """Domains in which the user may create products."""
    if user_is_admin(user):
        return Domain.objects.all()
    if not user or not user.is_authenticated:
        return Domain.objects.none()
    return Domain.objects.filter(
        memberships__user_id=user.pk, memberships__role__in=MANAGING_ROLES
    ).distinct()
