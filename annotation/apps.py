from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_languages(sender, using="default", **kwargs) -> None:
    # Like contenttypes and permissions, the language table follows the code after every migrate.
    from annotation.services.languages import languages_sync

    if using == "default":
        languages_sync()


def _sync_reviewers(sender, **kwargs) -> None:
    from annotation.services.quality import reviewer_group_sync

    reviewer_group_sync(**kwargs)


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = _("Annotation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_sync_languages, sender=self)
        # The group "Reviewers" (adjudication); auth's own handler has created this app's permissions by then.
        post_migrate.connect(_sync_reviewers, sender=self, dispatch_uid="annotation.reviewer_group_sync")
        import crossfeed.i18n  # noqa: F401  (connects the login signal that restores a person's interface language)
