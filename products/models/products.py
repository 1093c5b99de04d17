from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from products.choices import PUBLIC_STATUSES, Audience, LifecycleStatus
from products.models.domains import Domain, DomainMembership


class Tag(models.Model):
    name = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DataProductQuerySet(models.QuerySet):
    def visible_to(self, user) -> "DataProductQuerySet":
        """The one rule for which products' metadata a user may see.

        Anonymous: none. Admins: all. Signed-in users: published and deprecated products,
        plus every product of the domains they belong to (drafts, retired).
        """
        if user is None or not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self

        member_domains = DomainMembership.objects.filter(user_id=user.pk).values("domain_id")
        return self.filter(Q(status__in=PUBLIC_STATUSES) | Q(domain_id__in=member_domains))

    def get_by_key(self, key: str) -> "DataProduct":
        """Look a product up by its key `<domain-slug>.<product-slug>`."""
        domain_slug, _, slug = key.partition(".")
        if not domain_slug or not slug:
            raise self.model.DoesNotExist(f"No product with key {key!r}")
        return self.get(domain__slug=domain_slug, slug=slug)


class DataProduct(models.Model):
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80)
    summary = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True, help_text="Markdown")
    purpose_use_case = models.TextField("use case", blank=True)
    purpose_intended_users = models.TextField("intended users", blank=True)
    purpose_expected_outcome = models.TextField("expected outcome", blank=True)
    audience = models.CharField(max_length=16, choices=Audience.choices, default=Audience.INTERNAL)
    tags = models.ManyToManyField(Tag, blank=True, related_name="products")
    status = models.CharField(
        max_length=16, choices=LifecycleStatus.choices, default=LifecycleStatus.DRAFT
    )
    version = models.CharField(max_length=40, default="0.1.0")
    check_schedule = models.CharField(
        max_length=120,
        default="0 * * * *",
        help_text="Default cron schedule (5 fields, UTC) of the product's checks.",
    )
    access_max_days = models.PositiveIntegerField(
        default=90, help_text="The longest read access a request may ask for, in days."
    )
    access_auto_approve = models.BooleanField(
        default=False,
        help_text="Approve requests at once when they touch only public and internal columns.",
    )
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="owned_products"
    )
    feedback_response_days = models.PositiveSmallIntegerField(
        "feedback response objective",
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(30)],
        help_text="Business days (Monday to Friday) within which the team answers new "
        "feedback. Threads left unanswered longer lower the trust score's support component.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Weighted full-text document (PostgreSQL only), rebuilt by product_search_index_update.
    search_vector = SearchVectorField(null=True, editable=False)

    objects = DataProductQuerySet.as_manager()

    class Meta:
        ordering = ["domain__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "slug"], name="product_slug_unique_in_domain")
        ]
        indexes = [
            models.Index(fields=["status"], name="product_status_idx"),
            models.Index(fields=["name"], name="product_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse(
            "products:product-detail",
            kwargs={"domain_slug": self.domain.slug, "product_slug": self.slug},
        )

    @property
    def key(self) -> str:
        return f"{self.domain.slug}.{self.slug}"
