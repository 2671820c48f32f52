from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from training import api

urlpatterns = [
    path("models/", api.BaseModelList.as_view(), name="api-models"),
    path("training-runs/", api.TrainingRunList.as_view(), name="api-training-runs"),
    path("training-runs/uploads/", api.SFTUpload.as_view(), name="api-training-uploads"),
    path("training-runs/<id:run_id>/", api.TrainingRunDetail.as_view(), name="api-training-run"),
    path("training-runs/<id:run_id>/cancel/", api.TrainingRunCancel.as_view(), name="api-training-run-cancel"),
    path("training-runs/<id:run_id>/retry/", api.TrainingRunRetry.as_view(), name="api-training-run-retry"),
]
