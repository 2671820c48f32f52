"""Instruction sets in the admin: imported from the "add" page (a file upload, all or nothing, the problems listed by
line), then read-only; their rows are listed, filtered by set, and never edited here."""

from __future__ import annotations

from pathlib import PurePath

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from crossfeed.errors import CrossfeedError
from instructions.forms import InstructionSetImportForm
from instructions.models import InstructionRow, InstructionSet
from instructions.services.sets import instruction_set_import


@admin.register(InstructionSet)
class InstructionSetAdmin(admin.ModelAdmin):
    list_display = ["name", "format", "language", "rows", "status", "rows_link", "created_by", "created_at"]
    list_filter = ["format", "status", "language"]
    search_fields = ["name", "source_name", "sha256"]
    list_select_related = ["created_by", "language"]
    fields = ["name", "format", "language", "rows", "rows_link", "status", "source_name", "sha256", "created_by",
              "created_at", "notes"]
    readonly_fields = [name for name in fields if name != "notes"]

    @admin.display(description=_("rows"))
    def rows_link(self, obj) -> str:
        url = reverse("admin:instructions_instructionrow_changelist") + f"?instruction_set__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Show the rows"))

    def add_view(self, request, form_url="", extra_context=None):
        """The import page: a set is created from a file only, by the import service, never as an empty form."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = InstructionSetImportForm(request.POST or None, request.FILES or None)
        errors, error_count = [], 0
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            file_name = PurePath(upload.name or "").name
            try:
                instruction_set = instruction_set_import(
                    name=form.cleaned_data["name"] or file_name, source=upload,
                    language=form.cleaned_data["language"], created_by=request.user, source_name=file_name,
                    notes=form.cleaned_data["notes"])
            except CrossfeedError as exc:
                errors, error_count = exc.errors, getattr(exc, "error_count", len(exc.errors))
                if errors:
                    messages.error(request, exc.message)
                else:
                    form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                messages.success(request, _("Imported %(name)s: %(rows)d rows (%(format)s).") % {
                    "name": instruction_set.name, "rows": instruction_set.rows, "format": instruction_set.format})
                return redirect("admin:instructions_instructionset_change", instruction_set.pk)
        context = {**self.admin_site.each_context(request), "title": _("Import an instruction set"), "form": form,
                   "errors": errors, "error_count": error_count, "opts": self.model._meta}
        return render(request, "admin/instructions/instructionset/import.html", context)

    def get_deleted_objects(self, objs, request):
        # The default lists every row on the confirmation page (52,000 for Alpaca) and asks for the rows' delete
        # permission, which nobody has here: the rows go with their set, counted.
        sets = list(objs)
        rows = InstructionRow.objects.filter(instruction_set__in=sets).count()
        counts = {InstructionSet._meta.verbose_name_plural: len(sets), InstructionRow._meta.verbose_name_plural: rows}
        return [str(instruction_set) for instruction_set in sets], counts, set(), []


@admin.register(InstructionRow)
class InstructionRowAdmin(admin.ModelAdmin):
    list_display = ["index", "external_id", "instruction_set", "language", "first_turn"]
    list_filter = ["instruction_set", "language"]
    search_fields = ["external_id", "instruction", "output"]
    list_select_related = ["instruction_set"]
    fields = ["instruction_set", "index", "external_id", "language", "instruction", "input", "output", "messages",
              "metadata"]
    readonly_fields = fields

    @admin.display(description=_("first turn"))
    def first_turn(self, obj) -> str:
        messages_ = obj.messages or [{}]
        return Truncator(messages_[0].get("content", "")).chars(120)

    def has_add_permission(self, request) -> bool:
        return False  # rows come from an import

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a set is all or nothing: delete the set
