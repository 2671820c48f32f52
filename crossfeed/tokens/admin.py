from django.contrib import admin

from crossfeed.tokens.models import APIToken


@admin.register(APIToken)
class APITokenAdmin(admin.ModelAdmin):
    """Tokens can be read and revoked here; a new one comes from `manage.py drf_create_token USER` or from
    POST /api/v1/annotators/, the only moments its key is shown."""

    list_display = ("prefix", "user", "created")
    list_select_related = ("user",)
    search_fields = ("user__username", "prefix")
    readonly_fields = ("user", "prefix", "created")
    exclude = ("digest",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
