from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

import crossfeed.converters  # noqa: F401 - registers <id:…>
from annotation.forms import CAMPAIGN_SETTINGS, CampaignAdminForm
from annotation.models import (
    AnnotatorProfile,
    Campaign,
    Export,
    Item,
    ItemImport,
    JobStatus,
    Judgment,
    JudgmentSubmission,
    Language,
    Lease,
    Response,
    Skip,
)
from annotation.people_admin import (
    CampaignGuidelineInline,
    PayRateInline,
    annotators_invite_view,
    campaign_time_report_view,
    campaign_workload_view,
)
from annotation.quality import campaign_quality
from annotation.quality_admin import campaign_annotators_view  # also registers the quality models' admins
from annotation.selectors import campaign_progress, forget_annotator_languages
from annotation.services.campaigns import campaign_create, campaign_update
from annotation.services.exports import export_create, export_retry, exports_fail_stale
from annotation.services.imports import items_import
from annotation.stats import campaign_stats
from crossfeed.errors import CrossfeedError


@admin.register(Language)
class LanguageAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "native_name", "script", "direction", "tier", "feedback_default", "flores_code"]
    list_filter = ["feedback_default", "tier", "direction", "script"]
    search_fields = ["code", "name", "native_name", "flores_code"]

    def has_add_permission(self, request) -> bool:
        return False  # the registry is annotation/data/languages.json

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AnnotatorProfile)
class AnnotatorProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "natives", "readings", "judgment_count", "created_at"]
    list_filter = ["native_languages", "reading_languages"]
    search_fields = ["user__username"]
    autocomplete_fields = ["user"]
    filter_horizontal = ["native_languages", "reading_languages"]
    change_list_template = "admin/annotation/annotatorprofile/change_list.html"  # "Invite from a CSV"

    def get_urls(self):
        invite = self.admin_site.admin_view(lambda request: annotators_invite_view(self, request))
        return [path("invite/", invite, name="annotation_annotatorprofile_invite"), *super().get_urls()]

    def get_queryset(self, request):
        return (
            super().get_queryset(request)
            .select_related("user")
            .prefetch_related("native_languages", "reading_languages")
            .annotate(n_judgments=Count("user__judgments"))
        )

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        forget_annotator_languages(form.instance.user_id)

    @admin.display(description=_("native"))
    def natives(self, obj) -> str:
        return ", ".join(lang.code for lang in obj.native_languages.all())

    @admin.display(description=_("reads"))
    def readings(self, obj) -> str:
        return ", ".join(lang.code for lang in obj.reading_languages.all())

    @admin.display(description=_("judgments"), ordering="n_judgments")
    def judgment_count(self, obj) -> int:
        return obj.n_judgments


class ExportForm(forms.Form):
    kind = forms.ChoiceField(choices=Export.Kind.choices, initial=Export.Kind.PREFERENCE)
    format = forms.ChoiceField(choices=Export.Format.choices, initial=Export.Format.JSONL)
    pairs = forms.ChoiceField(choices=Export.Pairs.choices, initial=Export.Pairs.ALL)
    min_judgments = forms.IntegerField(min_value=1, max_value=20, initial=2)
    min_agreement = forms.FloatField(
        min_value=0, max_value=1, initial=0.0,
        help_text=_("least vote margin (for − against) / (for + against + tied) of a pair"))
    languages = forms.CharField(required=False, help_text=_("response languages, comma-separated; empty: all"))
    test_fraction = forms.FloatField(min_value=0, max_value=0.99, initial=0.1)
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=0)  # the service's range
    weights = forms.BooleanField(required=False, initial=False,
                                 help_text=_("add a weight column from the annotators' reliability (preference only)"))

    def export_arguments(self) -> dict:
        data = dict(self.cleaned_data)
        data["languages"] = [code.strip() for code in data["languages"].split(",") if code.strip()]
        return data


class ImportForm(forms.Form):
    file = forms.FileField(label=_("JSONL file"), help_text=_("One item per line, in the import format."))


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignAdminForm  # the service's rules, as in the API
    list_display = ["name", "task", "status", "overlap", "lease_minutes", "progress", "created_at"]
    list_filter = ["status", "task"]
    search_fields = ["name"]
    # task: set when the campaign is made (post-editing campaigns come from translation jobs), never changed.
    readonly_fields = ["task", "created_by", "created_at"]
    change_form_template = "admin/annotation/campaign/change_form.html"
    actions = ["export_preference_dataset"]
    inlines = [CampaignGuidelineInline, PayRateInline]  # people: guidelines per language, pay rates

    @admin.action(description=_("Export preference dataset (all pairs, JSONL, ≥ 2 judgments)"))
    def export_preference_dataset(self, request, queryset) -> None:
        for campaign in queryset:
            try:
                export = export_create(campaign=campaign, created_by=request.user)
            except CrossfeedError as exc:
                self.message_user(request, f"{campaign.name}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, _("%(campaign)s: export %(id)d queued.")
                                  % {"campaign": campaign.name, "id": export.id}, messages.SUCCESS)

    @admin.display(description=_("progress"))
    def progress(self, obj) -> str:
        numbers = campaign_progress(obj)
        return f"{numbers['judgments']}/{numbers['judgments_wanted']} ({numbers['percent']}%)"

    def save_model(self, request, obj, form, change) -> None:
        # Through the services, which check again what the form checked, and (update) take a new overlap k to
        # every item's target.
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
            saved = campaign_update(campaign=Campaign.objects.get(pk=obj.pk), **changes)
        else:
            saved = campaign_create(created_by=request.user, **{name: form.cleaned_data[name]
                                                                 for name in CAMPAIGN_SETTINGS})
        # The admin goes on with `obj` (its log entry, the redirect): make it the row the service wrote.
        for field in Campaign._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))

    def get_urls(self):
        view = self.admin_site.admin_view
        own = [
            path("<id:campaign_id>/import/", view(self.import_view), name="annotation_campaign_import"),
            path("<id:campaign_id>/stats/", view(self.stats_view), name="annotation_campaign_stats"),
            path("<id:campaign_id>/export/", view(self.export_view), name="annotation_campaign_export"),
            path("<id:campaign_id>/quality/", view(self.quality_view), name="annotation_campaign_quality"),
            path("<id:campaign_id>/annotators/", view(lambda request, campaign_id: campaign_annotators_view(
                self, request, campaign_id)), name="annotation_campaign_annotators"),
            path("<id:campaign_id>/workload/", view(lambda request, campaign_id: campaign_workload_view(
                self, request, campaign_id)), name="annotation_campaign_workload"),
            path("<id:campaign_id>/time-report/", view(lambda request, campaign_id: campaign_time_report_view(
                self, request, campaign_id)), name="annotation_campaign_time_report"),
        ]
        return own + super().get_urls()

    def import_view(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_change_permission(request, campaign):
            return redirect("admin:index")
        form = ImportForm(request.POST or None, request.FILES or None)
        errors, error_count = [], 0
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = items_import(campaign=campaign, source=upload, created_by=request.user,
                                      source_name=f"admin: {upload.name}")
            except CrossfeedError as exc:
                messages.error(request, exc.message)
                errors = exc.errors
                error_count = getattr(exc, "error_count", len(errors))
            else:
                messages.success(
                    request,
                    _("Imported: %(created)d new, %(updated)d updated, %(unchanged)d unchanged.") % result.as_dict(),
                )
                return redirect("admin:annotation_campaign_change", campaign.id)
        context = {**self.admin_site.each_context(request), "title": _("Import items into %s") % campaign.name,
                   "campaign": campaign, "form": form, "errors": errors, "error_count": error_count,
                   "opts": self.model._meta}
        return render(request, "admin/annotation/campaign/import.html", context)

    def export_view(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_change_permission(request, campaign):
            return redirect("admin:index")
        form = ExportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                export = export_create(campaign=campaign, created_by=request.user, **form.export_arguments())
            except CrossfeedError as exc:
                for field, problems in exc.field_errors.items():
                    form.add_error(field if field in form.fields else None, problems)
                if not exc.field_errors:
                    form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, _("Export %d queued; the task worker runs it.") % export.id)
                return redirect("admin:annotation_export_change", export.id)
        context = {**self.admin_site.each_context(request), "title": _("Export %s") % campaign.name,
                   "campaign": campaign, "form": form, "opts": self.model._meta}
        return render(request, "admin/annotation/campaign/export.html", context)

    def quality_view(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_view_permission(request, campaign):
            return redirect("admin:index")
        quality = campaign_quality(campaign)
        chart = {
            "labels": [f"{row['prompt_language']}→{row['response_language']}" for row in quality["language_pairs"]],
            "agreement": [row["agreement"] for row in quality["language_pairs"]],
            "pairs": [row["pairs"] for row in quality["language_pairs"]],
        }
        names = dict(get_user_model().objects.values_list("id", "username"))
        for row in quality["language_pairs"]:
            per_annotator = row["judgments_per_annotator"]
            row["judgments_per_annotator"] = {names.get(key, key): n for key, n in per_annotator.items()}
        quality["annotators"] = {names.get(key, key): value for key, value in quality["annotators"].items()}
        context = {**self.admin_site.each_context(request), "title": _("Quality of %s") % campaign.name,
                   "campaign": campaign, "quality": quality, "chart": chart, "opts": self.model._meta}
        return render(request, "admin/annotation/campaign/quality.html", context)

    def stats_view(self, request, campaign_id: int):
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_view_permission(request, campaign):
            return redirect("admin:index")
        context = {**self.admin_site.each_context(request), "title": _("Progress of %s") % campaign.name,
                   "campaign": campaign, "stats": campaign_stats(campaign), "opts": self.model._meta}
        return render(request, "admin/annotation/campaign/stats.html", context)


class ResponseInline(admin.TabularInline):
    model = Response
    extra = 0
    fields = ["position", "language", "model_name", "text"]
    readonly_fields = fields
    can_delete = False


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "campaign", "prompt_language", "response_language", "judgment_count", "target",
                    "lease_count", "created_at"]
    list_filter = ["campaign", "prompt_language", "response_language", "campaign__status"]
    search_fields = ["external_id", "prompt_text"]
    list_select_related = ["campaign"]
    readonly_fields = ["campaign", "external_id", "content_hash", "judgment_count", "lease_count", "target",
                       "created_at"]
    inlines = [ResponseInline]

    def has_add_permission(self, request) -> bool:
        return False  # items come in through the import, which validates them


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "position", "language", "model_name"]
    list_filter = ["language", "item__campaign", "model_name"]
    search_fields = ["item__external_id", "model_name", "text"]
    list_select_related = ["item"]
    readonly_fields = ["item", "position", "language", "model_name", "text"]

    def get_queryset(self, request):
        # Responses of items an import is still writing are not shown, like their items (Item.objects).
        return super().get_queryset(request).filter(item__staged_by__isnull=True)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ItemImport)
class ItemImportAdmin(admin.ModelAdmin):
    """A record of every import: running ones, and the failed ones with their reason (docs/import.md)."""

    list_display = ["id", "campaign", "status", "source", "created", "updated", "unchanged", "staged", "started_at",
                    "finished_at"]
    list_filter = ["status", "campaign"]
    list_select_related = ["campaign"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # A running import's record owns its staged rows; the clean-up ends it, not the admin.
        return super().has_delete_permission(request, obj) and (obj is None or obj.status != JobStatus.RUNNING)


class _JudgedLanguageFilter(admin.SimpleListFilter):
    """Only the languages that occur in judgments: the plain field filter listed all 121 languages, twice
    (a 5,915 px tall sidebar)."""

    field = ""

    def lookups(self, request, model_admin):
        from annotation.templatetags.crossfeed import language_name

        codes = (model_admin.get_queryset(request).order_by().values_list(f"item__{self.field}", flat=True)
                 .distinct())
        return sorted(((code, language_name(code)) for code in codes if code), key=lambda pair: str(pair[1]))

    def queryset(self, request, queryset):
        return queryset.filter(**{f"item__{self.field}": self.value()}) if self.value() else queryset


class JudgedResponseLanguageFilter(_JudgedLanguageFilter):
    title = _("response language")
    parameter_name = "response_language"
    field = "response_language_id"


class JudgedPromptLanguageFilter(_JudgedLanguageFilter):
    title = _("prompt language")
    parameter_name = "prompt_language"
    field = "prompt_language_id"


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "item", "annotator", "campaign", "response_language", "revision", "seconds_spent",
                    "updated_at"]
    list_filter = ["item__campaign", JudgedResponseLanguageFilter, JudgedPromptLanguageFilter,
                   "item__campaign__status"]
    search_fields = ["item__external_id", "annotator__username", "comment"]
    list_select_related = ["item", "item__campaign", "annotator"]
    # verdict and edits: post-editing campaigns' judgments (their ranking is empty).
    fields = ["item", "annotator", "ranking", "verdict", "edits", "comment", "seconds_spent", "revision", "created_at",
              "updated_at"]
    readonly_fields = fields

    @admin.display(description=_("ranking"))
    def ranking(self, obj) -> str:
        """The ranks and flags as a table of the responses, in the order and with the letters the annotator saw (the
        stored JSON is keyed by response ids, with no texts)."""
        from annotation.serializers import response_order

        responses = {response.id: response for response in obj.item.responses.all()}
        order = response_order(obj.item_id, obj.annotator_id, sorted(responses))
        row = '<tr><td>{}</td><td>{}</td><td>{}</td><td lang="{}" dir="auto">{}</td><td>{}</td></tr>'
        rows = format_html_join("", row, (
            (chr(ord("A") + index), obj.ranks.get(str(response_id), "?"),
             ", ".join(obj.flags.get(str(response_id), [])), responses[response_id].language_id,
             responses[response_id].text[:160] + ("\u2026" if len(responses[response_id].text) > 160 else ""),
             responses[response_id].model_name)
            for index, response_id in enumerate(order)))
        return format_html(
            '<table class="judgment-ranking"><thead><tr><th scope="col">{}</th><th scope="col">{}</th>'
            '<th scope="col">{}</th><th scope="col">{}</th><th scope="col">{}</th></tr></thead><tbody>{}</tbody>'
            "</table>", _("Letter seen"), _("Rank (1 = best)"), _("Flags"), _("Response"), _("Model"), rows)

    @admin.display(description=_("campaign"), ordering="item__campaign")
    def campaign(self, obj) -> str:
        return obj.item.campaign.name

    @admin.display(description=_("response language"))
    def response_language(self, obj) -> str:
        return obj.item.response_language_id

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # judgments are the product: they leave only with their campaign


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    list_display = ["item", "annotator", "created_at", "expires_at"]
    list_filter = ["item__campaign"]
    list_select_related = ["item", "annotator"]
    readonly_fields = ["item", "annotator", "created_at", "expires_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Skip)
class SkipAdmin(admin.ModelAdmin):
    list_display = ["item", "annotator", "reason", "created_at"]
    # An empty reason is stored empty; the admin's default "-" read as if "-" had been stored.
    empty_value_display = _("(no reason given)")
    list_filter = ["item__campaign", "reason"]
    list_select_related = ["item", "annotator"]


@admin.register(JudgmentSubmission)
class JudgmentSubmissionAdmin(admin.ModelAdmin):
    list_display = ["judgment", "annotator", "idempotency_key", "created_at"]
    search_fields = ["idempotency_key", "annotator__username"]
    readonly_fields = ["judgment", "annotator", "idempotency_key", "ranks", "flags", "verdict", "edits", "comment",
                       "created_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "kind", "format", "pairs", "status", "progress", "rows", "created_by",
                    "created_at"]
    list_filter = ["status", "kind", "format", "campaign"]
    list_select_related = ["campaign", "created_by"]
    actions = ["retry"]
    fields = ["campaign", "status", "progress", "kind", "format", "pairs", "min_judgments", "min_agreement",
              "languages", "test_fraction", "seed", "weights", "cutoff", "rows", "download", "per_language",
              "language_pairs", "agreement", "exclusions", "adjudicated", "error", "attempts", "created_by",
              "created_at", "started_at", "finished_at",
              "heartbeat_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        exports_fail_stale()  # an export whose worker died shows as failed, with the reason
        return super().get_queryset(request)

    def has_add_permission(self, request) -> bool:
        return False  # exports start from a campaign: its "Export" page or the list action

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("progress"))
    def progress(self, obj) -> str:
        percent = round(100 * obj.progress_done / obj.progress_total) if obj.progress_total else 0
        return format_html('<progress max="100" value="{}"></progress> {} / {} items', percent, obj.progress_done,
                           obj.progress_total)

    @admin.display(description=_("files"))
    def download(self, obj) -> str:
        if obj.status != JobStatus.SUCCEEDED:
            return "—"
        names = [f["name"] for f in obj.files] + ["README.md"]
        return format_html_join(
            " · ", '<a href="{}">{}</a>',
            ((reverse("api-export-file", kwargs={"export_id": obj.id, "name": name}), name) for name in names),
        )

    @admin.action(description=_("Retry the selected failed exports"))
    def retry(self, request, queryset) -> None:
        for export in queryset:
            try:
                export_retry(export=export)
            except CrossfeedError as exc:
                self.message_user(request, exc.message, messages.WARNING)
            else:
                self.message_user(request, _("Export %d queued again.") % export.id, messages.SUCCESS)
