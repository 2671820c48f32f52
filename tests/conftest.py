"""Shared fixtures: three fixed kinds of users (admin, annotator, other annotator) as in healthchecks' tests,
and a campaign with items imported through the real import service."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation.services.campaigns import campaign_create
from annotation.services.imports import items_import
from annotation.services.people import annotator_create

# One thread per torch process (this process's and every script, worker and server the tests start): two test
# workers share two cores, and torch's default of a thread per core made their threads wait on each other (about 11 %
# more CPU for the same training tests). Set before torch is first imported; a value given outside wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

PASSWORD = "correct-horse-battery-staple"


def item_line(external_id: str, *, prompt_lang: str = "sw", response_lang: str = "ta", n: int = 3,
              pivot: bool = True, prompt: str | None = None, responses: list[str] | None = None) -> dict:
    texts = responses or [f"{external_id} response {index}" for index in range(n)]
    value = {
        "external_id": external_id,
        "prompt": {"text": prompt or f"Prompt of {external_id}", "language": prompt_lang},
        "responses": [{"text": text, "language": response_lang, "model": f"model-{index}"}
                      for index, text in enumerate(texts)],
    }
    if pivot:
        value["pivot"] = {"text": f"Pivot of {external_id}", "language": "en"}
    return value


def jsonl(lines: list[dict]) -> bytes:
    return "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode("utf-8") + b"\n"


# The tests that take a minute or more (training, evaluation, private PostgreSQL clusters) run first: pytest-xdist
# hands tests out in collection order, and one of them started last would leave the other worker idle for its
# length at the end of the run (a 3-minute tail was seen). The order within each group is kept.
# The two longest (about 3 minutes each on this 2-core host) lead.
FIRST_MARKERS = ("slow", "postgres")
LONGEST_FILES = ("tests/training/test_it_learns.py", "tests/test_gpu_check.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        if item.nodeid.split("::")[0] in LONGEST_FILES:
            return 0
        return 1 if any(item.get_closest_marker(name) for name in FIRST_MARKERS) else 2

    items.sort(key=rank)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2's 1,000,000 iterations cost ~0.3 s per user; tests create many users and test no cryptography.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def clear_cache():
    # Rolled-back tests reuse primary keys; a cached value of a previous test's user 3 must not leak into this one.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def english_after_each_test():
    # A request in another interface language leaves that language active in the thread (LocaleMiddleware activates
    # one per request and never resets it), and the services' messages are translated: without this, a test after a
    # French request would read its messages in French.
    from django.utils import translation

    yield
    translation.activate("en")


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("boss", "boss@example.invalid", PASSWORD)


@pytest.fixture
def make_annotator(db):
    def make(username: str, native: list[str], reads: list[str] = ()):
        profile, _token = annotator_create(username=username, password=PASSWORD, native_languages=native,
                                           reading_languages=list(reads))
        return profile.user

    return make


@pytest.fixture
def annotator(make_annotator):
    """Native Tamil, reads Swahili: eligible for sw→ta items."""
    return make_annotator("tamil1", ["ta"], ["sw"])


@pytest.fixture
def other_annotator(make_annotator):
    """Also eligible for sw→ta items."""
    return make_annotator("tamil2", ["ta"], ["en"])


@pytest.fixture
def outsider(make_annotator):
    """An annotator of other languages: sees no sw→ta item."""
    return make_annotator("arabic1", ["ar"], ["fr"])


@pytest.fixture
def campaign(admin_user):
    return campaign_create(name="Test campaign", created_by=admin_user, overlap=2)


@pytest.fixture
def import_items():
    def run(campaign, lines: list[dict]):
        import io

        return items_import(campaign=campaign, source=io.BytesIO(jsonl(lines)))

    return run


@pytest.fixture
def items(campaign, import_items):
    import_items(campaign, [item_line(f"it-{index}") for index in range(5)])
    return list(campaign.items.order_by("id"))


@pytest.fixture
def api():
    def client_for(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


def new_key() -> str:
    return uuid.uuid4().hex


def ranks_for(item, order: list[int] | None = None) -> dict[str, int]:
    """Ranks 1..n for the item's responses in position order (or the given ranks)."""
    ids = list(item.responses.order_by("position").values_list("id", flat=True))
    order = order or list(range(1, len(ids) + 1))
    return {str(response_id): rank for response_id, rank in zip(ids, order, strict=True)}
