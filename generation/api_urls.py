from django.urls import path  # noqa: F401

import crossfeed.converters  # noqa: F401 - registers <id:…>

urlpatterns: list = []
