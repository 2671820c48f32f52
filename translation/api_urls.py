from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from translation import api

urlpatterns = [
    path("translators/", api.TranslatorList.as_view(), name="api-translators"),
    path("instruction-sets/<id:set_id>/translations/", api.SetTranslations.as_view(), name="api-set-translations"),
    path("translation-jobs/", api.TranslationJobList.as_view(), name="api-translation-jobs"),
    path("translation-jobs/<id:job_id>/", api.TranslationJobDetail.as_view(), name="api-translation-job"),
    path("translation-jobs/<id:job_id>/cancel/", api.TranslationJobCancel.as_view(),
         name="api-translation-job-cancel"),
    path("translation-jobs/<id:job_id>/retry/", api.TranslationJobRetry.as_view(), name="api-translation-job-retry"),
]
