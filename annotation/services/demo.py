"""The demo that `make run` seeds into an empty database: the feedback languages' campaign, an admin and
annotators with different language skills. Passwords are random, generated once, kept in var/ (mode 0600).

The campaign runs with quality control on (docs/campaigns.md), so that a first look shows it at work: besides the
items to rank (data/demo_items.jsonl), data/demo_checks.jsonl holds hand-written gold items (two per language pair,
some with a response in the wrong language that must be flagged) and qualification sets (three items per gated
pair) in pairs that every demo annotator can take. The hand-written "Sample instructions" set and, when the tiny
base model is registered, a translator on it ("Demo tiny model (prompted)") make a translation job possible at once.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.module_loading import import_string

from annotation.models import Campaign
from annotation.services.campaigns import campaign_create
from annotation.services.imports import items_import
from annotation.services.people import annotator_create

DATA = Path(__file__).resolve().parent.parent / "data"
DEMO_CAMPAIGN = "Demo: cross-lingual feedback"

# (username, native languages, other languages read). Overlapping skills, so that items reach k = 2.
DEMO_ANNOTATORS = [
    ("amina", ["sw", "ar", "en"], ["fr", "am"]),
    ("karthik", ["ta", "hi", "ur"], ["en", "sw"]),
    ("layla", ["ar", "fa", "ur"], ["en", "fr"]),
    ("wei", ["zh-Hans", "ja", "ko"], ["en"]),
    ("yuki", ["ja", "ko", "zh-Hans"], ["en", "tr"]),
    ("ade", ["yo", "en", "sw"], ["am", "ar"]),
    ("priya", ["hi", "bn", "ur", "ta"], ["en", "es", "ru"]),
    ("somchai", ["th", "id", "ru"], ["en", "vi"]),
    ("olga", ["ru", "th", "id", "bn"], ["en", "de", "zh-Hans"]),
]

GUIDELINES = """\
## How to rank

1. Read the **instruction** (and its English version, if you need it).
2. Rank the responses: **1 is best**. Give equal ranks when two responses are equally good.
3. A response must answer *in the language shown on its badge*. If it answers in another language, flag it
   **wrong language** and rank it low, however good its content.
4. Flag **incorrect** facts, **unsafe** content, **incomplete** answers and **garbled** text.

Skip an item when you cannot judge it; say why.
"""

# Quality control in the demo: the campaign defaults (services/quality.py) are for a real campaign of thousands of
# items, where gold_rate 0 means "no gold" and 10 gold items come before any verdict. A demo annotator judges about
# 80 × 2 / 9 ≈ 18 items, so one in five is gold (≈ 3–4, as many as their pairs have) and a verdict comes after the
# 2 gold items of a pair: 2 of 2 right is ok, 1 of 2 (50 %) warned, 0 of 2 excluded. Qualification: 2 of the 3
# items of a gated pair right (0.6) opens it.
DEMO_QUALITY = {"gold_rate": 0.2, "gold_min_seen": 2, "gold_warn_below": 0.7, "gold_exclude_below": 0.5,
                "qualification_pass_mark": 0.6}


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    languages: str


def _password_file(var_dir: Path) -> Path:
    return var_dir / "demo-logins.json"


def demo_logins(var_dir: Path) -> list[DemoLogin]:
    path = _password_file(var_dir)
    if not path.is_file():
        return []
    return [DemoLogin(**row) for row in json.loads(path.read_text(encoding="utf-8"))]


@transaction.atomic
def demo_seed(*, var_dir: Path) -> list[DemoLogin]:
    """Create the demo; refuses when the database already has a campaign or users (never touches real data)."""
    user_model = get_user_model()
    if Campaign.objects.exists() or user_model.objects.exists():
        raise RuntimeError("the database is not empty: the demo is only seeded into an empty database")
    logins = [DemoLogin("admin", secrets.token_urlsafe(12), "admin", "all")]
    user_model.objects.create_superuser("admin", "admin@example.invalid", logins[0].password)
    for username, native, reads in DEMO_ANNOTATORS:
        password = secrets.token_urlsafe(12)
        annotator_create(username=username, password=password, native_languages=native, reading_languages=reads)
        skills = f"native {', '.join(native)}; reads {', '.join(reads)}"
        logins.append(DemoLogin(username, password, "annotator", skills))
    admin = user_model.objects.get(username="admin")
    campaign = campaign_create(name=DEMO_CAMPAIGN, created_by=admin, overlap=2, guidelines=GUIDELINES,
                               **DEMO_QUALITY)
    for name in ("demo_items.jsonl", "demo_checks.jsonl"):
        with (DATA / name).open("rb") as source:
            items_import(campaign=campaign, source=source)
    # The other apps' parts (an instruction set, a translator), named in settings: annotation imports none of them.
    for path in settings.CROSSFEED_DEMO_EXTRAS:
        import_string(path)(admin=admin)
    _write_logins(var_dir, logins)
    return logins


def _write_logins(var_dir: Path, logins: list[DemoLogin]) -> None:
    var_dir.mkdir(parents=True, exist_ok=True)
    path = _password_file(var_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump([login.__dict__ for login in logins], handle, indent=1)
