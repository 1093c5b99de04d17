from django.conf import settings
from django.db import models

from products.choices import MembershipRole


class Domain(models.Model):
    """A data-mesh domain (Sales, Marketing...): the team that owns data products."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    incident_webhook_url = models.URLField(
        blank=True,
        help_text="Incidents opening and resolving are POSTed here as JSON (Slack-compatible).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DomainMembership(models.Model):
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="domain_memberships"
    )
    role = models.CharField(max_length=16, choices=MembershipRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["domain", "user"], name="one_membership_per_domain")
        ]
        ordering = ["domain", "role", "user"]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.domain}"
