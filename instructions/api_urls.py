from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from instructions import api

urlpatterns = [
    path("instruction-sets/", api.InstructionSetList.as_view(), name="api-instruction-sets"),
    path("instruction-sets/<id:set_id>/", api.InstructionSetDetail.as_view(), name="api-instruction-set"),
]
