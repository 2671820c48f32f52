from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from generation import api, api_rounds

urlpatterns = [
    path("generation-jobs/", api.GenerationJobList.as_view(), name="api-generation-jobs"),
    path("generation-jobs/<id:job_id>/", api.GenerationJobDetail.as_view(), name="api-generation-job"),
    path("generation-jobs/<id:job_id>/cancel/", api.GenerationJobCancel.as_view(), name="api-generation-job-cancel"),
    path("generation-jobs/<id:job_id>/retry/", api.GenerationJobRetry.as_view(), name="api-generation-job-retry"),
    path("endpoints/", api.EndpointList.as_view(), name="api-endpoints"),
    # Rounds (generation/api_rounds.py, the rounds' own module).
    path("training-runs/<id:run_id>/next-round/", api_rounds.NextRound.as_view(), name="api-training-run-next-round"),
    path("campaigns/<id:campaign_id>/lineage/", api_rounds.CampaignLineage.as_view(), name="api-campaign-lineage"),
]
