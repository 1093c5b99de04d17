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
    SPARK = "spark", "Apache Spark (Spark Connect)"


class PortKind(models.TextChoices):
    TABLE = "table", "Table or view on a data source"
    FILE = "file", "File in portal storage"
    STREAM = "stream", "NATS JetStream stream"


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


# --- trust: checks, runs, SLOs, incidents ---------------------------------------------


class CheckKind(models.TextChoices):
    NOT_NULL = "not_null", "Not null"
    UNIQUE = "unique", "Unique"
    ACCEPTED_VALUES = "accepted_values", "Accepted values"
    RANGE = "range", "Range"
    PATTERN = "pattern", "Pattern"
    ROW_COUNT = "row_count", "Row count"
    FRESHNESS = "freshness", "Freshness"
    VOLUME_CHANGE = "volume_change", "Volume change"
    SCHEMA = "schema", "Schema"
    CUSTOM_SQL = "custom_sql", "Custom SQL"


# Checks that count failing rows (they take a tolerance and keep a sample of failing rows).
ROW_LEVEL_CHECKS = (
    CheckKind.NOT_NULL,
    CheckKind.UNIQUE,
    CheckKind.ACCEPTED_VALUES,
    CheckKind.RANGE,
    CheckKind.PATTERN,
)
# Checks that name a column.
COLUMN_CHECKS = (*ROW_LEVEL_CHECKS, CheckKind.FRESHNESS)


class Severity(models.TextChoices):
    ERROR = "error", "Error"
    WARN = "warn", "Warning"


class CheckOutcome(models.TextChoices):
    PASS = "pass", "Passed"
    FAIL = "fail", "Failed"
    ERROR = "error", "Error"  # could not be evaluated (missing column, bad SQL...)


class CheckRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    ERROR = "error", "Error"  # the source could not be reached or read


class CheckTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "On demand"


class SLOKind(models.TextChoices):
    FRESHNESS = "freshness", "Freshness"
    AVAILABILITY = "availability", "Availability"
    QUALITY = "quality", "Quality"
    # Stream ports: measured from the monitors' observations; the threshold is `value`.
    CONSUMER_LAG = "consumer_lag", "Consumer lag"
    INVALID_MESSAGES = "invalid_messages", "Invalid messages"
    # Declared in a contract (ODCS slaProperties) and shown, but not measured: the portal
    # observes no signal for them. They carry `value` and `unit` as written.
    FREQUENCY = "frequency", "Update frequency"
    RETENTION = "retention", "Retention"
    TIME_OF_AVAILABILITY = "time_of_availability", "Time of availability"


# SLOs measured over rolling windows (attainment, error budget, breach incidents).
STREAM_SLO_KINDS = (SLOKind.CONSUMER_LAG, SLOKind.INVALID_MESSAGES)
MEASURED_SLO_KINDS = (SLOKind.FRESHNESS, SLOKind.AVAILABILITY, SLOKind.QUALITY, *STREAM_SLO_KINDS)
DECLARED_SLO_KINDS = (SLOKind.FREQUENCY, SLOKind.RETENTION, SLOKind.TIME_OF_AVAILABILITY)


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


UNRESOLVED_INCIDENT_STATUSES = (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)


class IncidentCause(models.TextChoices):
    CHECK = "check", "Failing check"
    AVAILABILITY = "availability", "Source unreachable"
    SLO = "slo", "SLO breach"
    SYNC = "sync", "Sync failed or held"


class IncidentEventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    COMMENT = "comment", "Comment"
    RESOLVED = "resolved", "Resolved"


# --- contracts (ODCS) ------------------------------------------------------------------


class ContractStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class ContractChangeKind(models.TextChoices):
    # Breaking: consumers' queries or expectations may fail.
    COLUMN_REMOVED = "column_removed", "Column removed"
    TYPE_CHANGED = "type_changed", "Type changed"
    COLUMN_REQUIRED = "column_required", "Column made required"
    TOLERANCE_TIGHTENED = "tolerance_tightened", "Quality tolerance tightened"
    # Not breaking.
    COLUMN_ADDED = "column_added", "Column added"
    COLUMN_CHANGED = "column_changed", "Column documentation changed"
    COLUMN_RELAXED = "column_relaxed", "Column made optional"
    CHECK_ADDED = "check_added", "Quality rule added"
    CHECK_REMOVED = "check_removed", "Quality rule removed"
    CHECK_CHANGED = "check_changed", "Quality rule changed"
    SLO_CHANGED = "slo_changed", "Service level changed"
    PRODUCT_CHANGED = "product_changed", "Description changed"


BREAKING_CHANGE_KINDS = (
    ContractChangeKind.COLUMN_REMOVED,
    ContractChangeKind.TYPE_CHANGED,
    ContractChangeKind.COLUMN_REQUIRED,
    ContractChangeKind.TOLERANCE_TIGHTENED,
)
# --- feedback, announcements -------------------------------------------------------------


class FeedbackKind(models.TextChoices):
    QUESTION = "question", "Question"
    ISSUE = "issue", "Issue"
    REQUEST = "request", "Request"
    PRAISE = "praise", "Praise"


class FeedbackStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"
    DECLINED = "declined", "Declined"
    WITHDRAWN = "withdrawn", "Withdrawn"  # by its author: no answer needed any more


# Threads still waiting on the product's team (they count for the response objective).
UNRESOLVED_FEEDBACK_STATUSES = (FeedbackStatus.OPEN, FeedbackStatus.ACKNOWLEDGED)
# Kinds that expect an answer within the response objective (praise needs none).
ANSWER_EXPECTED_KINDS = (FeedbackKind.QUESTION, FeedbackKind.ISSUE, FeedbackKind.REQUEST)
CLOSED_FEEDBACK_STATUSES = (
    FeedbackStatus.RESOLVED,
    FeedbackStatus.DECLINED,
    FeedbackStatus.WITHDRAWN,
)
# Status changes the product's editors (owners, stewards, admins) make: from -> to.
FEEDBACK_TRANSITIONS = {
    FeedbackStatus.OPEN: (
        FeedbackStatus.ACKNOWLEDGED,
        FeedbackStatus.RESOLVED,
        FeedbackStatus.DECLINED,
    ),
    FeedbackStatus.ACKNOWLEDGED: (FeedbackStatus.RESOLVED, FeedbackStatus.DECLINED),
    FeedbackStatus.RESOLVED: (FeedbackStatus.OPEN,),
    FeedbackStatus.DECLINED: (FeedbackStatus.OPEN,),
    FeedbackStatus.WITHDRAWN: (FeedbackStatus.OPEN,),
}
# Statuses that need a note saying why (the resolution note).
FEEDBACK_NOTE_REQUIRED = (FeedbackStatus.RESOLVED, FeedbackStatus.DECLINED)


class AnnouncementKind(models.TextChoices):
    INFO = "info", "Information"
    MAINTENANCE = "maintenance", "Maintenance"
    BREAKING_CHANGE = "breaking_change", "Breaking change"
    DEPRECATION = "deprecation", "Deprecation"


# --- definitions: glossary terms and metrics --------------------------------------------


class TermStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"
    DEPRECATED = "deprecated", "Deprecated"


# Statuses of terms every signed-in user may read (drafts: the owning domain and admins).
PUBLIC_TERM_STATUSES = (TermStatus.APPROVED, TermStatus.DEPRECATED)


class MetricAggregation(models.TextChoices):
    SUM = "sum", "Sum"
    COUNT = "count", "Count"
    COUNT_DISTINCT = "count_distinct", "Count distinct"
    AVG = "avg", "Average"
    MIN = "min", "Minimum"
    MAX = "max", "Maximum"


# Aggregations over numbers only (count, count distinct, min and max take any type).
NUMERIC_AGGREGATIONS = (MetricAggregation.SUM, MetricAggregation.AVG)


class MetricGrain(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week (from Monday)"
    MONTH = "month", "Month"


# --- usage and retirement ---------------------------------------------------------------


class RetirementStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed (notice period)"
    OBJECTED = "objected", "Objected (waiting for the owners)"
    WITHDRAWN = "withdrawn", "Withdrawn"
    DEPRECATED = "deprecated", "Deprecated (grace period)"
    RETIRED = "retired", "Retired"


# Proposals still in progress: at most one per product.
OPEN_RETIREMENT_STATUSES = (
    RetirementStatus.PROPOSED,
    RetirementStatus.OBJECTED,
    RetirementStatus.DEPRECATED,
)


class RetirementEventKind(models.TextChoices):
    FLAGGED = "flagged", "Flagged as unused"
    PROPOSED = "proposed", "Retirement proposed"
    OBJECTED = "objected", "Objection"
    WITHDRAWN = "withdrawn", "Proposal withdrawn"
    PROCEEDED = "proceeded", "Owners proceed despite objections"
    BLOCKED = "blocked", "Step waiting: the proposer can no longer change the product"
    DEPRECATED = "deprecated", "Product deprecated"
    GRANTS_REVOKED = "grants_revoked", "Grants revoked"
    SHARE_LINKS_REVOKED = "share_links_revoked", "Share links revoked"
    SCHEDULES_ENDED = "schedules_ended", "Export schedules ended"
    RETIRED = "retired", "Product retired"
