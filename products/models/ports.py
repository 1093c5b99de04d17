from django.core.exceptions import ValidationError
from django.db import models

from products.choices import Classification, FileFormat, PortKind, SourceKind
from products.models.domains import Domain
from products.models.products import DataProduct

# `SourceAllowance.schema_name` that allows every schema of the source (system schemas and
# the portal's own metadata schemas stay refused).
ANY_SCHEMA = "*"


class DataSource(models.Model):
    """A connection to where data lives. Secrets are never stored here: `password_env`
    names the environment variable that holds the password on the web and worker hosts."""

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    description = models.TextField(blank=True)
    # PostgreSQL; Spark Connect (host, port: 15002, username: the session's user_id,
    # password_env: its token's variable, cluster_id: Databricks' cluster; ports name
    # `schema` or `catalog.schema`)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    database = models.CharField(max_length=120, blank=True)
    username = models.CharField(max_length=120, blank=True)
    password_env = models.CharField(
        "password environment variable",
        max_length=120,
        blank=True,
        help_text="Name of the environment variable holding the password (a Spark source: "
        "its token); never the password.",
    )
    cluster_id = models.CharField(
        "cluster id",
        max_length=100,
        blank=True,
        help_text="Databricks: the cluster to run on (sent as x-databricks-cluster-id); "
        "blank elsewhere.",
    )
    # DuckDB
    path = models.CharField(
        max_length=500, blank=True, help_text="Path of the DuckDB database file."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    domains = models.ManyToManyField(
        Domain,
        through="SourceAllowance",
        related_name="data_sources",
        blank=True,
        help_text="The domains whose ports may read this source (see its allowances).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SourceAllowance(models.Model):
    """An admin makes a data source available to a domain, for one schema (or every
    schema, `*`), and optionally only some relations of it. A port of the domain may name
    a relation of the source only within one of the domain's allowances."""

    source = models.ForeignKey(DataSource, on_delete=models.CASCADE, related_name="allowances")
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="source_allowances")
    schema_name = models.CharField(
        max_length=120,
        help_text="The schema the domain may use, verbatim (`warehouse`), or `*` for every "
        "schema. DuckDB's default schema is `main`, PostgreSQL's `public`.",
    )
    relations = models.JSONField(
        default=list,
        blank=True,
        help_text="Table or view names in that schema the domain may use; empty: all of them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source", "domain", "schema_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "domain", "schema_name"], name="one_allowance_per_schema"
            )
        ]

    def __str__(self) -> str:
        scope = ", ".join(self.relations) if self.relations else "*"
        return f"{self.domain} may use {self.source}: {self.schema_name}.{scope}"

    def clean(self) -> None:
        if not isinstance(self.relations, list) or not all(
            isinstance(name, str) and name for name in self.relations
        ):
            raise ValidationError(
                {"relations": 'A list of table or view names, for example ["orders"].'}
            )

    def allows(self, *, schema_name: str, table_name: str) -> bool:
        if self.schema_name not in (ANY_SCHEMA, schema_name):
            return False
        return not self.relations or table_name in self.relations


class StorageAllowance(models.Model):
    """A folder (or one file) of portal storage an admin lets a domain's file ports name,
    besides the domain's own uploads (`uploads/<domain>/`): files put in storage by hand."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="storage_allowances")
    path = models.CharField(
        max_length=500,
        help_text="Relative to the portal's media storage: a folder (`demo`) or one file.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["domain", "path"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "path"], name="one_storage_allowance")
        ]

    def __str__(self) -> str:
        return f"{self.domain} may use files under {self.path}"


class OutputPort(models.Model):
    """How a product is served: a table or view on a data source, a file in storage, or
    a NATS JetStream stream (messages as JSON objects)."""

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
    # Stream ports: a NATS JetStream stream on the portal's NATS server (settings.NATS_URL)
    # and the subject (a filter within the stream's subjects) whose messages the port serves.
    stream_name = models.CharField(
        max_length=120,
        blank=True,
        help_text="The JetStream stream, verbatim; it starts with the domain's prefix "
        "(SALES_ for the sales domain).",
    )
    stream_subject = models.CharField(
        max_length=255,
        blank=True,
        help_text="The subject within the stream whose messages the port serves "
        "(sales.live-orders, or sales.live-orders.> for a hierarchy).",
    )
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
        if self.kind == PortKind.STREAM:
            return f"stream {self.stream_name}: {self.stream_subject}"
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
