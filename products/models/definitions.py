"""Shared definitions: glossary terms (versioned business definitions owned by a domain,
linked to the products and columns that use them) and metrics (one computation over an
output port, evaluated by the same code for the page, the API and the notebook)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from products.choices import PUBLIC_TERM_STATUSES, MetricAggregation, TermStatus
from products.models.domains import Domain, DomainMembership
from products.models.ports import Column, OutputPort
from products.models.products import DataProduct


class GlossaryTermQuerySet(models.QuerySet):
    def visible_to(self, user) -> "GlossaryTermQuerySet":
        """Which terms a user may read: approved and deprecated terms for every signed-in
        user; drafts for the owning domain's members and admins (like products)."""
        if user is None or not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self

        member_domains = DomainMembership.objects.filter(user_id=user.pk).values("domain_id")
        return self.filter(Q(status__in=PUBLIC_TERM_STATUSES) | Q(domain_id__in=member_domains))

    def get_by_key(self, key: str) -> "GlossaryTerm":
        """Look a term up by its key `<domain-slug>.<term-slug>`."""
        domain_slug, _, slug = key.partition(".")
        if not domain_slug or not slug:
            raise self.model.DoesNotExist(f"No term with key {key!r}")
        return self.get(domain__slug=domain_slug, slug=slug)


class GlossaryTerm(models.Model):
    """A business term and its definition (Markdown), owned by a domain whose owners and
    stewards approve it. Every change is kept as a GlossaryTermVersion."""

    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="glossary_terms")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=120)
    definition = models.TextField(help_text="Markdown")
    synonyms = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=TermStatus.choices, default=TermStatus.DRAFT)
    version = models.PositiveIntegerField(default=1)
    products = models.ManyToManyField(DataProduct, blank=True, related_name="glossary_terms")
    columns = models.ManyToManyField(Column, blank=True, related_name="glossary_terms")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GlossaryTermQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "slug"], name="term_slug_unique_in_domain")
        ]
        indexes = [models.Index(fields=["status", "domain"], name="term_status_domain_idx")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse(
            "definitions:term-detail",
            kwargs={"domain_slug": self.domain.slug, "term_slug": self.slug},
        )

    @property
    def key(self) -> str:
        return f"{self.domain.slug}.{self.slug}"


class GlossaryTermVersion(models.Model):
    """A snapshot of a term after one change: who changed which fields, when and why."""

    term = models.ForeignKey(GlossaryTerm, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    definition = models.TextField()
    synonyms = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=TermStatus.choices)
    changes = models.JSONField(default=list, blank=True)  # names of the fields changed
    change_note = models.CharField(max_length=500, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["term", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["term", "number"], name="one_term_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.term} v{self.number}"


class Metric(models.Model):
    """One definition of a computation over an output port: a measure (an aggregation of
    a column, or the ratio of two), fixed filters, the dimensions it may be grouped by and
    a time column for day, week and month grains. Evaluated as one SQL query on the
    port's source (products.definitions.services.metrics)."""

    key = models.CharField(
        max_length=160, unique=True, help_text="`<domain-slug>.<name>`, e.g. sales.revenue"
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown")
    port = models.ForeignKey(OutputPort, on_delete=models.CASCADE, related_name="metrics")
    aggregation = models.CharField(max_length=16, choices=MetricAggregation.choices)
    column = models.CharField(max_length=255, blank=True, help_text="Blank: count rows.")
    # A ratio: the measure above divided by this one (NULL where it is 0).
    denominator_aggregation = models.CharField(
        max_length=16, choices=MetricAggregation.choices, blank=True
    )
    denominator_column = models.CharField(max_length=255, blank=True)
    # [{"column": "status", "op": "!=", "value": "cancelled"}, ...], all must hold.
    filters = models.JSONField(default=list, blank=True)
    dimensions = models.JSONField(default=list, blank=True)
    time_column = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    def get_absolute_url(self) -> str:
        return reverse("definitions:metric-detail", kwargs={"key": self.key})

    @property
    def is_ratio(self) -> bool:
        return bool(self.denominator_aggregation)
