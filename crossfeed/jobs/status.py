"""The status vocabulary and the shared behaviour of every background job (exports, imports, training runs,
evaluation runs): it belongs to no single app (ARCHITECTURE.md), so it lives here and the apps' job models use it."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    """The status vocabulary shared by every background job (ARCHITECTURE.md)."""

    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    CANCELLED = "cancelled", _("cancelled")


class BackgroundJob:
    """What every background-job model (export, training run, evaluation run) has: a JobStatus `status`."""

    status: str

    @property
    def is_finished(self) -> bool:
        return self.status in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}
