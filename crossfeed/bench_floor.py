"""The floor of bench/annotate_load.py: the least a Django request that reads and writes can cost here.

Served only when CROSSFEED_BENCH_FLOOR=1 (the bench sets it for its own server); never in a normal deployment.
"""

import random
import uuid
from datetime import timedelta

from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from annotation.models import Item


@csrf_exempt  # a bench probe with no state worth protecting, and never routed outside the bench
@require_POST
def floor(request: HttpRequest) -> JsonResponse:
    with transaction.atomic():
        item = Item.objects.filter(pk=random.randint(1, 20_000)).values_list("id", flat=True).first()
        Session.objects.create(session_key=uuid.uuid4().hex, session_data="bench",
                               expire_date=timezone.now() + timedelta(minutes=1))
    return JsonResponse({"item": item})
