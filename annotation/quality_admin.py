"""Admin of quality control (docs/campaigns.md): the campaign's annotators and their competence, gold records,
qualification results, exclusions and adjudications. Imported by annotation/admin.py, which registers the page."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotation.competence import competence
from annotation.models import Adjudication, AnnotatorStanding, Campaign, Exclusion, QualificationResult
from annotation.services.quality import exclusion_check


def campaign_annotators_view(model_admin: admin.ModelAdmin, request, campaign_id: int):
    """Each annotator's competence per language pair; the Dawid-Skene estimate only on request (`?estimate=1`): it
    reads every judgment of the campaign and takes seconds on a large one."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if not model_admin.has_view_permission(request, campaign):
        return redirect("admin:index")
    estimate = request.GET.get("estimate") == "1"
    context = {**model_admin.admin_site.each_context(request), "title": _("Annotators of %s") % campaign.name,
               "campaign": campaign, "pairs": competence(campaign, estimate=estimate), "estimate": estimate,
               "exclusions": campaign.exclusions.select_related("annotator"), "opts": model_admin.model._meta}
    return render(request, "admin/annotation/campaign/annotators.html", context)


@admin.register(AnnotatorStanding)
class AnnotatorStandingAdmin(admin.ModelAdmin):
    """Gold records. The state can be set back by hand (say, after a talk with the annotator): the change is dated,
    and the reason names who made it unless one is given."""

    list_display = ["annotator", "campaign", "prompt_language", "response_language", "gold_seen", "gold_correct",
                    "state", "state_changed_at"]
    list_filter = ["state", "campaign"]
    search_fields = ["annotator__username"]
    list_select_related = ["annotator", "campaign"]
    fields = ["campaign", "annotator", "prompt_language", "response_language", "gold_seen", "gold_correct", "state",
              "state_reason", "state_changed_at"]
    readonly_fields = ["campaign", "annotator", "prompt_language", "response_language", "gold_seen", "gold_correct",
                       "state_changed_at"]

    def has_add_permission(self, request) -> bool:
        return False  # records come from gold judgments

    def save_model(self, request, obj, form, change) -> None:
        if "state" in form.changed_data:
            obj.state_changed_at = timezone.now()
            if "state_reason" not in form.changed_data:
                obj.state_reason = _("set by %(user)s") % {"user": request.user.get_username()}
        super().save_model(request, obj, form, change)


@admin.register(QualificationResult)
class QualificationResultAdmin(admin.ModelAdmin):
    """Delete a result to let the annotator take the qualification set again: the next qualification judgment they
    submit (a revision of an earlier answer, or a newly imported qualification item) decides it anew."""

    list_display = ["annotator", "campaign", "prompt_language", "response_language", "passed", "correct", "answered",
                    "pass_mark", "decided_at"]
    list_filter = ["passed", "campaign"]
    search_fields = ["annotator__username"]
    list_select_related = ["annotator", "campaign"]
    readonly_fields = ["campaign", "annotator", "prompt_language", "response_language", "answered", "correct",
                       "pass_mark", "passed", "decided_at"]

    def has_add_permission(self, request) -> bool:
        return False


class ExclusionAdminForm(forms.ModelForm):
    """The service's checks (exclusion_check): nobody is excluded from a campaign they never worked in."""

    class Meta:
        model = Exclusion
        fields = ["campaign", "annotator", "since", "reason"]

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("campaign") and cleaned.get("annotator"):
            problems = exclusion_check(campaign=cleaned["campaign"], user=cleaned["annotator"].pk,
                                       reason=cleaned.get("reason", ""), since=None)[2]
            for field, messages in problems.items():
                self.add_error("annotator" if field == "user" else field, messages)
        return cleaned


@admin.register(Exclusion)
class ExclusionAdmin(admin.ModelAdmin):
    form = ExclusionAdminForm
    list_display = ["annotator", "campaign", "since", "reason", "created_by", "created_at"]
    list_filter = ["campaign"]
    search_fields = ["annotator__username", "reason"]
    list_select_related = ["annotator", "campaign", "created_by"]
    autocomplete_fields = ["annotator"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ["item", "reviewer", "updated_at"]
    list_filter = ["item__campaign"]
    search_fields = ["item__external_id", "reviewer__username", "note"]
    list_select_related = ["item", "reviewer"]
    readonly_fields = ["item", "ranks", "wrong_language", "note", "reviewer", "created_at", "updated_at"]

    def has_add_permission(self, request) -> bool:
        return False  # reviewers adjudicate on the adjudication page, which checks the ranking
