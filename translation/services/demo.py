"""The translation app's part of the demo (annotation/services/demo.py runs it, through CROSSFEED_DEMO_EXTRAS)."""

from __future__ import annotations

from crossfeed.errors import InvalidInput
from training.models import BaseModel
from training.services.registry import TINY_MODEL_NAME
from translation.services.translators import translator_create

DEMO_TRANSLATOR = "Demo tiny model (prompted)"
# The tiny model has random weights and never stops of itself: with 64 new tokens a demo job of the sample set into
# three languages (354 requests, there and back, x 64 = 22,656 tokens) took 29 s on a shared 2-core CPU.
DEMO_TRANSLATOR_MAX_NEW_TOKENS = 64


def demo_translator_add(*, admin) -> None:
    """A translator on the tiny base model, so that a translation job can be started without setting one up. Only
    when `manage.py build_tiny_model` has registered that model (`make run` builds it before seeding the demo)."""
    tiny = BaseModel.objects.filter(name=TINY_MODEL_NAME).first()
    if tiny is None:
        return
    try:
        translator_create(name=DEMO_TRANSLATOR, kind="llm", base_model=tiny.pk, created_by=admin,
                          max_new_tokens=DEMO_TRANSLATOR_MAX_NEW_TOKENS,
                          notes="The demo's tiny model with the default prompt. Its weights are random: its "
                                "translations are noise, for trying the pages; add a real model or endpoint for "
                                "real work.")
    except InvalidInput:
        return  # its folder is gone since it was registered: the demo goes on without a translator
