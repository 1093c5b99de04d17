from products.models.contracts import Contract, SupportChannel
from products.models.definitions import GlossaryTerm, GlossaryTermVersion, Metric
from products.models.domains import Domain, DomainMembership
from products.models.feedback import (
    Announcement,
    FeedbackComment,
    FeedbackStatusChange,
    FeedbackThread,
    ProductFollow,
)
from products.models.ports import (
    Column,
    DataSource,
    OutputPort,
    SourceAllowance,
    StorageAllowance,
)
from products.models.products import DataProduct, Tag
from products.models.runs import SchemaRefreshRun
from products.models.trust import (
    Check,
    CheckResult,
    CheckRun,
    Incident,
    IncidentEvent,
    PortObservation,
    ServiceLevelObjective,
    TrustScore,
)

__all__ = [
    "Check",
    "CheckResult",
    "CheckRun",
    "Incident",
    "IncidentEvent",
    "PortObservation",
    "ServiceLevelObjective",
    "TrustScore",
    "Column",
    "DataProduct",
    "DataSource",
    "Domain",
    "DomainMembership",
    "OutputPort",
    "SchemaRefreshRun",
    "SourceAllowance",
    "StorageAllowance",
    "Tag",
    "Contract",
    "SupportChannel",
    "Announcement",
    "FeedbackComment",
    "FeedbackStatusChange",
    "FeedbackThread",
    "ProductFollow",
    "GlossaryTerm",
    "GlossaryTermVersion",
    "Metric",
]
from products.models.retirement import (  # noqa: E402
    RetirementEvent,
    RetirementObjection,
    RetirementProposal,
)
from products.models.usage import (  # noqa: E402
    ProductPageView,
    ProductUsageSummary,
    UsageSummaryRun,
)

__all__ += [
    "ProductPageView",
    "ProductUsageSummary",
    "UsageSummaryRun",
    "RetirementEvent",
    "RetirementObjection",
    "RetirementProposal",
]
