from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from instructions import api

urlpatterns = [
    path("instruction-sets/", api.InstructionSetList.as_view(), name="api-instruction-sets"),
    path("instruction-sets/<id:set_id>/", api.InstructionSetDetail.as_view(), name="api-instruction-set"),
    path("instruction-sets/<id:set_id>/exports/", api.SetExports.as_view(), name="api-instruction-set-exports"),
    path("instruction-set-exports/<id:export_id>/", api.InstructionExportDetail.as_view(),
         name="api-instruction-export"),
    path("instruction-set-exports/<id:export_id>/retry/", api.InstructionExportRetry.as_view(),
         name="api-instruction-export-retry"),
    path("instruction-set-exports/<id:export_id>/files/<str:name>", api.InstructionExportFile.as_view(),
         name="api-instruction-export-file"),
]
