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
    # Quality control (docs/campaigns.md; rules in annotation/services/quality.py).
    gold_rate = models.FloatField(
        _("gold rate"), default=0.0,
        help_text=_("Share of each annotator's items that are gold items, mixed in at random (0 to 0.5; 0: none)."))
    gold_warn_below = models.FloatField(
        _("warn below gold accuracy"), default=0.7,
        help_text=_("An annotator whose gold accuracy in a language pair falls below this is warned (0 to 1)."))
    gold_exclude_below = models.FloatField(
        _("exclude below gold accuracy"), default=0.5,
        help_text=_("Below this the annotator gets no more items of the pair and their judgments of it leave the "
                    "exports (0 to 1, at most the warning threshold)."))
    gold_min_seen = models.PositiveSmallIntegerField(
        _("gold items before acting"), default=10,
        help_text=_("Gold items an annotator must have judged in a pair before a warning or an exclusion (1–1000)."))
    qualification_pass_mark = models.FloatField(
        _("qualification pass mark"), default=0.8,
        help_text=_("Share of a language pair's qualification items to get right before real items of the pair "
                    "are handed out (0 to 1); only pairs with qualification items are gated."))
    # (prompt language, response language) pairs that have qualification items, kept by the import: next() reads
    # it with the campaign's row instead of asking the items table on every request.
    qualification_pairs = models.JSONField(default=list, blank=True, editable=False)

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


class VisibleItemManager(models.Manager):
    """Items that an import has finished writing: staged rows (see ItemImport) are nobody's business but the import's.

    The default manager, so that every ORM read (admin, statistics, exports, other apps) leaves staged rows out
    without having to remember to; the hand-written SQL in annotation/sql.py says `staged_by_id IS NULL` itself.
    """

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(staged_by__isnull=True)


class Item(models.Model):
    class Kind(models.TextChoices):
        TASK = "task", _("item to rank")
        GOLD = "gold", _("gold item (known answer, mixed in)")
        QUALIFICATION = "qualification", _("qualification item")

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
    # Gold and qualification items have known answers (`gold`, by response position: annotation/gold.py); they never
    # count toward progress and are never exported.
    kind = models.CharField(max_length=13, choices=Kind.choices, default=Kind.TASK)
    gold = models.JSONField(default=dict, blank=True)
    # Set while the import that wrote the row is still writing: the row is invisible and cannot be leased. The import
    # clears it for all its rows in one final UPDATE; if the import fails, its staged rows are deleted.
    staged_by = models.ForeignKey(
        "ItemImport", on_delete=models.CASCADE, null=True, blank=True, editable=False, db_index=False,
        related_name="staged_items",
    )

    # Staged rows too: only for the import service and its clean-up, and (as the base manager) for Django's own
    # row-level work such as deletion cascades and refresh_from_db.
    all_objects = models.Manager()
    objects = VisibleItemManager()

    class Meta:
        ordering = ["id"]
        default_manager_name = "objects"
        base_manager_name = "all_objects"
        constraints = [
            # Among visible items only: rows staged by an import that died never block importing the same ids again.
            models.UniqueConstraint(
                fields=["campaign", "external_id"], condition=Q(staged_by__isnull=True), name="item_unique_external_id"
            ),
            models.CheckConstraint(
                condition=Q(judgment_count__gte=0) & Q(lease_count__gte=0) & Q(judgment_count__lte=F("target")),
                name="item_judgments_within_target",
            ),
            models.CheckConstraint(
                condition=Q(judgment_count__lte=F("target") - F("lease_count")), name="item_capacity_respected"
            ),
        ]
        indexes = [
            # Serves next(): open items of one kind and response language, fullest first, then oldest. The kind
            # leads, so that gold items (judged by everyone, so "fullest") are never scanned past to find a task.
            models.Index(
                fields=["campaign", "kind", "response_language", "-judgment_count", "id"], name="item_assignment_idx"
            ),
            # Only staged rows (few, and none once imports are done): finds what an import staged, for its final
            # step or its clean-up, without growing with the visible items.
            models.Index(fields=["staged_by"], condition=Q(staged_by__isnull=False), name="item_staged_idx"),
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


class ItemImport(BackgroundJob, models.Model):
    """One run of the item import, and the rows it staged (annotation/services/imports.py; docs/import.md).

    `owner` (host and process id) and `heartbeat_at` tell whether the writing process is still alive: the clean-up
    deletes what a failed or dead import staged.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="imports")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.RUNNING, db_index=True)
    source = models.CharField(max_length=300, blank=True, help_text=_("where the items came from (file name, API)"))
    owner = models.CharField(max_length=300, help_text=_("host:pid of the process that writes the import"))
    staged = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"import {self.pk} into {self.campaign_id} ({self.status})"


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
    # A `weight` column from the annotators' reliability (docs/export.md).
    weights = models.BooleanField(default=False)
    # What the quality controls changed: the exclusions that applied, with the judgments each left out, and how many
    # items a reviewer's final ranking decided (annotation/services/exports.py).
    exclusions = models.JSONField(default=list, blank=True)
    adjudicated = models.PositiveIntegerField(default=0)
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


# --- People (issue 15, part "people"): invitations, guidelines per language, page activity, pay rates -------------
# Services: annotation/services/invitations.py, guidelines.py, timesheets.py, workload.py; docs/campaigns.md.


class Invitation(models.Model):
    """One e-mailed invitation of an annotator created from a CSV (annotation/services/invitations.py).

    The link itself is a signed token that is never stored: it stops working when the annotator sets a password, when
    a newer invitation is sent, or INVITATION_DAYS after it was made. This row keeps when it was sent, until when it
    is good and whether it was used, so that a refused link can tell the annotator why.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations",
                             verbose_name=_("annotator"))
    email = models.EmailField(_("sent to"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", verbose_name=_("invited by"))
    created_at = models.DateTimeField(_("sent"), default=timezone.now)
    expires_at = models.DateTimeField(_("good until"))
    accepted_at = models.DateTimeField(_("used"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")

    def __str__(self) -> str:
        return f"invitation of {self.user} ({self.created_at:%Y-%m-%d})"

    def is_expired(self, now=None) -> bool:
        return self.accepted_at is None and self.expires_at <= (now or timezone.now())


class CampaignGuideline(models.Model):
    """The campaign's guidelines translated into one language. Annotators read the one in the language of the
    responses they rank (their native language), and the campaign's own guidelines where there is none."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="translated_guidelines")
    language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+", verbose_name=_("language"))
    text = models.TextField(_("guidelines (Markdown)"))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["campaign_id", "language_id"]
        verbose_name = _("translated guidelines")
        verbose_name_plural = _("translated guidelines")
        constraints = [models.UniqueConstraint(fields=["campaign", "language"], name="guideline_one_per_language")]

    def __str__(self) -> str:
        return f"{self.campaign} guidelines in {self.language_id}"


class ActivityPing(models.Model):
    """A minute in which an annotator was active on a campaign's annotation page (static/js/annotate.js posts at
    most one ping a minute, and only while the page is visible and after the annotator did something). One row per
    annotator, campaign and minute: a second ping in the same minute inserts nothing."""

    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    # The item on the page, as the page said: it only attributes the minute to a language pair in the time report,
    # which reads it against the campaign's items. Not checked when written (a ping does no read), hence no constraint.
    item = models.ForeignKey(Item, on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True,
                             related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "campaign", "minute"], name="activity_one_per_minute"),
        ]
        indexes = [models.Index(fields=["campaign", "minute"], name="activity_campaign_minute_idx")]

    def __str__(self) -> str:
        return f"{self.annotator_id} active on {self.campaign_id} at {self.minute:%Y-%m-%d %H:%M}"


class PayRate(models.Model):
    """An hourly rate in a campaign: for everyone (no annotator, no languages), for a response language or a
    language pair, for one annotator, or for one annotator in one pair. The most specific rate that fits applies
    (annotation/services/timesheets.py: pay_rate_for)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="pay_rates")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                                  related_name="+", verbose_name=_("annotator"),
                                  help_text=_("empty: everyone in the campaign"))
    prompt_language = models.ForeignKey(Language, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                        verbose_name=_("prompt language"),
                                        help_text=_("empty: any prompt language"))
    response_language = models.ForeignKey(Language, on_delete=models.PROTECT, null=True, blank=True,
                                          related_name="+", verbose_name=_("response language"),
                                          help_text=_("empty: any language pair"))
    hourly_rate = models.DecimalField(_("rate per active hour"), max_digits=10, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="EUR",
                                help_text=_("ISO 4217 code, e.g. EUR; one currency per campaign"))

    class Meta:
        ordering = ["campaign_id", "annotator_id", "response_language_id", "prompt_language_id"]
        verbose_name = _("pay rate")
        verbose_name_plural = _("pay rates")
        constraints = [
            models.CheckConstraint(condition=Q(hourly_rate__gte=0), name="payrate_not_negative"),
            # A prompt language alone would be a rate for "anything translated from Swahili": not a pair.
            models.CheckConstraint(condition=Q(prompt_language__isnull=True) | Q(response_language__isnull=False),
                                   name="payrate_prompt_needs_response"),
        ]

    def __str__(self) -> str:
        return f"{self.hourly_rate} {self.currency}/h in {self.campaign_id}"

    @property
    def specificity(self) -> int:
        """How narrowly the rate applies: an annotator's rate beats a pair's, a pair's beats a response language's."""
        return (4 if self.annotator_id else 0) + (2 if self.response_language_id else 0) + (
            1 if self.prompt_language_id else 0)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors: dict[str, str] = {}
        self.currency = (self.currency or "").strip().upper()
        if len(self.currency) != 3 or not self.currency.isascii() or not self.currency.isalpha():
            errors["currency"] = _("Give a three-letter ISO 4217 code, such as EUR or USD.")
        if self.prompt_language_id and not self.response_language_id:
            errors["response_language"] = _("A prompt language needs a response language: together they name a "
                                             "language pair.")
        if self.hourly_rate is not None and self.hourly_rate < 0:
            errors["hourly_rate"] = _("A rate cannot be negative.")
        if self.campaign_id and not errors:
            others = PayRate.objects.filter(campaign_id=self.campaign_id).exclude(pk=self.pk)
            same_scope = others.filter(annotator_id=self.annotator_id, prompt_language_id=self.prompt_language_id,
                                       response_language_id=self.response_language_id)
            if same_scope.exists():
                errors["hourly_rate"] = _("This campaign already has a rate for the same annotator and languages: "
                                          "change that one instead.")
            currencies = set(others.values_list("currency", flat=True)) - {self.currency}
            if currencies:
                errors["currency"] = _("This campaign's other rates are in %(currency)s; a report adds the amounts "
                                       "up, so use one currency per campaign.") % {"currency": ", ".join(
                                           sorted(currencies))}
        if errors:
            raise ValidationError(errors)


# --- Quality: gold items, qualification, exclusion, adjudication (issue 15; docs/campaigns.md) -------------------


class AnnotatorStanding(models.Model):
    """One annotator's record on gold items in one language pair of a campaign, and what it led to.

    Kept up to date when they submit a gold item (annotation/services/quality.py). `excluded`: no more items of the
    pair, and their judgments of it leave the exports. An admin may set the state back by hand; the reason says who.
    """

    class State(models.TextChoices):
        OK = "ok", _("ok")
        WARNED = "warned", _("warned")
        EXCLUDED = "excluded", _("excluded")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="standings")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="standings")
    prompt_language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+")
    response_language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+")
    gold_seen = models.PositiveIntegerField(default=0)
    gold_correct = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=8, choices=State.choices, default=State.OK)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    state_reason = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["campaign", "annotator", "prompt_language", "response_language"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "annotator", "prompt_language", "response_language"],
                                    name="standing_one_per_pair"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} in {self.prompt_language_id}→{self.response_language_id}: {self.state}"

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_seen if self.gold_seen else None


class QualificationResult(models.Model):
    """The outcome of one annotator's qualification set for one language pair (decided when the last item of the
    set is judged). Delete it to let the annotator try again."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="qualifications")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qualifications")
    prompt_language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+")
    response_language = models.ForeignKey(Language, on_delete=models.PROTECT, related_name="+")
    answered = models.PositiveIntegerField()
    correct = models.PositiveIntegerField()
    pass_mark = models.FloatField()
    passed = models.BooleanField()
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["campaign", "annotator", "prompt_language", "response_language"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "annotator", "prompt_language", "response_language"],
                                    name="qualification_one_per_pair"),
        ]

    def __str__(self) -> str:
        outcome = "passed" if self.passed else "failed"
        return f"{self.annotator_id} {outcome} {self.prompt_language_id}→{self.response_language_id}"


class Exclusion(models.Model):
    """An admin's decision to leave an annotator's judgments in a campaign out of the exports: all of them, or those
    made from `since` on. The annotator also gets no more items of the campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="exclusions")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exclusions")
    since = models.DateTimeField(null=True, blank=True, help_text=_("empty: every judgment"))
    reason = models.CharField(max_length=1000)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "annotator"], name="exclusion_one_per_annotator")]

    def __str__(self) -> str:
        return f"exclusion of {self.annotator_id} from {self.campaign_id}"


class Adjudication(models.Model):
    """A reviewer's final ranking of an item; the export uses it instead of the annotators' consensus.

    `ranks` is keyed by response id as a judgment's is; `wrong_language` lists response ids that may never be
    chosen. Reviewers are users with the permission annotation.add_adjudication (the group "Reviewers")."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="adjudication")
    ranks = models.JSONField()
    wrong_language = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return f"adjudication of {self.item_id}"
