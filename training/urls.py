from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from training import views

app_name = "training"

urlpatterns = [
    path("", views.runs, name="runs"),
    path("runs/<id:run_id>/", views.run, name="run"),
    path("runs/<id:run_id>/status/", views.run_status, name="run_status"),
    path("runs/<id:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<id:run_id>/retry/", views.run_retry, name="run_retry"),
]
