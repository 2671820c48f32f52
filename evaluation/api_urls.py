from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from evaluation import api

urlpatterns = [
    path("benchmarks/", api.BenchmarkList.as_view(), name="api-benchmarks"),
    path("evaluation-runs/", api.EvaluationRunList.as_view(), name="api-evaluation-runs"),
    path("evaluation-runs/<id:run_id>/", api.EvaluationRunDetail.as_view(), name="api-evaluation-run"),
    path("evaluation-runs/<id:run_id>/retry/", api.EvaluationRunRetry.as_view(), name="api-evaluation-run-retry"),
    path("evaluation-runs/<id:run_id>/cancel/", api.EvaluationRunCancel.as_view(),
         name="api-evaluation-run-cancel"),
    path("evaluation-runs/<id:run_id>/outputs", api.EvaluationRunOutputs.as_view(),
         name="api-evaluation-run-outputs"),
]
