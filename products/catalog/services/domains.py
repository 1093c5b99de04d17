from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.text import slugify

from products.catalog.permissions import can_manage_members, user_is_admin
from products.choices import MembershipRole
from products.models import Domain, DomainMembership


def domain_create(*, name: str, slug: str = "", description: str = "", by) -> Domain:
    if not user_is_admin(by):
        raise PermissionDenied("Only admins create domains.")
    domain = Domain(name=name.strip(), slug=slug or slugify(name), description=description)
    domain.full_clean()
    domain.save()
    return domain


@transaction.atomic
def domain_member_set(*, domain: Domain, user, role: str, by) -> DomainMembership:
    """Add a person to a domain's team, or change their role."""
    if not can_manage_members(user=by, domain=domain):
        raise PermissionDenied("Only the domain's owners and admins change its team.")
    if role not in MembershipRole.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(MembershipRole.values)}."})
    membership, _ = DomainMembership.objects.update_or_create(
        domain=domain, user=user, defaults={"role": role}
    )
    return membership
