"""Access (requests, grants, audit), share links, scheduled exports and Delta Sharing."""

from sharing.models.access import AccessEvent, AccessGrant, AccessRequest
from sharing.models.delta_sharing import DeltaRecipient, DeltaShare, DeltaShareTable
from sharing.models.embeds import (
    Embed,
    EmbedApp,
    EmbedDeniedToken,
    EmbedKey,
    EmbedViewDay,
)
from sharing.models.exports import ExportRun, ExportSchedule
from sharing.models.federation import FederatedQuery, SavedQuery
from sharing.models.share_links import ShareLink
from sharing.models.syncs import (
    Sync,
    SyncDestination,
    SyncPlannedChange,
    SyncRecordState,
    SyncRejectedRecord,
    SyncRun,
)
from sharing.models.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)

__all__ = [
    "AccessEvent",
    "AccessGrant",
    "AccessRequest",
    "DeltaRecipient",
    "DeltaShare",
    "DeltaShareTable",
    "Embed",
    "EmbedApp",
    "EmbedDeniedToken",
    "EmbedKey",
    "EmbedViewDay",
    "ExportRun",
    "ExportSchedule",
    "FederatedQuery",
    "SavedQuery",
    "ShareLink",
    "Sync",
    "SyncDestination",
    "SyncPlannedChange",
    "SyncRecordState",
    "SyncRejectedRecord",
    "SyncRun",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
]
