"""A response's detected language, its confidence and its metadata: the import format, what `next` returns, and the
annotate page's "Detected: …" hint with the wrong-language flag ticked for the annotator to confirm or clear."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pytest
import yaml
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from annotation import language_hint
from annotation.item_format import Limits, check_record
from annotation.models import Item, Judgment, Response
from annotation.services.campaigns import campaign_create
from annotation.services.imports import ImportRefused, items_import
from annotation.services.judgments import judgment_submit
from annotation.templatetags.crossfeed import language_name
from evaluation.metrics import langid
from tests.conftest import item_line, jsonl, new_key, ranks_for

HTMX = {"HTTP_HX_REQUEST": "true"}
METADATA = {"generator": "tiny-sft", "params": {"temperature": 0.7, "top_p": 0.95, "seed": 3}, "sample": 0}


def detected_line(external_id: str = "gen-1", **first) -> dict:
    """A sw→ta item whose first response carries the given keys (detected_language, metadata ...)."""
    line = item_line(external_id)
    line["responses"][0].update(first)
    return line


def refused(campaign, lines: list[dict] | bytes) -> list[dict]:
    """The errors of an import of a JSONL body (bytes) or of parsed lines (a list, as the API's JSON array)."""
    source = io.BytesIO(lines) if isinstance(lines, bytes) else lines
    with pytest.raises(ImportRefused) as caught:
        items_import(campaign=campaign, source=source)
    return caught.value.errors


def only_error(campaign, lines) -> dict:
    errors = refused(campaign, lines)
    assert len(errors) == 1, errors
    return errors[0]


# --- import: accepted and stored ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_stores_the_three_keys_of_a_response(campaign, import_items):
    line = detected_line(detected_language="eng_Latn", detected_confidence=0.97, metadata=METADATA)
    line["responses"][1].update(detected_language="ta", detected_confidence=1)
    import_items(campaign, [line])
    first, second, third = Response.objects.order_by("position")
    assert (first.detected_language, first.detected_confidence, first.metadata) == ("en", 0.97, METADATA)
    assert (second.detected_language, second.detected_confidence, second.metadata) == ("ta", 1.0, {})
    assert (third.detected_language, third.detected_confidence, third.metadata) == ("", None, {})


@pytest.mark.django_db
def test_it_takes_null_for_not_measurable(campaign, import_items):
    import_items(campaign, [detected_line(detected_language=None, detected_confidence=None)])
    assert set(Response.objects.values_list("detected_language", "detected_confidence")) == {("", None)}


@pytest.mark.django_db
def test_it_takes_a_language_without_a_confidence(campaign, import_items):
    import_items(campaign, [detected_line(detected_language="zh")])
    # The registry's code for a bare "zh", as every language code of the format.
    assert Response.objects.get(position=0).detected_language == "zh-Hans"


@pytest.mark.django_db
def test_it_takes_metadata_of_four_levels_and_8_kib(campaign, import_items):
    four_levels = {"a": {"b": {"c": [1]}}}
    at_limit = {"a": "x" * (8192 - len('{"a":""}'))}
    line = detected_line(metadata=four_levels)
    line["responses"][1]["metadata"] = at_limit
    import_items(campaign, [line])
    assert Response.objects.get(position=1).metadata == at_limit


# --- import: refused, naming line and field ----------------------------------------------------------------------


REFUSALS = [
    ("metadata", ["a list"], "expected an object, got a list"),
    ("metadata", {"a": {"b": {"c": {"d": {"e": 1}}}}}, "nested too deeply: at most 4 levels"),
    ("metadata", {"a": [[[["deep"]]]]}, "nested too deeply"),
    ("metadata", {"a": "x" * (8192 - len('{"a":""}') + 1)}, "8193 bytes as JSON; the limit is 8192 (8 KiB)"),
    ("metadata", {"a": "é" * 4093}, "8194 bytes as JSON"),  # UTF-8 bytes, not characters
    ("metadata", {"a\ud800": 1}, "Surrogate characters are not allowed: U+D800."),
    ("detected_language", "xx", "unknown language 'xx'; see GET /api/v1/languages/"),
    ("detected_language", "", "expected a language code (BCP-47 or FLORES-200), or null"),
    ("detected_language", 7, "got a number"),
    ("detected_language", ["en"], "got a list"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "value", "message"), REFUSALS)
def test_it_refuses_a_bad_value_naming_the_field(campaign, key, value, message):
    line = item_line("fine")
    line["responses"][1][key] = value
    error = only_error(campaign, [item_line("first"), line])
    assert (error["line"], error["field"]) == (2, f"responses[1].{key}")
    assert message in error["message"]
    assert not Item.all_objects.exists()


CONFIDENCE_REFUSALS = [
    (1.5, "expected a number from 0 to 1 (the detector's probability), got 1.5"),
    (-0.01, "got -0.01"),
    (10**50, "expected a number from 0 to 1"),
    ("0.9", "expected a number from 0 to 1, or null; got a string"),
    (True, "got a boolean"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("value", "message"), CONFIDENCE_REFUSALS)
def test_it_refuses_a_confidence_outside_0_to_1(campaign, value, message):
    error = only_error(campaign, [detected_line(detected_language="en", detected_confidence=value)])
    assert (error["line"], error["field"]) == (1, "responses[0].detected_confidence")
    assert message in error["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_it_refuses_what_json_has_no_number_for(campaign, token):
    # Python's JSON parser reads these tokens; no database stores them in a float or a JSON column.
    text = json.dumps(detected_line(detected_language="en", detected_confidence=0.5))
    confidence = text.replace('"detected_confidence": 0.5', f'"detected_confidence": {token}')
    metadata = text.replace('"detected_confidence": 0.5', f'"detected_confidence": 0.5, "metadata": {{"t": {token}}}')
    errors = refused(campaign, f"{confidence}\n{metadata}\n".encode())
    assert [(e["line"], e["field"]) for e in errors] == [(1, "responses[0].detected_confidence"),
                                                          (2, "responses[0].metadata")]
    assert "NaN or Infinity" in errors[1]["message"]


@pytest.mark.django_db
def test_it_refuses_a_confidence_without_a_language(campaign):
    for first in ({"detected_confidence": 0.8}, {"detected_language": None, "detected_confidence": 0.8}):
        error = only_error(campaign, [detected_line(**first)])
        assert error["field"] == "responses[0].detected_confidence"
        assert "given without detected_language" in error["message"]


@pytest.mark.django_db
def test_it_still_refuses_unknown_keys_and_lists_the_new_ones(campaign):
    error = only_error(campaign, [detected_line(detected_script="Latn")])
    assert error["field"] == "responses[0].detected_script"
    assert error["message"] == ("unknown field (allowed: detected_confidence, detected_language, language, metadata, "
                                "model, text)")


@pytest.mark.django_db
def test_the_api_names_line_and_field(api, admin_user, campaign):
    body = jsonl([item_line("ok"), detected_line("bad", detected_language="en", detected_confidence=2)])
    response = api(admin_user).post(f"/api/v1/campaigns/{campaign.id}/items/", body,
                                    content_type="application/x-ndjson")
    assert response.status_code == 400
    assert [(e["line"], e["field"]) for e in response.json()["errors"]] == [(2, "responses[0].detected_confidence")]


# --- import: content hash ------------------------------------------------------------------------------------------


def test_items_without_the_new_keys_keep_their_content_hash():
    record, _ = check_record(item_line("old"), 1, Limits())
    canonical = {  # the formula before responses had metadata and a detection
        "prompt": [record.prompt_text, record.prompt_language],
        "pivot": [record.pivot_text, record.pivot_language],
        "responses": [[r.text, r.language, r.model] for r in record.responses],
        "metadata": record.metadata,
    }
    encoded = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    assert record.content_hash() == hashlib.sha256(encoded).hexdigest()


@pytest.mark.parametrize("first", [{"detected_language": "en"},
                                   {"detected_language": "en", "detected_confidence": 0.9},
                                   {"metadata": {"seed": 1}}])
def test_metadata_and_detection_are_part_of_the_content(first):
    plain, _ = check_record(item_line("same"), 1, Limits())
    changed, _ = check_record(detected_line("same", **first), 1, Limits())
    assert plain.content_hash() != changed.content_hash()


@pytest.mark.django_db
def test_a_reimport_that_changes_only_the_detection_updates_an_unjudged_item(campaign, import_items):
    line = detected_line(detected_language="en", detected_confidence=0.9, metadata=METADATA)
    import_items(campaign, [line])
    assert import_items(campaign, [line]).as_dict() == {"created": 0, "updated": 0, "unchanged": 1}
    line["responses"][0].update(detected_language="ta", detected_confidence=0.6)
    assert import_items(campaign, [line]).as_dict() == {"created": 0, "updated": 1, "unchanged": 0}
    assert Response.objects.get(position=0).detected_language == "ta"


@pytest.mark.django_db
def test_a_judged_item_keeps_the_detection_its_annotators_saw(campaign, import_items, annotator):
    line = detected_line(detected_language="en", detected_confidence=0.9)
    import_items(campaign, [line])
    item = Item.objects.get()
    judgment_submit(annotator=annotator, item_id=item.id, ranks=ranks_for(item), idempotency_key=new_key())
    line["responses"][0]["metadata"] = {"note": "changed after judging"}
    error = only_error(campaign, [line])
    assert error["field"] == "external_id" and "already has judgments" in error["message"]


# --- next ----------------------------------------------------------------------------------------------------------


def next_responses(client, campaign) -> dict[str, dict]:
    body = client.get(f"/api/v1/campaigns/{campaign.id}/next/").json()
    return {response["text"]: response for response in body["item"]["responses"]}


@pytest.mark.django_db
def test_next_returns_the_detection_rounded_and_null_when_absent(api, annotator, campaign, import_items):
    line = detected_line(detected_language="en", detected_confidence=0.987654)
    line["responses"][1].update(detected_language="ta")
    import_items(campaign, [line])
    responses = next_responses(api(annotator), campaign)
    first, second, third = (responses[f"gen-1 response {index}"] for index in range(3))
    assert (first["detected_language"], first["detected_confidence"]) == ("en", 0.988)
    assert (second["detected_language"], second["detected_confidence"]) == ("ta", None)
    assert (third["detected_language"], third["detected_confidence"]) == (None, None)


@pytest.mark.django_db
def test_next_costs_no_more_queries_with_detections(api, admin_user, annotator, other_annotator, import_items):
    campaign = campaign_create(name="One judgment each", created_by=admin_user, overlap=1)
    import_items(campaign, [item_line("plain"), detected_line(detected_language="en", detected_confidence=0.9)])
    counts = []
    for user in (annotator, other_annotator):  # overlap 1: each is handed one of the two items
        client = api(user)
        with CaptureQueriesContext(connection) as queries:
            body = client.get(f"/api/v1/campaigns/{campaign.id}/next/").json()
        counts.append((body["item"]["responses"][0]["text"].split()[0], len(queries)))
    assert {name for name, _ in counts} == {"plain", "gen-1"}
    assert counts[0][1] == counts[1][1], counts


def test_the_schema_describes_the_detection_as_nullable(tmp_path):
    path = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(path))
    properties = yaml.safe_load(path.read_text())["components"]["schemas"]["ResponseOut"]["properties"]
    assert properties["detected_language"] == {**properties["detected_language"], "type": "string", "nullable": True}
    assert properties["detected_confidence"]["type"] == "number" and properties["detected_confidence"]["nullable"]


# --- the hint: which detection differs, and the flag it ticks --------------------------------------------------


@pytest.mark.parametrize(("language", "detected", "differs"), [
    ("ta", "en", True),
    ("sw", "en", True),
    ("ta", "ta", False),
    ("ta", None, False),
    ("ta", "", False),
    ("zh-Hans", "zh", False),  # the identifier names the language, not the variant
    ("zh-Hant", "zh-Hans", False),
    ("zh-Hans", "yue", False),  # varieties folded into their parent, as langid does
    ("ar", "arz", False),
    ("nb", "no", False),  # aliases
    ("tl", "fil", False),
    ("id", "ms", False),  # neighbours the identifier cannot tell apart
    ("hr", "sr", False),
    ("pt-BR", "pt", False),
    ("ja", "zh-Hans", True),
])
def test_it_hints_only_at_another_language(language, detected, differs):
    assert language_hint.detected_differs(language, detected) is differs


def test_its_tables_are_those_of_the_language_id():
    assert language_hint.CODE_ALIASES == langid._CODE_ALIASES  # noqa: SLF001
    assert language_hint.FOLDED_INTO == langid._FOLDED_INTO  # noqa: SLF001
    assert set(language_hint.CONFUSABLE) == set(langid._CONFUSABLE)  # noqa: SLF001
    assert all(language_hint.primary_language(code) == langid._primary(code)  # noqa: SLF001
               for code in ("nb", "fil", "zh-Hant", "pt_BR", "swh", "en"))


@pytest.mark.parametrize(("saved", "hinted", "vocabulary", "shown"), [
    (None, True, ["wrong_language", "unsafe"], ["wrong_language"]),  # first judgment: pre-set
    (None, False, ["wrong_language"], []),
    (None, True, ["unsafe"], []),  # the campaign has no such flag
    ([], True, ["wrong_language"], []),  # revised or re-sent without it: the annotator cleared it
    (["unsafe"], True, ["wrong_language", "unsafe"], ["unsafe"]),
])
def test_the_saved_flags_win_over_the_preset(saved, hinted, vocabulary, shown):
    assert language_hint.flags_to_show(saved=saved, hinted=hinted, flag_vocabulary=vocabulary) == shown


# --- the hint on the page -----------------------------------------------------------------------------------------


def cards(html: str) -> dict[str, str]:
    """{response text: its card's HTML}."""
    found = re.findall(r'<article class="response card.*?</article>', html, re.S)
    return {re.search(r"gen-1 response \d", card).group(): card for card in found}


def wrong_language_checked(card: str) -> bool:
    box = re.search(r'<input type="checkbox" name="flag_\d+" value="wrong_language"[^>]*>', card).group()
    return " checked" in box


@pytest.fixture
def hinted_item(campaign, import_items):
    line = detected_line(detected_language="en", detected_confidence=0.973)
    line["responses"][1].update(detected_language="ta", detected_confidence=0.99)
    import_items(campaign, [line])
    return Item.objects.get()


def first_page(client, user, campaign) -> str:
    client.force_login(user)
    response = client.post(reverse("annotation:next", kwargs={"campaign_id": campaign.id}), **HTMX)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_the_page_hints_and_presets_the_flag_of_the_other_language(client, annotator, campaign, hinted_item):
    shown = cards(first_page(client, annotator, campaign))
    english, tamil, unmeasured = shown["gen-1 response 0"], shown["gen-1 response 1"], shown["gen-1 response 2"]
    response_id = hinted_item.responses.get(position=0).id
    assert f'<span class="detected-hint" id="detected-{response_id}" data-detected="en"' in english
    assert "Detected: English" in english
    assert 'title="language identification, 97% confidence"' in english
    assert '<span class="visually-hidden"> (language identification, 97% confidence)</span>' in english
    assert f'aria-describedby="detected-{response_id}"' in english.split("<header>")[0]  # the card
    assert wrong_language_checked(english)
    for card in (tamil, unmeasured):
        assert "detected-hint" not in card and "aria-describedby" not in card.split("<header>")[0]
        assert not wrong_language_checked(card)


@pytest.mark.django_db
def test_the_hint_names_the_language_in_the_interface_language(client, annotator, campaign, hinted_item):
    annotator.annotator.ui_language = "fr"
    annotator.annotator.save()
    english = cards(first_page(client, annotator, campaign))["gen-1 response 0"]
    with translation.override("fr"):
        french = language_name("en")
        sentence = translation.gettext("Detected: %(language)s") % {"language": french}
    with translation.override("en"):
        assert french != language_name("en")
    assert sentence in english


@pytest.mark.django_db
def test_a_revision_shows_the_saved_flags(client, annotator, campaign, hinted_item):
    judgment_submit(annotator=annotator, item_id=hinted_item.id, ranks=ranks_for(hinted_item),
                    idempotency_key=new_key())  # the annotator cleared the pre-set flag
    client.force_login(annotator)
    html = client.get(reverse("annotation:revise", kwargs={"item_id": hinted_item.id})).content.decode()
    english = cards(html)["gen-1 response 0"]
    assert "Detected: English" in english and not wrong_language_checked(english)


@pytest.mark.django_db
def test_a_refused_submit_keeps_the_cleared_flag(client, annotator, campaign, hinted_item):
    first_page(client, annotator, campaign)
    ranks = {f"rank_{key}": value for key, value in ranks_for(hinted_item).items()}
    ranks.popitem()  # one rank missing: refused
    response = client.post(reverse("annotation:submit", kwargs={"item_id": hinted_item.id}),
                           {**ranks, "idempotency_key": new_key()}, **HTMX)
    assert response.status_code == 422
    assert not wrong_language_checked(cards(response.content.decode())["gen-1 response 0"])
    assert not Judgment.objects.exists()
