"""Instruction sets: the SFT instructions (Alpaca or TRL messages) that translation jobs turn into many languages.

Every row keeps its conversation as normalised `messages` [{role, content}], whatever the source format, so that
translation, post-editing and the SFT export work on one shape; an Alpaca row keeps its three fields beside them
too, so that an instruction, its input and its output can be translated (and protected) as the separate texts they
are.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.models import Language
from crossfeed.jobs.status import BackgroundJob, JobStatus


class InstructionSetQuerySet(models.QuerySet):
    def ready(self) -> InstructionSetQuerySet:
        """Sets whose import finished: a set being imported has only part of its rows."""
        return self.filter(status=InstructionSet.Status.READY)


class InstructionSet(models.Model):
    class Format(models.TextChoices):
        ALPACA = "alpaca", _("Alpaca (instruction, input, output)")
        MESSAGES = "messages", _("TRL messages")

    class Status(models.TextChoices):
        # The import writes rows in batches (instructions/services/sets.py): until the last is written the set is
        # `importing`, and nothing else reads it.
        IMPORTING = "importing", _("importing")
        READY = "ready", _("ready")

    name = models.CharField(_("name"), max_length=200, unique=True)
    source_name = models.CharField(_("source file"), max_length=300, blank=True)
    format = models.CharField(_("format"), max_length=10, choices=Format.choices)
    language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+", verbose_name=_("language"),
                                 help_text=_("The language the set is written in."))
    rows = models.PositiveIntegerField(_("rows"), default=0)
    sha256 = models.CharField(_("SHA-256 of the file"), max_length=64)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.IMPORTING)
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # Written after every batch of an import; an `importing` set that has not written for
    # CROSSFEED["IMPORT_STALE_SECONDS"] is taken for dead and deleted.
    heartbeat_at = models.DateTimeField(default=timezone.now)

    objects = InstructionSetQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("instruction set")
        verbose_name_plural = _("instruction sets")

    def __str__(self) -> str:
        return self.name


class InstructionRow(models.Model):
    instruction_set = models.ForeignKey(InstructionSet, on_delete=models.CASCADE, related_name="instruction_rows",
                                        verbose_name=_("instruction set"))
    index = models.PositiveIntegerField(_("index"), help_text=_("The row's place in the file, from 0."))
    external_id = models.CharField(_("external id"), max_length=300,
                                   help_text=_("The file's id, or <set>-<index> when it gave none."))
    language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+", verbose_name=_("language"))
    # Alpaca's fields (empty for a messages set).
    instruction = models.TextField(_("instruction"), blank=True)
    input = models.TextField(_("input"), blank=True)
    output = models.TextField(_("output"), blank=True)
    messages = models.JSONField(_("messages"), help_text=_("The conversation as [{role, content}], for every format."))
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)

    class Meta:
        ordering = ["instruction_set", "index"]
        verbose_name = _("instruction row")
        verbose_name_plural = _("instruction rows")
        constraints = [
            models.UniqueConstraint(fields=["instruction_set", "index"], name="instruction_row_index_unique"),
            models.UniqueConstraint(fields=["instruction_set", "external_id"],
                                    name="instruction_row_external_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.instruction_set_id}/{self.external_id}"


class InstructionExport(BackgroundJob, models.Model):
    """The SFT data out of a set and one of its translation jobs: per language and all together, in TRL's messages
    format, with a dataset card (instructions/services/exports.py; docs/instruction-sets.md, "SFT export").

    Like a preference export it is a snapshot: the files are written into a private folder and published by one
    rename, so a killed worker never leaves a partial file behind a succeeded record. The rows are the translations
    usable when the export ran (a later post-edit is in the next export, not this one).
    """

    instruction_set = models.ForeignKey(InstructionSet, on_delete=models.PROTECT, related_name="exports",
                                        verbose_name=_("instruction set"))
    # Which job's translations; None only for a job deleted since (PROTECT keeps it while the export exists).
    translation_job = models.ForeignKey("translation.TranslationJob", null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="exports",
                                        verbose_name=_("translation job"))
    # Canonical codes of the target languages exported; as resolved at creation (all of the job's when none given).
    languages = models.JSONField(_("languages"), default=list, blank=True)
    include_source = models.BooleanField(_("include the source rows"), default=True,
                                         help_text=_("Also export the set's own rows, in its language."))
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    # {code: {rows, by_translator, mean_quality, below_threshold, post_edited, accepted, edited,
    # post_edit_share, mean_edit_distance, left_out: {not_acceptable, unusable}}}
    per_language = models.JSONField(default=dict, blank=True)
    # The data files: [{name, rows, bytes, sha256}]; README.md (the card) beside them.
    files = models.JSONField(default=list, blank=True)
    card = models.TextField(_("dataset card"), blank=True)
    error = models.TextField(blank=True)
    # What crossfeed/jobs/lifecycle.py's claim, progress and stale checks read and write.
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    failures = models.JSONField(default=list, blank=True)
    failure_count = models.PositiveIntegerField(default=0)
    throughput = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("instruction set export")
        verbose_name_plural = _("instruction set exports")

    def __str__(self) -> str:
        return _("SFT export %(id)s of %(set)s") % {"id": self.pk, "set": self.instruction_set}
