from django.urls import path

import crossfeed.converters  # noqa: F401 - registers <id:…>
from annotation import people_views, views

app_name = "annotation"

urlpatterns = [
    path("campaigns/<id:campaign_id>/annotate/", views.annotate, name="annotate"),
    path("campaigns/<id:campaign_id>/next/", views.next_item, name="next"),
    path("campaigns/<id:campaign_id>/mine/", views.mine, name="mine"),
    path("items/<id:item_id>/submit/", views.submit, name="submit"),
    path("items/<id:item_id>/skip/", views.skip, name="skip"),
    path("items/<id:item_id>/unskip/", views.unskip, name="unskip"),
    path("items/<id:item_id>/revise/", views.revise, name="revise"),
    # People (docs/campaigns.md): the annotation page's activity ping for the time report.
    path("campaigns/<id:campaign_id>/activity/", people_views.activity, name="activity"),
    # Quality (docs/campaigns.md): reviewers' disagreement list and adjudication.
    path("review/campaigns/<id:campaign_id>/disagreements/", views.disagreements, name="disagreements"),
    path("review/items/<id:item_id>/adjudicate/", views.adjudicate, name="adjudicate"),
]
