from django.apps import AppConfig
from django.db.models.signals import post_migrate


class APITokensConfig(AppConfig):
    """API tokens kept as hashes (models.py), and the "Crossfeed admin" group (crossfeed/permissions.py)."""

    name = "crossfeed.tokens"
    label = "apitokens"
    verbose_name = "API tokens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crossfeed.permissions import admin_group_sync

        # Sent for this app after every migrate (and flush); this app is listed last in INSTALLED_APPS, so the
        # permissions of every other app exist by then.
        post_migrate.connect(admin_group_sync, sender=self, dispatch_uid="crossfeed.admin_group_sync")
