"""Choices of access and sharing, kept beside their models."""

from django.db import models


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    CANCELLED = "cancelled", "Cancelled"


class Channel(models.TextChoices):
    PREVIEW = "preview", "Preview"
    API = "api", "API"
    DOWNLOAD = "download", "Download"
    NOTEBOOK = "notebook", "Notebook"
    SHARE_LINK = "share_link", "Share link"
    EXPORT = "export", "Export"
    DELTA_SHARING = "delta_sharing", "Delta Sharing"
    WEB = "web", "Web"
    STREAM = "stream", "Stream"
    SYNC = "sync", "Sync (reverse ETL)"
    QUERY = "query", "SQL query"
    EMBED = "embed", "Embedded analytics"


class AuditAction(models.TextChoices):
    READ = "read", "Read"
    READ_DENIED = "read_denied", "Read refused"
    REQUEST = "request", "Access requested"
    APPROVE = "approve", "Request approved"
    DENY = "deny", "Request denied"
    CANCEL = "cancel", "Request withdrawn"
    GRANT = "grant", "Access granted"
    REVOKE = "revoke", "Access revoked"
    EXPIRY_NOTICE = "expiry_notice", "Expiry notice sent"


class DataFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON"
    PARQUET = "parquet", "Parquet"
    ARROW = "arrow", "Arrow IPC stream"
    JSONL = "jsonl", "JSON lines"
    XLSX = "xlsx", "Excel (XLSX)"


FILTER_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "is not null")


# Formats of files: share-link downloads and scheduled exports.
FILE_FORMATS = ("csv", "parquet", "xlsx", "jsonl")
XLSX_MAX_ROWS = 1_048_575  # Excel's 1,048,576 rows, one of them the header


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    HELD = "held", "Held by the quality gate"
    FAILED = "failed", "Failed"


FINISHED_EXPORT_STATUSES = (ExportStatus.SUCCEEDED, ExportStatus.HELD, ExportStatus.FAILED)


class ExportTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Run now"


class QueryStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused"
    CANCELLED = "cancelled", "Cancelled"


class EmbedChart(models.TextChoices):
    KPI = "kpi", "KPI tile with sparkline"
    LINE = "line", "Line chart"
    BAR = "bar", "Bar chart"
    AREA = "area", "Area chart"
    TABLE = "table", "Table"


class EmbedKeyAlgorithm(models.TextChoices):
    EDDSA = "EdDSA", "Ed25519 (EdDSA)"
    RS256 = "RS256", "RSA (RS256)"
