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
