from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "crossfeed.jobs"
    label = "jobs"
    verbose_name = "Background jobs"
