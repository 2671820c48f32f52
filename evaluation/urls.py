from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from evaluation import views

app_name = "evaluation"

urlpatterns = [
    path("", views.runs, name="runs"),
    path("runs/<id:run_id>/", views.run, name="run"),
    path("runs/<id:run_id>/status/", views.run_status, name="run_status"),
    path("runs/<id:run_id>/results.csv", views.results_csv, name="results_csv"),
    path("runs/<id:run_id>/outputs/", views.outputs, name="outputs"),
    path("runs/<id:run_id>/retry/", views.retry, name="retry"),
    path("runs/<id:run_id>/cancel/", views.cancel, name="cancel"),
    path("compare/", views.compare, name="compare"),
    path("coverage/", views.coverage, name="coverage"),
    path("win-rate/", views.winrate_create, name="winrate_create"),
    path("win-rate/<id:campaign_id>/", views.winrate, name="winrate"),
]
