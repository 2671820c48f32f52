"""REST API v1 for annotation (ARCHITECTURE.md). Thin: validate types, call a service or selector, serialise."""

from __future__ import annotations

import shutil
import tempfile

from django.db import transaction
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import selectors, serializers
from annotation.competence import annotators_overview
from annotation.models import Campaign, Export, JobStatus, Language
from annotation.services.assignment import item_skip, lease_next
from annotation.services.campaigns import campaign_create
from annotation.services.exports import export_create, export_folder, export_retry, exports_fail_stale
from annotation.services.imports import items_import
from annotation.services.judgments import Outcome, judgment_check_size, judgment_submit
from annotation.services.people import annotator_create
from annotation.services.quality import exclusion_create
from annotation.services.timesheets import report_period, time_report, time_report_csv
from annotation.stats import campaign_stats
from crossfeed.bodies import declared_length
from crossfeed.errors import InvalidInput, NotFound
from crossfeed.parsers import JSONParser
from crossfeed.permissions import ModelPermissions


class IsAnnotator(BasePermission):
    message = gettext_lazy("this endpoint is for annotators; your account has no annotator profile")

    def has_permission(self, request, view) -> bool:
        return selectors.is_annotator(request.user)


class NDJSONParser(BaseParser):
    """Spools a JSONL body to a temporary file, so a large import is never held in memory whole."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed by the view
        if stream is not None:
            shutil.copyfileobj(stream, spool, length=1 << 20)
        spool.seek(0)
        return spool


def _campaign_for(request, campaign_id: int) -> Campaign:
    return get_object_or_404(selectors.campaigns_visible_to(request.user), pk=campaign_id)


class LanguageList(APIView):
    @extend_schema(responses=serializers.LanguageSerializer(many=True))
    def get(self, request):
        return Response(serializers.LanguageSerializer(Language.objects.all(), many=True).data)


class AnnotatorCreate(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("auth.add_user", "annotation.add_annotatorprofile")}

    @extend_schema(
        request=serializers.AnnotatorCreateSerializer, responses={201: serializers.AnnotatorCreatedSerializer}
    )
    def post(self, request):
        data = _valid(serializers.AnnotatorCreateSerializer, request.data)
        profile, key = annotator_create(**data)
        native, reading = profile.language_codes()
        body = {"id": profile.user_id, "username": profile.user.username, "token": key,
                "native_languages": native, "reading_languages": reading}
        return Response(body, status=status.HTTP_201_CREATED)


class CampaignList(APIView):
    required_permissions = {"POST": ("annotation.add_campaign",)}

    def get_permissions(self):
        return [ModelPermissions()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(responses=serializers.CampaignSerializer(many=True))
    def get(self, request):
        campaigns = selectors.campaigns_visible_to(request.user)
        return Response(serializers.CampaignSerializer(campaigns, many=True).data)

    @extend_schema(request=serializers.CampaignInputSerializer, responses={201: serializers.CampaignSerializer})
    def post(self, request):
        data = _valid(serializers.CampaignInputSerializer, request.data)
        campaign = campaign_create(created_by=request.user, **data)
        return Response(serializers.CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetail(APIView):
    @extend_schema(responses=serializers.CampaignSerializer)
    def get(self, request, campaign_id: int):
        return Response(serializers.CampaignSerializer(_campaign_for(request, campaign_id)).data)


class CampaignItems(APIView):
    # What the admin's import page asks for, and the right to add items.
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("annotation.change_campaign", "annotation.add_item")}
    parser_classes = [JSONParser, NDJSONParser, MultiPartParser]

    @extend_schema(
        request={
            "application/json": {"type": "array", "items": {"type": "object"}},
            "application/x-ndjson": OpenApiTypes.STR,
            "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
        },
        responses={
            201: serializers.ImportResultSerializer,
            400: OpenApiResponse(description="errors by line: {detail, errors: [{line, field, message}] (the first "
                                             "MAX_IMPORT_ERRORS), error_count, truncated}; nothing stored"),
            409: OpenApiResponse(description="another import stored the same items meanwhile; nothing stored"),
        },
    )
    def post(self, request, campaign_id: int):
        campaign = _campaign_for(request, campaign_id)
        source = request.data
        if request.content_type.startswith("multipart/"):
            source = request.FILES.get("file")
            if source is None:
                raise InvalidInput(_("upload the JSONL file in a form field named 'file'"), field="file")
        elif isinstance(source, dict):
            source = [source]  # one item sent as a single object
        elif not isinstance(source, list) and not hasattr(source, "read"):
            raise InvalidInput(_("expected a JSON array of items, a JSONL body or a multipart file"), field="body")
        try:
            result = items_import(campaign=campaign, source=source, created_by=request.user,
                                  source_name=f"API: {getattr(source, 'name', None) or request.content_type}")
        finally:
            if hasattr(source, "close"):
                source.close()
        return Response(result.as_dict(), status=status.HTTP_201_CREATED)


class CampaignNext(APIView):
    """Lease the next item. GET is kept because the v1 contract names it; the browser UI uses POST."""

    permission_classes = [IsAnnotator]

    @extend_schema(responses={200: serializers.NextSerializer, 204: None})
    def get(self, request, campaign_id: int):
        return self._next(request, campaign_id)

    @extend_schema(request=None, responses={200: serializers.NextSerializer, 204: None})
    def post(self, request, campaign_id: int):
        return self._next(request, campaign_id)

    def _next(self, request, campaign_id: int):
        campaign = selectors.campaign_for_leasing(request.user, campaign_id)
        lease = lease_next(campaign=campaign, annotator=request.user, with_item=True)
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        item, responses = lease.item_rows
        payload = serializers.item_payload(item, request.user.id, lease, responses, task=campaign.task)
        return Response({"task": campaign.task, "item": payload})


class ItemDetail(APIView):
    @extend_schema(responses=serializers.ItemOutSerializer)
    def get(self, request, item_id: int):
        item = selectors.item_for_annotator(request.user, item_id)
        if item is None:
            raise NotFound(_("no such item, or it is not one you can see"))
        lease = selectors.live_lease(request.user, item)
        return Response(serializers.item_payload(item, request.user.id, lease, task=item.campaign.task))


class ItemJudgments(APIView):
    permission_classes = [IsAnnotator]

    @extend_schema(
        request=serializers.JudgmentBodySerializer,
        responses={
            201: serializers.JudgmentOutSerializer, 200: serializers.JudgmentOutSerializer, 409: None,
            400: OpenApiResponse(description="messages by field ({field: [message]}); a body over 256 KiB, or more "
                                             "rank, flag or edit keys than the item has responses, gets one message; "
                                             "a ranking sent to a post-editing campaign, or a verdict to a ranking "
                                             "campaign, is refused with a message saying so"),
        },
    )
    def post(self, request, item_id: int):
        # Refused by its declared length before DRF reads or parses it: a 31 MB body was once parsed into a dict of
        # 2.7 million keys, and the worker kept the memory.
        judgment_check_size(body_bytes=declared_length(request), item_id=item_id)
        # The service checks every field's type and value against the item (one pass, every error by field), so the
        # serializer only documents the body here: running it too cost a third of the submit's own time.
        data = _json_object(request.data)
        result = judgment_submit(
            annotator=request.user, item_id=item_id, ranks=data.get("ranks"), flags=data.get("flags"),
            comment=data.get("comment", ""), seconds_spent=data.get("seconds_spent"),
            idempotency_key=data.get("idempotency_key"), verdict=data.get("verdict"), edits=data.get("edits"),
        )
        code = status.HTTP_201_CREATED if result.outcome is Outcome.CREATED else status.HTTP_200_OK
        body = {"id": result.judgment.id, "outcome": result.outcome.value, "revision": result.judgment.revision}
        return Response(body, status=code)


class ItemSkip(APIView):
    permission_classes = [IsAnnotator]

    @extend_schema(request=serializers.SkipInputSerializer, responses={200: None})
    def post(self, request, item_id: int):
        data = _valid(serializers.SkipInputSerializer, request.data)
        item = selectors.item_for_annotator(request.user, item_id)
        if item is None:
            raise NotFound(_("no such item, or it is not one you can see"))
        with transaction.atomic():
            item_skip(item=item, annotator=request.user, reason=data["reason"])
        return Response({"skipped": item.id})


class CampaignExports(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("annotation.view_export",), "POST": ("annotation.add_export",)}

    @extend_schema(request=serializers.ExportInputSerializer, responses={202: serializers.ExportSerializer})
    def post(self, request, campaign_id: int):
        campaign = _campaign_for(request, campaign_id)
        data = _valid(serializers.ExportInputSerializer, request.data)
        export = export_create(campaign=campaign, created_by=request.user, **data)
        return Response(serializers.ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=serializers.ExportSerializer(many=True))
    def get(self, request, campaign_id: int):
        campaign = _campaign_for(request, campaign_id)
        exports = campaign.exports.select_related("created_by")[:100]
        return Response(serializers.ExportSerializer(exports, many=True).data)


class ExportDetail(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("annotation.view_export",)}

    @extend_schema(responses=serializers.ExportSerializer)
    def get(self, request, export_id: int):
        exports_fail_stale()
        export = get_object_or_404(Export.objects.select_related("created_by"), pk=export_id)
        return Response(serializers.ExportSerializer(export).data)


class ExportRetry(APIView):
    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("annotation.change_export",)}

    @extend_schema(request=None, responses={202: serializers.ExportSerializer})
    def post(self, request, export_id: int):
        export = export_retry(export=get_object_or_404(Export, pk=export_id))
        return Response(serializers.ExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)


class ExportFile(APIView):
    """Download one published file of an export (admins only: exports hold every annotator's rankings)."""

    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("annotation.view_export",)}

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, export_id: int, name: str):
        export = get_object_or_404(Export, pk=export_id, status=JobStatus.SUCCEEDED)
        allowed = {f["name"] for f in export.files} | {"README.md"}
        if name not in allowed:  # only names we wrote: no path from the request reaches the file system
            raise NotFound(_("export %(export)d has no file named %(name)r")
                           % {"export": export.id, "name": name[:80]})
        path = export_folder(export) / name
        if not path.is_file():
            raise NotFound(_("the file %(name)s of export %(export)d is missing on the server")
                           % {"name": name, "export": export.id})
        return FileResponse(path.open("rb"), as_attachment=True, filename=f"export-{export.id}-{name}")


class CampaignStats(APIView):
    # What the admin's stats page asks for.
    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("annotation.view_campaign",)}

    @extend_schema(responses=serializers.CampaignStatsSerializer)
    def get(self, request, campaign_id: int):
        campaign = _campaign_for(request, campaign_id)
        return Response(campaign_stats(campaign))


def _json_object(data) -> dict:
    if not isinstance(data, dict):
        raise ValidationError({"body": [_("expected a JSON object")]})
    return data


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=_json_object(data))
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# --- People (issue 15): the time and pay report -----------------------------------------------------------------


class TimeReportCSVRenderer(BaseRenderer):
    """`?format=csv` (or `Accept: text/csv`): one row per annotator and language pair (timesheets.time_report_csv)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return time_report_csv(data).encode("utf-8")


class CampaignTimeReport(APIView):
    """Active time, items, gold accuracy and amount due per annotator over a period (docs/campaigns.md)."""

    permission_classes = [ModelPermissions]
    # Pay is not for everyone who may see the campaign: the pay rates' view permission too.
    required_permissions = {"GET": ("annotation.view_campaign", "annotation.view_payrate")}
    renderer_classes = [JSONRenderer, TimeReportCSVRenderer]

    @extend_schema(
        parameters=[OpenApiParameter("from", OpenApiTypes.DATE, description="first day (default: the 1st of this "
                                     "month)"),
                    OpenApiParameter("to", OpenApiTypes.DATE, description="last day, included (default: today)"),
                    OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR,
                   400: OpenApiResponse(description="{from|to: [message]}: not a date, or a period that ends before "
                                                    "it starts or is longer than 366 days")},
    )
    def get(self, request, campaign_id: int):
        campaign = _campaign_for(request, campaign_id)
        date_from, date_to = report_period(date_from=request.query_params.get("from"),
                                           date_to=request.query_params.get("to"))
        response = Response(time_report(campaign=campaign, date_from=date_from, date_to=date_to))
        if request.accepted_renderer.format == "csv":
            name = f"time-report-{campaign.id}-{date_from.isoformat()}-{date_to.isoformat()}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        # Errors are JSON whatever format was asked for: a CSV renderer cannot write {"from": ["…"]}.
        if response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


# --- quality: annotators' records and exclusions (docs/campaigns.md) ---------------------------------------------


class CampaignAnnotators(APIView):
    """Per annotator and language pair: judgments, gold seen, gold accuracy, state; active seconds."""

    permission_classes = [ModelPermissions]
    required_permissions = {"GET": ("annotation.view_campaign", "annotation.view_judgment")}

    @extend_schema(responses=serializers.AnnotatorOverviewSerializer(many=True))
    def get(self, request, campaign_id: int):
        campaign = _campaign_for(request, campaign_id)
        return Response(serializers.AnnotatorOverviewSerializer(annotators_overview(campaign), many=True).data)


class CampaignExclusions(APIView):
    """Leave an annotator's judgments out of the campaign's exports (all, or from `since` on)."""

    permission_classes = [ModelPermissions]
    required_permissions = {"POST": ("annotation.add_exclusion",)}

    @extend_schema(request=serializers.ExclusionInputSerializer,
                   responses={201: serializers.ExclusionSerializer, 200: serializers.ExclusionSerializer})
    def post(self, request, campaign_id: int):
        campaign = _campaign_for(request, campaign_id)
        data = _json_object(request.data)
        exclusion, created = exclusion_create(campaign=campaign, user=data.get("user"), reason=data.get("reason"),
                                              since=data.get("since"), created_by=request.user)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(serializers.ExclusionSerializer(exclusion).data, status=code)
