"""Choices of the catalog, kept beside its models."""

from django.db import models


class MembershipRole(models.TextChoices):
    OWNER = "owner", "Owner"
    STEWARD = "steward", "Steward"
    MEMBER = "member", "Member"


# Roles that may change a domain's products (create, edit, lifecycle, schema refresh).
MANAGING_ROLES = (MembershipRole.OWNER, MembershipRole.STEWARD)


class LifecycleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"


# Statuses whose catalog metadata every signed-in user may read.
PUBLIC_STATUSES = (LifecycleStatus.PUBLISHED, LifecycleStatus.DEPRECATED)

# The lifecycle graph: status -> statuses it may move to.
LIFECYCLE_TRANSITIONS = {
    LifecycleStatus.DRAFT: (LifecycleStatus.PUBLISHED,),
    LifecycleStatus.PUBLISHED: (LifecycleStatus.DEPRECATED,),
    LifecycleStatus.DEPRECATED: (LifecycleStatus.PUBLISHED, LifecycleStatus.RETIRED),
    LifecycleStatus.RETIRED: (),
}


class Audience(models.TextChoices):
    INTERNAL = "internal", "Internal"
    EXTERNAL = "external", "External"


class SourceKind(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    DUCKDB = "duckdb", "DuckDB file"


class PortKind(models.TextChoices):
    TABLE = "table", "Table or view on a data source"
    FILE = "file", "File in portal storage"


class FileFormat(models.TextChoices):
    CSV = "csv", "CSV"
    PARQUET = "parquet", "Parquet"


class Classification(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


FINISHED_RUN_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED)
