import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotation.models import AnnotatorProfile, Campaign, Item, Judgment
from tests.conftest import item_line, jsonl


def test_create_annotator_prints_a_token(db, monkeypatch):
    monkeypatch.setenv("CROSSFEED_PASSWORD", "a-long-enough-password-77")
    out = io.StringIO()
    call_command("create_annotator", "amina", "--native", "sw,swh_Latn", "--reads", "en", stdout=out)
    profile = AnnotatorProfile.objects.get(user__username="amina")
    assert profile.language_codes() == (["sw"], ["en", "sw"])
    assert "API token:" in out.getvalue()


def test_create_annotator_explains_a_bad_language(db, monkeypatch):
    monkeypatch.setenv("CROSSFEED_PASSWORD", "a-long-enough-password-77")
    with pytest.raises(CommandError, match="native_languages: unknown language 'klingon'"):
        call_command("create_annotator", "bob", "--native", "klingon")
    assert not get_user_model().objects.exists()


def test_import_items_reports_file_and_line(campaign, tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_bytes(jsonl([item_line("a"), item_line("b", response_lang="nope")]))
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was stored"):
        call_command("import_items", campaign.name, str(path), stderr=err)
    assert f"{path}:2 responses[0].language: unknown language 'nope'" in err.getvalue()
    assert Item.objects.count() == 0


def test_import_items_by_id_is_idempotent(campaign, tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_bytes(jsonl([item_line("a"), item_line("b")]))
    out = io.StringIO()
    call_command("import_items", str(campaign.id), str(path), stdout=out, verbosity=0)
    call_command("import_items", str(campaign.id), str(path), stdout=out, verbosity=0)
    assert "0 created, 0 updated, 2 unchanged" in out.getvalue()


def test_import_items_names_a_missing_campaign_or_file(campaign, tmp_path):
    with pytest.raises(CommandError, match="no campaign"):
        call_command("import_items", "nope", str(tmp_path / "x.jsonl"))
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_items", campaign.name, str(tmp_path / "x.jsonl"))


def test_seed_demo_fills_an_empty_database_once(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    campaign = Campaign.objects.get()
    assert campaign.items.count() >= 60
    pairs = set(campaign.items.values_list("prompt_language", "response_language"))
    assert len(pairs) >= 12
    logins = json.loads((tmp_path / "demo-logins.json").read_text())
    assert {login["username"] for login in logins} >= {"admin", "amina", "layla", "wei"}
    assert logins[0]["password"] in out.getvalue()
    assert (tmp_path / "demo-logins.json").stat().st_mode & 0o777 == 0o600
    # A second run neither seeds again nor fails.
    call_command("seed_demo", "--if-empty", stdout=io.StringIO())
    assert Campaign.objects.count() == 1 and not Judgment.objects.exists()
    with pytest.raises(CommandError, match="not empty"):
        call_command("seed_demo")


def test_demo_annotators_can_work(db, settings, tmp_path):
    from annotation.services.assignment import lease_next

    settings.VAR_DIR = tmp_path
    call_command("seed_demo", stdout=io.StringIO())
    campaign = Campaign.objects.get()
    for username in ["amina", "layla", "wei", "priya"]:
        user = get_user_model().objects.get(username=username)
        assert lease_next(campaign=campaign, annotator=user) is not None, username


def test_reclaim_leases_command(db):
    out = io.StringIO()
    call_command("reclaim_leases", stdout=out)
    assert "reclaimed 0 expired lease(s)" in out.getvalue()
