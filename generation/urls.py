from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from generation import views

app_name = "generation"

urlpatterns = [
    path("", views.jobs, name="jobs"),
    path("new/", views.job_new, name="job_new"),
    path("<id:job_id>/", views.job, name="job"),
    path("<id:job_id>/status/", views.job_status, name="job_status"),
    path("<id:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("<id:job_id>/retry/", views.job_retry, name="job_retry"),
    path("next-round/<id:run_id>/", views.next_round, name="next_round"),
    path("lineage/<id:campaign_id>/", views.lineage, name="lineage"),
]
