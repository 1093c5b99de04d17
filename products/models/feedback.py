"""The feedback loop between a product's consumers and its team: feedback threads with
their comments and status changes, announcements, and who follows a product."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from products.choices import (
    CLOSED_FEEDBACK_STATUSES,
    AnnouncementKind,
    FeedbackKind,
    FeedbackStatus,
)
from products.models.products import DataProduct
from products.models.trust import Incident


class FeedbackThread(models.Model):
    """Someone asks, reports, requests or praises; the product's team answers. Status:
    open -> acknowledged -> resolved or declined (with a note); the author may withdraw."""

    product = models.ForeignKey(
        DataProduct, on_delete=models.CASCADE, related_name="feedback_threads"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feedback_threads",
    )
    kind = models.CharField(max_length=16, choices=FeedbackKind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown")
    status = models.CharField(
        max_length=16, choices=FeedbackStatus.choices, default=FeedbackStatus.OPEN
    )
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="feedback_threads",
        help_text="The incident this issue is about (linked by the product's editors).",
    )
    resolution_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The first answer written by a member of the owning domain (a reply, or a note with a
    # status change): the response objective and the median time to first response.
    first_response_at = models.DateTimeField(null=True, blank=True)
    first_response_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The new-thread notification was claimed (sent once).
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_activity_at", "-pk"]
        indexes = [
            models.Index(fields=["product", "status"], name="feedback_product_status_idx"),
            models.Index(
                fields=["product", "-last_activity_at"], name="feedback_product_activity_idx"
            ),
            models.Index(fields=["author", "-last_activity_at"], name="feedback_author_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_FEEDBACK_STATUSES


class FeedbackComment(models.Model):
    """A reply in a thread. `by_team`: written by a member of the owning domain."""

    thread = models.ForeignKey(FeedbackThread, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField(help_text="Markdown")
    by_team = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["thread", "created_at"], name="feedback_comment_thread_idx")
        ]

    def __str__(self) -> str:
        return f"Reply to {self.thread}"


class FeedbackStatusChange(models.Model):
    """A thread's status moved (with the note saying why). Notified once (`notified_at`)."""

    thread = models.ForeignKey(
        FeedbackThread, on_delete=models.CASCADE, related_name="status_changes"
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_status = models.CharField(max_length=16, choices=FeedbackStatus.choices)
    to_status = models.CharField(max_length=16, choices=FeedbackStatus.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.thread}: {self.from_status} -> {self.to_status}"


class Announcement(models.Model):
    """The product's owners tell consumers something: information, maintenance, a breaking
    change, a deprecation (naming the replacement product). Shown as a banner while
    active (starts_at <= now < ends_at, no end: until ended), delivered once to current
    grantees and followers (`delivered_at`)."""

    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="announcements")
    kind = models.CharField(max_length=16, choices=AnnouncementKind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, help_text="Markdown")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    replacement = models.ForeignKey(
        DataProduct,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replacing_announcements",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    recipient_count = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at", "-pk"]
        indexes = [models.Index(fields=["product", "starts_at"], name="announcement_product_idx")]

    def __str__(self) -> str:
        return self.title

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)


class ProductFollow(models.Model):
    """A user follows a product: its announcements and incidents reach them."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="product_follows"
    )
    product = models.ForeignKey(DataProduct, on_delete=models.CASCADE, related_name="follows")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["user", "product"], name="one_follow_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} follows {self.product}"
