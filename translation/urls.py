from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from translation import views

app_name = "translation"

urlpatterns = [
    path("", views.jobs, name="jobs"),
    path("new/", views.job_new, name="job_new"),
    path("<id:job_id>/", views.job, name="job"),
    path("<id:job_id>/status/", views.job_status, name="job_status"),
    path("<id:job_id>/exports/", views.job_exports, name="job_exports"),
    path("<id:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("<id:job_id>/retry/", views.job_retry, name="job_retry"),
    path("<id:job_id>/post-edit/", views.job_post_edit, name="job_post_edit"),
    path("<id:job_id>/export/", views.job_export, name="job_export"),
]
