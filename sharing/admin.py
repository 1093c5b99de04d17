from django.contrib import admin

from sharing.models import AccessEvent, AccessGrant, AccessRequest, ShareLink


@admin.register(AccessRequest)
class AccessRequestAdmin(admin.ModelAdmin):
    list_display = ["product", "requester", "status", "created_at", "decided_by"]
    list_filter = ["status"]
    list_select_related = ["product__domain", "requester", "decided_by"]
    search_fields = ["requester__username", "product__name"]


@admin.register(AccessGrant)
class AccessGrantAdmin(admin.ModelAdmin):
    """Read-only here: grants are given and revoked through the portal's services, which
    validate and audit every change."""

    list_display = ["product", "user", "group", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at"]
    list_select_related = ["product__domain", "user", "group"]
    search_fields = ["user__username", "group__name", "product__name"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin):
    list_display = ["at", "action", "user", "product_key", "channel", "rows", "client_address"]
    list_filter = ["action", "channel"]
    search_fields = ["user__username", "product_key"]
    list_select_related = ["user"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Read-only: links are created and revoked through the portal's services (which
    validate and audit); tokens are not stored, only their SHA-256."""

    list_display = ["token_hint", "product", "created_by", "format", "expires_at",
                    "download_count", "max_downloads", "revoked_at"]  # fmt: skip
    list_filter = ["format", "revoked_at"]
    list_select_related = ["product__domain", "created_by"]
    search_fields = ["created_by__username", "product__name", "token_hint"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
