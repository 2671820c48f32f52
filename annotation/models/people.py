"""People (issue 15): invitations, guidelines per language, page activity, pay rates."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.models.core import Campaign, Item, Language

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
