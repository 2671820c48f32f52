"""Annotation models: languages, annotators, campaigns, items, responses, leases, judgments.

Capacity rule (issue: never more than k judgments per item): an item carries two counters that the services
change with conditional UPDATEs in the same transaction as the row they count, and a CHECK constraint keeps
`judgment_count + lease_count <= target` true in the database itself, whatever code runs. `target` is the
campaign's overlap k, copied onto the item so that the constraint can be a row-level CHECK.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

DEFAULT_FLAGS = ["wrong_language", "incorrect", "unsafe", "incomplete", "garbled"]


def default_flags() -> list[str]:
    return list(DEFAULT_FLAGS)


class Language(models.Model):
    """One row per entry of annotation/data/languages.json; synced on every migrate."""

    class Direction(models.TextChoices):
        LTR = "ltr", _("left to right")
        RTL = "rtl", _("right to left")

    class Tier(models.TextChoices):
        HIGH = "high", _("high resource")
        MEDIUM = "medium", _("medium resource")
        LOW = "low", _("low resource")

    code = models.CharField(_("BCP-47 code"), max_length=16, primary_key=True)
    flores_code = models.CharField(_("FLORES-200 code"), max_length=16, unique=True)
    name = models.CharField(_("English name"), max_length=64)
    native_name = models.CharField(_("autonym"), max_length=64)
    script = models.CharField(_("ISO 15924 script"), max_length=4)
    direction = models.CharField(max_length=3, choices=Direction.choices, default=Direction.LTR)
    tier = models.CharField(max_length=6, choices=Tier.choices)
    feedback_default = models.BooleanField(_("default feedback language"), default=False)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class AnnotatorProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator")
    native_languages = models.ManyToManyField(Language, related_name="native_annotators")
    reading_languages = models.ManyToManyField(Language, related_name="reading_annotators", blank=True)
    ui_language = models.CharField(_("interface language"), max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.user.get_username()

    def language_codes(self) -> tuple[list[str], list[str]]:
        """(native codes, readable codes); a native speaker also reads their own languages."""
        native = [lang.code for lang in self.native_languages.all()]
        reading = sorted(set(native) | {lang.code for lang in self.reading_languages.all()})
        return native, reading


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        ACTIVE = "active", _("active")
        PAUSED = "paused", _("paused")
        CLOSED = "closed", _("closed")

    name = models.CharField(max_length=200, unique=True)
    guidelines = models.TextField(_("guidelines (Markdown)"), blank=True)
    overlap = models.PositiveSmallIntegerField(
        _("judgments wanted per item"), default=3, help_text=_("k: how many annotators rank each item (1–20).")
    )
    lease_minutes = models.PositiveSmallIntegerField(default=10)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    flag_vocabulary = models.JSONField(default=default_flags)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1, overlap__lte=20), name="campaign_overlap_1_20"),
            models.CheckConstraint(
                condition=Q(lease_minutes__gte=1, lease_minutes__lte=1440), name="campaign_lease_1_1440"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def accepts_judgments(self) -> bool:
        return self.status == self.Status.ACTIVE


class Item(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200)
    prompt_text = models.TextField()
    prompt_language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+")
    pivot_text = models.TextField(blank=True)
    pivot_language = models.ForeignKey(Language, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    response_language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+")
    metadata = models.JSONField(default=dict, blank=True)
    # sha256 of the item's canonical JSON: a re-import with the same external_id and hash is "unchanged".
    content_hash = models.CharField(max_length=64)
    target = models.PositiveSmallIntegerField()
    judgment_count = models.PositiveSmallIntegerField(default=0)
    lease_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "external_id"], name="item_unique_external_id"),
            models.CheckConstraint(
                condition=Q(judgment_count__gte=0) & Q(lease_count__gte=0) & Q(judgment_count__lte=F("target")),
                name="item_judgments_within_target",
            ),
            models.CheckConstraint(
                condition=Q(judgment_count__lte=F("target") - F("lease_count")), name="item_capacity_respected"
            ),
        ]
        indexes = [
            # Serves next(): open items of one response language, fullest first, then oldest.
            models.Index(
                fields=["campaign", "response_language", "-judgment_count", "id"], name="item_assignment_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_complete(self) -> bool:
        return self.judgment_count >= self.target


class Response(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="responses")
    position = models.PositiveSmallIntegerField()
    text = models.TextField()
    language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+")
    model_name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["item_id", "position"]
        constraints = [models.UniqueConstraint(fields=["item", "position"], name="response_unique_position")]

    def __str__(self) -> str:
        return f"{self.item_id}#{self.position}"


class Lease(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="leases")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="lease_one_per_annotator_item")]
        indexes = [models.Index(fields=["annotator", "expires_at"], name="lease_annotator_idx")]

    def __str__(self) -> str:
        return f"lease on {self.item_id} by {self.annotator_id} until {self.expires_at:%Y-%m-%d %H:%M}"

    def is_live(self, now=None) -> bool:
        return self.expires_at > (now or timezone.now())


class Skip(models.Model):
    """An annotator passed on an item; it is not offered to them again."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skips")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="skip_one_per_annotator_item")]

    def __str__(self) -> str:
        return f"skip of {self.item_id} by {self.annotator_id}"


class Judgment(models.Model):
    """The current ranking of one item by one annotator; revisions replace it and are kept as submissions."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="judgments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments")
    # {"<response id>": rank}; 1 is best, equal ranks are ties.
    ranks = models.JSONField()
    # {"<response id>": ["wrong_language", ...]}; responses without flags are absent.
    flags = models.JSONField(default=dict, blank=True)
    comment = models.TextField(blank=True)
    seconds_spent = models.PositiveIntegerField(null=True, blank=True)
    revision = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="judgment_one_per_annotator_item"),
        ]
        indexes = [models.Index(fields=["annotator", "created_at"], name="judgment_annotator_idx")]

    def __str__(self) -> str:
        return f"judgment {self.pk} on {self.item_id} by {self.annotator_id}"


class JudgmentSubmission(models.Model):
    """Every accepted POST of a judgment, keyed by the client's idempotency key (audit trail and replay)."""

    judgment = models.ForeignKey(Judgment, on_delete=models.CASCADE, related_name="submissions")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    idempotency_key = models.CharField(max_length=128)
    ranks = models.JSONField()
    flags = models.JSONField(default=dict)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "idempotency_key"], name="submission_unique_key"),
        ]

    def __str__(self) -> str:
        return f"submission {self.idempotency_key} of judgment {self.judgment_id}"


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


class Export(BackgroundJob, models.Model):
    """An immutable dataset snapshot: the filters, the judgments as of `cutoff`, the files and their hashes.

    Files are written into a private folder and published (renamed into place) only when complete, so a killed
    worker never leaves a partial file behind a succeeded record.
    """

    class Kind(models.TextChoices):
        PREFERENCE = "preference", _("preference pairs (DPO)")
        SFT = "sft", _("best responses (SFT messages)")

    class Format(models.TextChoices):
        JSONL = "jsonl", "JSONL"
        PARQUET = "parquet", "Parquet"

    class Pairs(models.TextChoices):
        ALL = "all", _("all pairs with a majority")
        BEST_VS_REST = "best_vs_rest", _("consensus best against each other response")
        BEST_VS_WORST = "best_vs_worst", _("consensus best against consensus worst")

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="exports")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.PREFERENCE)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.JSONL)
    pairs = models.CharField(max_length=16, choices=Pairs.choices, default=Pairs.ALL)
    min_judgments = models.PositiveSmallIntegerField(default=2)
    min_agreement = models.FloatField(default=0.0)
    languages = models.JSONField(default=list, blank=True, help_text=_("response languages; empty means all"))
    test_fraction = models.FloatField(default=0.1)
    seed = models.PositiveIntegerField(default=0)
    # Judgments as they stood at this moment; later submissions and revisions are not part of the snapshot.
    cutoff = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    per_language = models.JSONField(default=dict, blank=True)
    language_pairs = models.JSONField(default=list, blank=True)
    agreement = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(min_agreement__gte=0) & Q(min_agreement__lte=1),
                                   name="export_min_agreement_0_1"),
            models.CheckConstraint(condition=Q(test_fraction__gte=0) & Q(test_fraction__lt=1),
                                   name="export_test_fraction_0_1"),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.campaign} ({self.get_status_display()})"
