"""Site-wide models: in-portal notifications (the bell in the top bar)."""

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
