"""Admin for people (docs/campaigns.md): inviting annotators from a CSV, invitations, pay rates, translated
guidelines, and the campaign's workload and time-and-pay pages. annotation/admin.py wires them into its ModelAdmins.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from annotation.models import Campaign, CampaignGuideline, Invitation, PayRate
from annotation.services.invitations import annotators_invite, annotators_parse_csv, invitation_send
from annotation.services.timesheets import report_period, time_report
from annotation.services.workload import campaign_workload
from crossfeed.errors import CrossfeedError

INVITE_PERMISSIONS = ("auth.add_user", "annotation.add_annotatorprofile")


class CampaignGuidelineInline(admin.StackedInline):
    model = CampaignGuideline
    extra = 0
    fields = ["language", "text"]
    autocomplete_fields = ["language"]
    verbose_name = gettext_lazy("guidelines in another language")
    verbose_name_plural = gettext_lazy("guidelines in other languages (shown to annotators of that response "
                                       "language; the guidelines above where none is given)")


class PayRateFormSet(BaseInlineFormSet):
    """The rules PayRate.clean applies against stored rates, applied among the rows of the form as well."""

    def clean(self) -> None:
        super().clean()
        scopes, currencies = set(), set()
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            data = form.cleaned_data
            scope = (data.get("annotator"), data.get("prompt_language"), data.get("response_language"))
            if scope in scopes:
                raise ValidationError(_("Two rates name the same annotator and languages: keep one."))
            scopes.add(scope)
            currencies.add((data.get("currency") or "").strip().upper())
        if len(currencies) > 1:
            raise ValidationError(_("Use one currency for all rates of a campaign (found %(currencies)s).")
                                  % {"currencies": ", ".join(sorted(currencies))})


class PayRateInline(admin.TabularInline):
    model = PayRate
    formset = PayRateFormSet
    extra = 0
    fields = ["annotator", "prompt_language", "response_language", "hourly_rate", "currency"]
    autocomplete_fields = ["annotator", "prompt_language", "response_language"]


@admin.register(PayRate)
class PayRateAdmin(admin.ModelAdmin):
    list_display = ["campaign", "annotator", "prompt_language", "response_language", "hourly_rate", "currency"]
    list_filter = ["campaign"]
    list_select_related = ["campaign", "annotator"]
    search_fields = ["annotator__username", "campaign__name"]
    autocomplete_fields = ["annotator", "prompt_language", "response_language"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["user", "email", "created_at", "expires_at", "accepted_at", "created_by"]
    list_filter = ["accepted_at"]
    list_select_related = ["user", "created_by"]
    search_fields = ["user__username", "email"]
    readonly_fields = ["user", "email", "created_by", "created_at", "expires_at", "accepted_at"]
    actions = ["send_again"]

    def has_add_permission(self, request) -> bool:
        return False  # invitations come from the CSV page (Annotator profiles → Invite from a CSV)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description=gettext_lazy("Send a new invitation (earlier links stop working)"),
                  permissions=["send_again"])
    def send_again(self, request, queryset) -> None:
        base_url = request.build_absolute_uri("/")
        for user in {invitation.user for invitation in queryset.select_related("user")}:
            try:
                sent = invitation_send(user=user, created_by=request.user, base_url=base_url)
            except CrossfeedError as exc:
                self.message_user(request, exc.message, messages.WARNING)
                continue
            level = messages.SUCCESS if sent.sent else messages.WARNING
            status = _("e-mailed") if sent.sent else _("not e-mailed (%(error)s)") % {"error": sent.error}
            self.message_user(request, _("%(name)s: new invitation %(status)s; link: %(link)s")
                              % {"name": sent.username, "status": status, "link": sent.link}, level)

    def has_send_again_permission(self, request) -> bool:
        return request.user.has_perms(INVITE_PERMISSIONS)


class InviteForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("CSV file"), required=False)
    text = forms.CharField(label=gettext_lazy("or paste the CSV here"), required=False,
                           widget=forms.Textarea(attrs={"rows": 8, "cols": 90, "spellcheck": "false"}))

    def clean(self) -> dict:
        cleaned = super().clean()
        if not cleaned.get("file") and not (cleaned.get("text") or "").strip():
            raise ValidationError(_("Choose a CSV file or paste its text."))
        return cleaned

    def content(self) -> bytes | str:
        upload = self.cleaned_data.get("file")
        return upload.read() if upload else self.cleaned_data["text"]


def annotators_invite_view(model_admin, request):
    """Annotator profiles → Invite from a CSV: check the file, create everyone or no one, e-mail the links."""
    if not request.user.has_perms(INVITE_PERMISSIONS):
        return redirect("admin:index")
    form = InviteForm(request.POST or None, request.FILES or None)
    errors, results = [], None
    if request.method == "POST" and form.is_valid():
        try:
            rows = annotators_parse_csv(content=form.content())
            results = annotators_invite(rows=rows, created_by=request.user,
                                        base_url=request.build_absolute_uri("/"))
        except CrossfeedError as exc:
            messages.error(request, exc.message)
            errors = exc.errors or [{"line": "", "field": exc.field or "", "message": exc.message}]
        else:
            unsent = sum(1 for result in results if not result.sent)
            messages.success(request, _("%(count)d annotator(s) created and invited.") % {"count": len(results)})
            if unsent:
                messages.warning(request, _("%(count)d e-mail(s) did not go out: pass those links on yourself.")
                                 % {"count": unsent})
    context = {**model_admin.admin_site.each_context(request), "title": _("Invite annotators from a CSV"),
               "form": form, "errors": errors, "results": results, "opts": model_admin.model._meta,
               "days": settings.CROSSFEED["INVITATION_DAYS"]}
    return render(request, "admin/annotation/annotatorprofile/invite.html", context)


def campaign_workload_view(model_admin, request, campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if not model_admin.has_view_permission(request, campaign):
        return redirect("admin:index")
    context = {**model_admin.admin_site.each_context(request), "title": _("Workload of %s") % campaign.name,
               "campaign": campaign, "pairs": campaign_workload(campaign=campaign), "opts": model_admin.model._meta}
    return render(request, "admin/annotation/campaign/workload.html", context)


def campaign_time_report_view(model_admin, request, campaign_id: int):
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    if not (model_admin.has_view_permission(request, campaign) and request.user.has_perm("annotation.view_payrate")):
        return redirect("admin:index")
    report, period_errors = None, {}
    try:
        date_from, date_to = report_period(date_from=request.GET.get("from"), date_to=request.GET.get("to"))
    except CrossfeedError as exc:
        period_errors = exc.field_errors
    else:
        report = time_report(campaign=campaign, date_from=date_from, date_to=date_to)
    query = urlencode({"from": request.GET.get("from", report["from"] if report else ""),
                       "to": request.GET.get("to", report["to"] if report else "")})
    context = {**model_admin.admin_site.each_context(request), "title": _("Time and pay in %s") % campaign.name,
               "campaign": campaign, "report": report, "period_errors": period_errors,
               "date_from": request.GET.get("from", report["from"] if report else ""),
               "date_to": request.GET.get("to", report["to"] if report else ""),
               "csv_url": reverse("api-campaign-time-report", kwargs={"campaign_id": campaign.id})
               + f"?{query}&format=csv",
               "opts": model_admin.model._meta}
    return render(request, "admin/annotation/campaign/time_report.html", context)
