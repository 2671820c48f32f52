"""Instruction translation: translators (an instruction-following model with a prompt, a seq2seq MT model, an
OpenAI-compatible endpoint), jobs that translate an instruction set into many languages with one or more of them,
and the translation chosen per (row, language).

Every candidate (each translator's forward translation of each field, and its back-translation) lives in the job's
outputs.jsonl, as a generation job's answers do: there are translators x fields x 2 of them per (row, language),
written as they come and read once, at the end, to score and choose. Only the choice (or the mark that no candidate
was acceptable) is a table row, `Translation`: it is what the report counts, post-editing will edit and the SFT
export will read, and it keeps the scores of every candidate it was chosen from.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.models import Campaign, Item, Language
from crossfeed.jobs.status import BackgroundJob, JobStatus
from generation.models import Endpoint
from instructions.models import InstructionRow, InstructionSet
from training.models import BaseModel, ModelVersion


class Translator(models.Model):
    class Kind(models.TextChoices):
        LLM = "llm", _("instruction-following model with a prompt")
        SEQ2SEQ = "seq2seq", _("seq2seq MT model (NLLB-200 style)")
        ENDPOINT = "endpoint", _("OpenAI-compatible endpoint")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # llm: exactly one of base_model / model_version; endpoint: endpoint; seq2seq: path.
    base_model = models.ForeignKey(BaseModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+")
    endpoint = models.ForeignKey(Endpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(_("model folder or hub id"), max_length=500, blank=True,
                            help_text=_("seq2seq only: a local folder, or a hub id already in the local cache"))
    prompt_template = models.TextField(_("prompt template"), blank=True,
                                       help_text=_("llm and endpoint: {source}, {target} and {text} are filled in"))
    max_new_tokens = models.PositiveIntegerField(_("max new tokens"), default=512)
    # seq2seq: the FLORES-200 codes its tokenizer has language tokens for, read when it was registered.
    languages = models.JSONField(_("known languages"), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("translator")
        verbose_name_plural = _("translators")
        constraints = [
            models.CheckConstraint(condition=Q(max_new_tokens__gte=1, max_new_tokens__lte=4096),
                                   name="translator_max_new_tokens_1_4096"),
        ]

    def __str__(self) -> str:
        return self.name


class TranslationJob(BackgroundJob, models.Model):
    instruction_set = models.ForeignKey(InstructionSet, on_delete=models.CASCADE, related_name="translation_jobs")
    # Canonical codes (BCP-47) of the target languages, in the order given.
    languages = models.JSONField(default=list)
    # As resolved at creation: [{"translator": id, "label": name, "kind": ...}], in the admin's order of preference
    # (a tie in quality goes to the earlier one).
    translators = models.JSONField(default=list)
    quality_threshold = models.FloatField(default=0.5, help_text=_("chosen translations below it are reported"))
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # {code: {rows, chosen_by: {translator: n}, mean_quality, below_threshold, not_acceptable, histogram,
    # post_edited}}, written when the job succeeds.
    per_language = models.JSONField(default=dict, blank=True)
    throughput = models.JSONField(default=dict, blank=True,
                                  help_text=_("per translator: prompts, new_tokens, seconds, prompts/s, tokens/s"))
    failures = models.JSONField(default=list, blank=True,
                                help_text=_("[{external_id, translator, language, message}], capped"))
    failure_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Post-editing asked for at creation ({campaign_name, overlap, audit_rate}; {} for none): the campaign is made
    # when the job succeeds (translation/services/post_edit.py), and linked here.
    post_edit = models.JSONField(default=dict, blank=True)
    post_edit_campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+")
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quality_threshold__gte=0, quality_threshold__lte=1),
                                   name="translation_job_threshold_0_1"),
        ]

    def __str__(self) -> str:
        return f"translation job {self.pk}"

    @property
    def percent(self) -> float:
        return round(100 * self.progress_done / self.progress_total, 1) if self.progress_total else 0.0


class TranslationQuerySet(models.QuerySet):
    def usable(self) -> TranslationQuerySet:
        """Translation.usable as a filter: what the SFT export reads."""
        edited = [Translation.PostEdit.ACCEPTED, Translation.PostEdit.EDITED]
        return self.filter(Q(chosen=True) | Q(post_edit__in=edited)).exclude(post_edit=Translation.PostEdit.UNUSABLE)


class Translation(models.Model):
    """A row of the set in one language: the candidate chosen for it, or (chosen False) the best of the candidates
    when none was acceptable (each had a hard failure, lost a protected segment, or failed), kept for review but
    never exported (unless a native speaker accepts or edits it: see `usable`)."""

    class PostEdit(models.TextChoices):
        NOT_SENT = "", _("not sent to post-editing")
        PENDING = "pending", _("in a post-editing campaign")
        ACCEPTED = "accepted", _("accepted as is")
        EDITED = "edited", _("edited")
        UNUSABLE = "unusable", _("unusable")

    job = models.ForeignKey(TranslationJob, on_delete=models.CASCADE, related_name="translations")
    row = models.ForeignKey(InstructionRow, on_delete=models.CASCADE, related_name="translations")
    language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+")
    chosen = models.BooleanField(default=False)
    translator = models.ForeignKey(Translator, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    translator_label = models.CharField(max_length=200, blank=True)
    # The translated fields: {"instruction", "input", "output"} (Alpaca) or {"messages": [{role, content}]}.
    fields = models.JSONField(default=dict)
    quality = models.FloatField(null=True, blank=True)
    components = models.JSONField(default=dict, blank=True)
    flags = models.JSONField(default=list, blank=True)
    # Every candidate's summary: [{translator, score, flags, error?}], in the job's translator order.
    candidates = models.JSONField(default=list, blank=True)
    # Post-editing (translation/services/post_edit.py): the latest native speaker's verdict wins. An edit replaces
    # `fields`, and the machine's translation is kept in `machine_fields` (empty until the first edit).
    post_edit = models.CharField(max_length=10, choices=PostEdit.choices, blank=True, db_index=True)
    machine_fields = models.JSONField(default=dict, blank=True)
    post_edit_item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Levenshtein distance between the machine's fields and the edited ones, over the longer (0.0: accepted).
    edit_distance = models.FloatField(null=True, blank=True)
    post_edited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    post_edited_at = models.DateTimeField(null=True, blank=True)

    objects = TranslationQuerySet.as_manager()

    class Meta:
        ordering = ["job", "language", "row"]
        constraints = [
            models.UniqueConstraint(fields=["job", "row", "language"], name="translation_unique_per_job"),
        ]

    def __str__(self) -> str:
        return f"{self.row} in {self.language_id}"

    @property
    def usable(self) -> bool:
        """Goes into the SFT export: chosen by the machine or accepted/edited by a person, and not marked unusable."""
        return (self.chosen or self.post_edit in (self.PostEdit.ACCEPTED, self.PostEdit.EDITED)) \
            and self.post_edit != self.PostEdit.UNUSABLE
