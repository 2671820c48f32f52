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
        return self.codes_as_read([lang.code for lang in self.native_languages.all()],
                                  [lang.code for lang in self.reading_languages.all()])

    @staticmethod
    def codes_as_read(native: list[str], reading: list[str]) -> tuple[list[str], list[str]]:
        """language_codes from the stored codes (selectors.annotator_languages reads them with raw SQL)."""
        return native, sorted(set(native) | set(reading))


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        ACTIVE = "active", _("active")
        PAUSED = "paused", _("paused")
        CLOSED = "closed", _("closed")

    class Task(models.TextChoices):
        RANKING = "ranking", _("rank responses")
        # Items made from machine translations (translation/services/post_edit.py): one response per field, which
        # the annotator accepts, edits or marks unusable; never imported, ranked or exported as preferences.
        POST_EDIT = "post_edit", _("post-edit translations")

    name = models.CharField(max_length=200, unique=True)
    guidelines = models.TextField(_("guidelines (Markdown)"), blank=True)
    overlap = models.PositiveSmallIntegerField(
        _("judgments wanted per item"), default=3, help_text=_("k: how many annotators rank each item (1–20).")
    )
    lease_minutes = models.PositiveSmallIntegerField(default=10)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    task = models.CharField(_("task"), max_length=10, choices=Task.choices, default=Task.RANKING, editable=False)
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

    @property
    def is_post_edit(self) -> bool:
        return self.task == self.Task.POST_EDIT


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
            # Complete items are left out: fullest first put all of them at the front of the scan, and every `next`
            # stepped over them, a cost growing with the campaign.
            # sql.candidate_ids repeats the condition, so that both databases' planners pick this index.
            models.Index(
                fields=["campaign", "kind", "response_language", "-judgment_count", "id"],
                condition=Q(judgment_count__lt=F("target")), name="item_assignment_open_idx",
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
    # What the machine saw (generation jobs set these; an import may carry them): the detected language (our code,
    # varieties folded; empty when not measurable) and its confidence. Annotators see a "detected: …" hint, with the
    # wrong-language flag pre-set, when it differs from `language`.
    detected_language = models.CharField(max_length=16, blank=True)
    detected_confidence = models.FloatField(null=True, blank=True)
    # Where the text came from: a generator and its settings for generated responses; free-form on imports.
    metadata = models.JSONField(default=dict, blank=True)

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


class Verdict(models.TextChoices):
    """A post-edit judgment's outcome (Campaign.Task.POST_EDIT); a ranking's verdict is empty."""

    ACCEPTED = "accepted", _("accepted as is")
    EDITED = "edited", _("edited")
    UNUSABLE = "unusable", _("unusable")


class Judgment(models.Model):
    """The current ranking (or post-edit) of one item by one annotator; revisions replace it and are kept as
    submissions."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="judgments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments")
    # {"<response id>": rank}; 1 is best, equal ranks are ties. {} for a post-edit.
    ranks = models.JSONField()
    # {"<response id>": ["wrong_language", ...]}; responses without flags are absent.
    flags = models.JSONField(default=dict, blank=True)
    # Post-edit campaigns only: the verdict, and {"<response id>": edited text} of the responses changed.
    verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    edits = models.JSONField(default=dict, blank=True)
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
    verdict = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    edits = models.JSONField(default=dict, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "idempotency_key"], name="submission_unique_key"),
        ]

    def __str__(self) -> str:
        return f"submission {self.idempotency_key} of judgment {self.judgment_id}"
