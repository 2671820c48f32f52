from django.urls import path

from annotation import views

app_name = "annotation"

urlpatterns = [
    path("campaigns/<int:campaign_id>/annotate/", views.annotate, name="annotate"),
    path("campaigns/<int:campaign_id>/next/", views.next_item, name="next"),
    path("campaigns/<int:campaign_id>/mine/", views.mine, name="mine"),
    path("items/<int:item_id>/submit/", views.submit, name="submit"),
    path("items/<int:item_id>/skip/", views.skip, name="skip"),
    path("items/<int:item_id>/revise/", views.revise, name="revise"),
]
