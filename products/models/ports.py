from django.db import models

from products.choices import Classification, FileFormat, PortKind, SourceKind
from products.models.products import DataProduct


class DataSource(models.Model):
    """A connection to where data lives. Secrets are never stored here: `password_env`
    names the environment variable that holds the password on the web and worker hosts."""

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    description = models.TextField(blank=True)
    # PostgreSQL
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    database = models.CharField(max_length=120, blank=True)
    username = models.CharField(max_length=120, blank=True)
    password_env = models.CharField(
        "password environment variable",
        max_length=120,
        blank=True,
        help_text="Name of the environment variable holding the password; never the password.",
    )
    # DuckDB
    path = models.CharField(
        max_length=500, blank=True, help_text="Path of the DuckDB database file."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OutputPort(models.Model):
    """How a product is served: a table or view on a data source, or a file in storage."""

    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="ports")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=8, choices=PortKind.choices, default=PortKind.TABLE)
    source = models.ForeignKey(
        DataSource, null=True, blank=True, on_delete=models.PROTECT, related_name="ports"
    )
    schema_name = models.CharField(max_length=120, blank=True)
    table_name = models.CharField(max_length=120, blank=True)
    file_path = models.CharField(
        max_length=500, blank=True, help_text="Path relative to the portal's media storage."
    )
    file_format = models.CharField(max_length=8, choices=FileFormat.choices, blank=True)
    freshness_column = models.CharField(
        max_length=255,
        blank=True,
        help_text="Timestamp column whose newest value tells how fresh the data is.",
    )
    schema_refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product", "name"]
        constraints = [
            models.UniqueConstraint(fields=["product", "slug"], name="port_slug_unique_in_product")
        ]

    def __str__(self) -> str:
        return f"{self.product} / {self.name}"

    @property
    def location(self) -> str:
        """Where the data lives, for people (never includes a secret)."""
        if self.kind == PortKind.FILE:
            return f"{self.file_format or 'file'}: {self.file_path}"
        relation = ".".join(part for part in (self.schema_name, self.table_name) if part)
        return f"{self.source.name if self.source_id else '?'}: {relation}"


class Column(models.Model):
    port = models.ForeignKey(OutputPort, on_delete=models.CASCADE, related_name="columns")
    name = models.CharField(max_length=255)
    data_type = models.CharField(max_length=120, blank=True)
    description = models.TextField(blank=True)
    nullable = models.BooleanField(default=True)
    primary_key = models.BooleanField(
        default=False, help_text="Part of the primary key (declared in the contract)."
    )
    classification = models.CharField(
        max_length=16, choices=Classification.choices, default=Classification.INTERNAL
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["port", "position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["port", "name"], name="column_name_unique_in_port")
        ]

    def __str__(self) -> str:
        return self.name
