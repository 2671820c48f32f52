from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from annotation import api

urlpatterns = [
    path("languages/", api.LanguageList.as_view(), name="api-languages"),
    path("annotators/", api.AnnotatorCreate.as_view(), name="api-annotators"),
    path("campaigns/", api.CampaignList.as_view(), name="api-campaigns"),
    path("campaigns/<id:campaign_id>/", api.CampaignDetail.as_view(), name="api-campaign"),
    path("campaigns/<id:campaign_id>/items/", api.CampaignItems.as_view(), name="api-campaign-items"),
    path("campaigns/<id:campaign_id>/next/", api.CampaignNext.as_view(), name="api-campaign-next"),
    path("campaigns/<id:campaign_id>/stats/", api.CampaignStats.as_view(), name="api-campaign-stats"),
    path("campaigns/<id:campaign_id>/exports/", api.CampaignExports.as_view(), name="api-campaign-exports"),
    path("campaigns/<id:campaign_id>/annotators/", api.CampaignAnnotators.as_view(), name="api-campaign-annotators"),
    path("campaigns/<id:campaign_id>/exclusions/", api.CampaignExclusions.as_view(), name="api-campaign-exclusions"),
    path("exports/<id:export_id>/", api.ExportDetail.as_view(), name="api-export"),
    path("exports/<id:export_id>/retry/", api.ExportRetry.as_view(), name="api-export-retry"),
    path("exports/<id:export_id>/files/<str:name>", api.ExportFile.as_view(), name="api-export-file"),
    path("items/<id:item_id>/", api.ItemDetail.as_view(), name="api-item"),
    path("items/<id:item_id>/judgments/", api.ItemJudgments.as_view(), name="api-item-judgments"),
    path("items/<id:item_id>/skip/", api.ItemSkip.as_view(), name="api-item-skip"),
    path("campaigns/<id:campaign_id>/time-report/", api.CampaignTimeReport.as_view(), name="api-campaign-time-report"),
]
