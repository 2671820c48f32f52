"""Quality (issue 15): gold standing, qualification, exclusions, adjudication."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.models.core import Campaign, Item, Language

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
