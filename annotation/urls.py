from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from annotation import views

app_name = "annotation"

urlpatterns = [
    path("campaigns/<id:campaign_id>/annotate/", views.annotate, name="annotate"),
    path("campaigns/<id:campaign_id>/next/", views.next_item, name="next"),
    path("campaigns/<id:campaign_id>/mine/", views.mine, name="mine"),
    path("items/<id:item_id>/submit/", views.submit, name="submit"),
    path("items/<id:item_id>/skip/", views.skip, name="skip"),
    path("items/<id:item_id>/revise/", views.revise, name="revise"),
]
