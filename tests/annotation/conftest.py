"""Fixtures for the export tests: judged items and a private media folder."""

import pytest

from annotation.models import Item
from annotation.services.judgments import judgment_submit
from tests.conftest import item_line, new_key, ranks_for


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def judged(campaign, import_items, make_annotator):
    """Three sw→ta items and two en→ar items, each judged by two annotators; response 0 is best by both."""
    import_items(campaign, [item_line(f"t-{n}") for n in range(3)]
                 + [item_line(f"a-{n}", prompt_lang="en", response_lang="ar", pivot=False) for n in range(2)])
    tamil = [make_annotator(f"ta{n}", ["ta"], ["sw"]) for n in range(2)]
    arabic = [make_annotator(f"ar{n}", ["ar"], ["en"]) for n in range(2)]
    for item in Item.objects.order_by("id"):
        for user in tamil if item.response_language_id == "ta" else arabic:
            judgment_submit(annotator=user, item_id=item.id, ranks=ranks_for(item), idempotency_key=new_key())
    return campaign
