"""Embedded analytics: a chart, KPI tile or small table over a product port or a metric,
shown inside another application's pages (an iframe of `/embed/<id>/`).

Tables: Embed (what is shown, its locked parameters, allowed origins, cache time, row
cap), EmbedApp (a host application allowed to sign tokens for one embed, or for every
embed of a domain's products), EmbedKey (an app's public keys: the portal stores no
secret, the host signs with its private key), EmbedDeniedToken (a token id refused
before it expires), EmbedViewDay (views and downloads per embed, day and tenant).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from sharing.choices import EmbedChart, EmbedKeyAlgorithm


class Embed(models.Model):
    """One embeddable view. Over a metric (`metric` set: its values by `grain` or by one
    `dimension`) or over a port's rows (`columns`: the table's columns, or a chart's x
    then y). `locked_params` maps a parameter the host's token must carry to the column it
    filters on equality ({"tenant": "customer_id"}). It reads as its creator may read,
    decided again at every request."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    product = models.ForeignKey(
        "products.DataProduct", on_delete=models.CASCADE, related_name="embeds"
    )
    port = models.ForeignKey("products.OutputPort", on_delete=models.CASCADE, related_name="+")
    metric = models.ForeignKey(
        "products.Metric", null=True, blank=True, on_delete=models.CASCADE, related_name="embeds"
    )
    title = models.CharField(max_length=200)
    chart = models.CharField(max_length=8, choices=EmbedChart.choices)
    columns = models.JSONField(default=list, blank=True)
    grain = models.CharField(max_length=8, blank=True)
    dimension = models.CharField(max_length=255, blank=True)
    locked_params = models.JSONField(default=dict, blank=True)
    allowed_origins = models.JSONField(default=list)
    cache_seconds = models.PositiveIntegerField(default=60)
    row_cap = models.PositiveIntegerField(default=500)
    allow_csv = models.BooleanField(default=False)
    show_last_good = models.BooleanField(
        default=False,
        help_text="While the product has an open incident or a failing error check, show "
        "the last values served without one (with their date).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["product", "title"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None


class EmbedApp(models.Model):
    """A host application: for one embed, or for every embed of a domain's products."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    embed = models.ForeignKey(
        Embed, null=True, blank=True, on_delete=models.CASCADE, related_name="apps"
    )
    domain = models.ForeignKey(
        "products.Domain",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="embed_apps",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(embed__isnull=True) ^ Q(domain__isnull=True),
                name="embed_app_for_an_embed_or_a_domain",
            )
        ]

    def __str__(self) -> str:
        return self.name


class EmbedKey(models.Model):
    """A public key of an app, found by the `kid` of a token's header. Several keys at
    once let an app rotate with overlap; removing one refuses its tokens at once."""

    app = models.ForeignKey(EmbedApp, on_delete=models.CASCADE, related_name="keys")
    kid = models.CharField(max_length=100, unique=True)
    algorithm = models.CharField(max_length=8, choices=EmbedKeyAlgorithm.choices)
    public_key = models.TextField(help_text="PEM (SubjectPublicKeyInfo)")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["app", "created_at"]

    def __str__(self) -> str:
        return self.kid


class EmbedDeniedToken(models.Model):
    """A token id (`jti`) refused before it expires."""

    embed = models.ForeignKey(Embed, on_delete=models.CASCADE, related_name="denied_tokens")
    jti = models.CharField(max_length=200)
    denied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    denied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-denied_at"]
        constraints = [
            models.UniqueConstraint(fields=["embed", "jti"], name="embed_denied_jti_unique")
        ]

    def __str__(self) -> str:
        return self.jti


class EmbedViewDay(models.Model):
    """Data calls of an embed on one day (UTC) for one tenant (its locked parameters'
    values, "" when it locks none): views (the chart's data) and CSV downloads."""

    embed = models.ForeignKey(Embed, on_delete=models.CASCADE, related_name="view_days")
    day = models.DateField()
    tenant = models.CharField(max_length=300, blank=True)
    views = models.BigIntegerField(default=0)
    downloads = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["embed", "day", "tenant"], name="embed_view_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.embed_id} {self.day} {self.tenant}"
