"""Site-wide models: in-portal notifications (the bell in the top bar), and the outbox of
background work requested by services (portal.core.task_queue)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Notification(models.Model):
    """Something a person should see: a reply to their feedback, an announcement, an
    incident on a product they follow. `key` names what it is about ("feedback-comment:12")
    so that the same thing is never notified twice to the same person."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(max_length=300)
    body = models.CharField(max_length=1000, blank=True)
    url = models.CharField(max_length=500, blank=True, help_text="A path in the portal.")
    product = models.ForeignKey(
        "products.DataProduct",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    key = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"], condition=~Q(key=""), name="one_notification_per_key"
            )
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_time_idx"),
            models.Index(
                fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.title}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class QueuedTask(models.Model):
    """A request for background work that has no queued-run row of its own (a
    notification, an announcement's delivery): written in the transaction that asks for
    it, sent to the workers after the commit, re-sent by the reaper when the broker was
    down. See portal.core.task_queue."""

    task = models.CharField(max_length=200, help_text="The Celery task's name.")
    args = models.JSONField(default=list, blank=True)
    once = models.BooleanField(
        default=False, help_text="The task claims this row before it acts (claimed_at)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Sends tried.")
    last_error = models.CharField(max_length=500, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(sent_at__isnull=True),
                name="queued_task_unsent_idx",
            ),
            models.Index(fields=["sent_at"], name="queued_task_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)!r}"


class ApiToken(models.Model):
    """The portal's record of one API token (a django-rest-knox AuthToken, itself stored
    only as a digest): the name its holder gave it and when it last signed a request in.
    Deleted with its token, so revoking or expiring the token removes it too."""

    token = models.OneToOneField(
        "knox.AuthToken", on_delete=models.CASCADE, related_name="portal_record"
    )
    name = models.CharField(max_length=100)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    """One thing that happened in the portal, as a CloudEvents 1.0 envelope: the outbox of
    events (portal.core.events). Written in the transaction of the change it records, so a
    committed change always has its event and a rolled-back one never does. Every way of
    following events (the replay API, Server-Sent Events, webhooks, NATS) reads this table
    after an `id`, so each is resumable from the last id it handled.

    Who may see it (`audience`) is decided when it is written, from what it is about:
    `catalog` (whoever may see the product's metadata), `domain` (the product's domain
    only: a draft's events), `people` (the people listed plus the product's managers:
    access events)."""

    AUDIENCE_CATALOG = "catalog"
    AUDIENCE_DOMAIN = "domain"
    AUDIENCE_PEOPLE = "people"
    AUDIENCES = [
        (AUDIENCE_CATALOG, "whoever may see the product"),
        (AUDIENCE_DOMAIN, "the product's domain"),
        (AUDIENCE_PEOPLE, "the people involved and the product's managers"),
    ]

    id = models.BigAutoField(primary_key=True)
    # The order consumers follow: given once the event's transaction has committed, in the
    # order commits are seen (portal.core.events.events_sequence). Not `id`: ids are taken
    # at insert, so a transaction that commits after another may hold a smaller id, and a
    # reader past it would never see it.
    position = models.BigIntegerField(null=True, blank=True, unique=True)
    event_id = models.UUIDField(unique=True, help_text="CloudEvents `id`.")
    type = models.CharField(max_length=100, help_text="CloudEvents `type`, portal.<thing>.<what>.")
    source = models.CharField(max_length=200, help_text="CloudEvents `source`.")
    subject = models.CharField(max_length=200, blank=True, help_text="The product's key.")
    time = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict, blank=True)
    product = models.ForeignKey(
        "products.DataProduct",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    domain = models.ForeignKey(
        "products.Domain",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    audience = models.CharField(max_length=10, choices=AUDIENCES, default=AUDIENCE_CATALOG)
    people = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["type", "id"], name="event_type_idx"),
            models.Index(fields=["product", "id"], name="event_product_idx"),
            models.Index(fields=["domain", "id"], name="event_domain_idx"),
            models.Index(
                fields=["id"], condition=Q(position__isnull=True), name="event_unsequenced_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type} {self.subject}"


class EventCursor(models.Model):
    """How far one reader of the outbox that runs in the background (the NATS publisher,
    the webhook fan-out, the OpenLineage sender) has handled events: the last
    `Event.position` it finished (the field keeps its first name). Read and advanced under
    its row lock, so two workers never handle the same events at once and the order is
    kept. The row named "sequencer" holds the last position given (events_sequence)."""

    name = models.CharField(max_length=50, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_event_id}"
