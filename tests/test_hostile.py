"""Hostile input: the API fuzzed from its own OpenAPI schema, stored cross-site scripting rendered in a real browser,
and import bodies built to break the parser (path traversal, huge lines, bad bytes, deep nesting, floods)."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from annotation.models import AnnotatorProfile
from annotation.services.assignment import item_skip, lease_next
from annotation.services.campaigns import campaign_create
from annotation.services.exports import export_create, export_run
from annotation.services.judgments import judgment_submit
from crossfeed.errors import InvalidInput
from crossfeed.tokens.services import token_issue
from crossfeed.wsgi import application
from tests.conftest import PASSWORD, item_line, jsonl, new_key, ranks_for
from tests.e2e import conftest as e2e
from tests.e2e.test_annotate_browser import open_workspace

# The browser tests' fixtures (tests/e2e/conftest.py), over this module's own `browser` below.
new_context, login, page_as = e2e.new_context, e2e.login, e2e.page_as

# --- 1. the API fuzzed from its schema ----------------------------------------------------------------------------

EXAMPLES_PER_OPERATION = 20
EXAMPLES_ANONYMOUS = 5  # refused before anything else is read: a few examples say as much as many
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture
def quiet_fuzzing(tmp_path):
    """Hypothesis writes caches under .hypothesis/ in the working directory, and Django logs every 4xx as a warning:
    the one goes to a temporary folder, the other is silenced (5xx are logged as errors, and still shown)."""
    request_log = logging.getLogger("django.request")
    level = request_log.level
    request_log.setLevel(logging.ERROR)
    set_hypothesis_home_dir(tmp_path / "hypothesis")
    yield
    set_hypothesis_home_dir(None)
    request_log.setLevel(level)


@pytest.fixture
def wsgi_in_test_transaction():
    # Django closes the database connection when a request starts and ends; inside a test's transaction that would
    # throw the test's data away. Django's own test client disconnects the same signals for the same reason.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield application
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def fuzz_world(admin_user, annotator, other_annotator, campaign, import_items, settings, tmp_path):
    """Real objects for the path parameters: a campaign with items, a judgment, a published export."""
    settings.MEDIA_ROOT = tmp_path / "media"
    import_items(campaign, [item_line(f"fz-{n}") for n in range(4)])
    for person in (annotator, other_annotator):
        leased = lease_next(campaign=campaign, annotator=person)
        judgment_submit(annotator=person, item_id=leased.item_id, ranks=ranks_for(leased.item),
                        idempotency_key=new_key())
    export = export_create(campaign=campaign, created_by=admin_user, min_judgments=1, enqueue=False)
    export = export_run(export_id=export.id)
    assert export.status == "succeeded", export.error
    item = campaign.items.first()
    lease_next(campaign=campaign, annotator=annotator)
    return {
        "ids": {"campaign_id": campaign.id, "item_id": item.id, "export_id": export.id, "run_id": 1,
                "name": "README.md"},
        "tokens": {
            "admin": token_issue(user=admin_user),
            "annotator": token_issue(user=annotator),
            "anonymous": None,
        },
    }


def fuzz(operation, headers: dict[str, str], real_ids: dict, examples: int) -> int:
    """Send one operation's examples (valid and invalid by the schema, with random and with real ids)."""
    names = {parameter.name for parameter in operation.path_parameters}
    fixed = {name: value for name, value in real_ids.items() if name in names}
    strategies = [operation.as_strategy(mode) for mode in schemathesis.GenerationMode]
    if fixed:
        strategies += [operation.as_strategy(mode, path_parameters=fixed) for mode in schemathesis.GenerationMode]
    sent = 0

    # Deterministic and bounded: a fixed seed, no example database on disk, no shrinking (the first failing
    # example is reported as it is).
    @hypothesis_settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=st.one_of(strategies))
    def run(case) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
    return sent


@pytest.mark.django_db
def test_it_answers_every_fuzzed_request_without_a_server_error_or_a_schema_violation(fuzz_world, quiet_fuzzing,
                                                                                       wsgi_in_test_transaction):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_in_test_transaction)
    failures: list[str] = []
    started, sent = time.monotonic(), 0
    operations = [result.ok() for result in schema.get_all_operations()]
    for role, token in fuzz_world["tokens"].items():
        headers = {"Authorization": f"Token {token}"} if token else {}
        for operation in operations:
            try:
                sent += fuzz(operation, headers, fuzz_world["ids"],
                             EXAMPLES_PER_OPERATION if token else EXAMPLES_ANONYMOUS)
            except (AssertionError, BaseExceptionGroup) as exc:  # a check failed: report every operation's
                failures.append(f"{operation.label} as {role}: {exc}"[:3000])
    print(f"{sent} requests to {len(operations)} operations in {time.monotonic() - started:.1f} s")
    assert not failures, "\n\n".join(failures[:30])


# --- 2. stored cross-site scripting, rendered in a real browser ---------------------------------------------------

SCRIPT = "<script>window.__xss=1</script>"
IMG = '<img src=x onerror="window.__xss=2">'
SVG = '"><svg onload=window.__xss=3>'
LINK = "[x](javascript:window.__xss=4)"
HTML_PAYLOAD = f"{SCRIPT} {IMG} {SVG}"
ALL = f"{HTML_PAYLOAD} {LINK}"
MARKDOWN = f"{HTML_PAYLOAD} x"  # ALL as Markdown shows it: the link keeps its text, loses its target
# Live script anywhere on the page: an element the payload made, a handler attribute, a javascript: link.
LIVE = ("script:not([src]):not([type='application/json']), img[src='x'], svg, [onerror], [onload], "
        "a[href^='javascript' i]")


@pytest.fixture
def browser():
    """Chromium for this module's tests only, so that Playwright's event loop never outlives them (see e2e)."""
    if not e2e.CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {e2e.CHROMIUM}: install it with `make browser`")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=e2e.TIMEOUT_MS)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(e2e.CHROMIUM), headless=True,
                                                  args=e2e.CHROMIUM_ARGS, timeout=60_000)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def hostile_item(external_id: str, tag: str) -> dict:
    return {
        "external_id": external_id,
        "prompt": {"text": f"{ALL} prompt {tag}", "language": "sw"},
        "pivot": {"text": f"{ALL} pivot {tag}", "language": "en"},
        "responses": [{"text": f"{ALL} response {tag}", "language": "ta", "model": f"{IMG}{SVG}"},
                      {"text": f"plain answer {tag}", "language": "ta", "model": "plain-model"},
                      {"text": f"another answer {tag}", "language": "ta", "model": "plain-model"}],
    }


@pytest.fixture
def hostile(admin_user, import_items):
    """Every field an outsider writes, filled with the payloads; each stored by the code that stores it."""
    campaign = campaign_create(name=f"Campaign {HTML_PAYLOAD}", created_by=admin_user, overlap=2,
                               guidelines=f"Rules: {ALL}")
    import_items(campaign, [hostile_item(f"xss-{tag}", tag) for tag in ("judged", "skipped", "open")])
    # A user name the API refuses (below) may still come from elsewhere (an identity provider, a legacy import):
    # its rendering must be safe too.
    person = get_user_model().objects.create_user(username=f"{IMG}{SVG}", password=PASSWORD)
    profile = AnnotatorProfile.objects.create(user=person)
    profile.native_languages.set(["ta"])
    profile.reading_languages.set(["sw"])
    judged = lease_next(campaign=campaign, annotator=person).item
    first = str(judged.responses.order_by("position").first().id)
    judgment = judgment_submit(annotator=person, item_id=judged.id, ranks=ranks_for(judged),
                               flags={first: ["wrong_language"]}, comment=f"comment {ALL}",
                               idempotency_key=new_key()).judgment
    skipped = lease_next(campaign=campaign, annotator=person).item
    skip = item_skip(item=skipped, annotator=person, reason=f"reason {HTML_PAYLOAD}")
    return {"campaign": campaign, "person": person, "judgment": judgment, "item": judged, "skip": skip,
            "response": judged.responses.order_by("position").first()}


def assert_inert(page, path: str, *texts: str) -> None:
    """Open the page; no payload ran or became an element, and each text is on the page as text."""
    if path:
        page.goto(path)
    page.wait_for_load_state("networkidle")  # an <img src=x> would have failed to load, and fired, by now
    assert page.evaluate("typeof window.__xss") == "undefined", f"{path}: a payload ran"
    live = page.eval_on_selector_all(LIVE, "nodes => nodes.map(node => node.outerHTML.slice(0, 120))")
    made = [node for node in live if "__xss" in node]
    assert not made, f"{path}: a payload turned into markup: {made}"
    visible = page.inner_text("body")
    for text in texts:
        assert text in visible, f"{path}: {text!r} is not shown as text"


def test_it_refuses_hostile_external_ids_and_user_names(admin_user, campaign, import_items, api):
    with pytest.raises(InvalidInput) as refused:
        import_items(campaign, [item_line(f"xss-{SCRIPT}")])
    assert refused.value.errors[0]["field"] == "external_id"
    response = api(admin_user).post("/api/v1/annotators/", {
        "username": IMG, "password": "a-long-enough-password-9", "native_languages": ["ta"],
    }, format="json")
    assert response.status_code == 400, response.content
    assert "username" in response.json()


@pytest.mark.e2e
def test_it_shows_hostile_text_as_text_to_the_annotator(hostile, page_as):
    campaign, person, item = hostile["campaign"], hostile["person"], hostile["item"]
    page = page_as(person)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    open_workspace(page, campaign)
    page.click('[data-toggle="guidelines"]')
    assert_inert(page, "", f"Campaign {HTML_PAYLOAD}", f"Rules: {MARKDOWN}", f"{MARKDOWN} prompt open",
                 f"{MARKDOWN} pivot open", f"{MARKDOWN} response open", person.username)
    assert page.locator("#guidelines a[href]").count() == 0

    assert_inert(page, "/", f"Campaign {HTML_PAYLOAD}", person.username)
    assert_inert(page, f"/campaigns/{campaign.id}/mine/", f"Campaign {HTML_PAYLOAD}", SCRIPT)
    assert_inert(page, f"/items/{item.id}/revise/", f"{MARKDOWN} prompt judged")
    assert page.input_value("#comment") == f"comment {ALL}"
    assert dialogs == []


@pytest.mark.parametrize("path", [
    "/api/v1/items/251826267800093425523490816/judgments/",  # found by schemathesis: a 500 (SQLite OverflowError)
    "/api/v1/items/9223372036854775808/",
    "/api/v1/campaigns/99999999999999999999/next/",
    "/items/99999999999999999999/revise/",
])
def test_ids_past_64_bits_are_not_found_rather_than_a_server_error(path, annotator, campaign, api):
    client = api(annotator)
    body = {"ranks": {"1": 1}, "idempotency_key": new_key()}
    response = client.post(path, body, format="json") if path.endswith("judgments/") else client.get(path)
    assert response.status_code == 404, (path, response.status_code)


@pytest.mark.e2e
def test_it_shows_hostile_text_as_text_to_the_admin(hostile, admin_user, page_as):
    campaign, person = hostile["campaign"], hostile["person"]
    page = page_as(admin_user)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    assert_inert(page, f"/admin/annotation/judgment/{hostile['judgment'].pk}/change/", f"comment {ALL}",
                 person.username)
    assert_inert(page, "/admin/annotation/judgment/", person.username, f"Campaign {HTML_PAYLOAD}")
    assert_inert(page, f"/admin/annotation/item/{hostile['item'].pk}/change/", f"{ALL} response judged",
                 f"{IMG}{SVG}")
    assert page.input_value("#id_prompt_text") == f"{ALL} prompt judged"
    assert page.input_value("#id_pivot_text") == f"{ALL} pivot judged"
    assert_inert(page, f"/admin/annotation/response/{hostile['response'].pk}/change/", f"{IMG}{SVG}")
    assert_inert(page, f"/admin/annotation/skip/{hostile['skip'].pk}/change/", person.username)
    assert page.input_value("#id_reason") == f"reason {HTML_PAYLOAD}"
    assert_inert(page, "/admin/annotation/skip/", f"reason {HTML_PAYLOAD}")
    assert_inert(page, f"/admin/annotation/campaign/{campaign.pk}/change/")
    assert page.input_value("#id_name") == f"Campaign {HTML_PAYLOAD}"
    assert page.input_value("#id_guidelines") == f"Rules: {ALL}"
    assert_inert(page, "/admin/annotation/campaign/", f"Campaign {HTML_PAYLOAD}")
    assert_inert(page, f"/admin/annotation/campaign/{campaign.pk}/quality/", person.username, f"{IMG}{SVG}")
    assert_inert(page, f"/admin/annotation/campaign/{campaign.pk}/stats/", f"Campaign {HTML_PAYLOAD}")
    assert_inert(page, "/admin/annotation/annotatorprofile/", person.username)
    assert_inert(page, f"/admin/auth/user/{person.pk}/change/")
    assert page.input_value("#id_username") == person.username
    assert dialogs == []


# --- 3. import bodies built to break the parser ---------------------------------------------------------------


@pytest.fixture
def import_url(campaign) -> str:
    return f"/api/v1/campaigns/{campaign.id}/items/"


@pytest.fixture
def admin_api(api, admin_user):
    return api(admin_user)


def good_lines(prefix: str, n: int = 2) -> bytes:
    return jsonl([item_line(f"{prefix}-{index}") for index in range(n)])


def multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart body written by hand: test clients strip the folders off a file name, a hostile client not."""
    boundary = "hostile-boundary-7c1f"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/x-ndjson\r\n\r\n").encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def line_errors(response) -> list[dict]:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    return response.json()["errors"]


@pytest.mark.parametrize("filename", ["../../etc/passwd", "..\\..\\x.jsonl", "/tmp/../../../root/.bashrc"])
def test_it_streams_an_upload_with_a_traversal_file_name_to_no_file_of_that_name(filename, admin_api, import_url,
                                                                                   campaign, settings, tmp_path,
                                                                                   monkeypatch):
    from django.core.files import uploadedfile

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(uploads)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload goes to a temporary file: the one place on disk
    temporary: list[str] = []
    original = uploadedfile.TemporaryUploadedFile.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        temporary.append(self.file.name)

    monkeypatch.setattr(uploadedfile.TemporaryUploadedFile, "__init__", spy)
    passwd = Path("/etc/passwd").stat()
    body, content_type = multipart(filename, good_lines("upload"))

    response = admin_api.post(import_url, data=body, content_type=content_type)

    assert response.status_code == 201, response.content
    assert response.json()["created"] == 2
    assert len(temporary) == 1
    spooled = Path(temporary[0])
    assert spooled.parent == uploads, f"the upload was spooled outside the temporary folder: {spooled}"
    assert ".." not in spooled.name and "passwd" not in spooled.name and "bashrc" not in spooled.name
    assert list(uploads.iterdir()) == [], "the temporary file outlived the request"
    assert Path("/etc/passwd").stat().st_mtime == passwd.st_mtime
    for where in (Path(settings.MEDIA_ROOT), Path(settings.BASE_DIR), tmp_path):
        assert not list(where.glob("x.jsonl")) and not list(where.glob("passwd")), where


def test_it_names_the_line_that_is_longer_than_the_limit(admin_api, import_url, settings):
    limit = settings.CROSSFEED["MAX_IMPORT_LINE_BYTES"]
    huge = json.dumps(item_line("huge", prompt="x" * (limit + 10))).encode()
    body = good_lines("before", 1) + huge + b"\n" + good_lines("after", 1)

    errors = line_errors(admin_api.post(import_url, data=body, content_type="application/x-ndjson"))

    assert errors == [{"line": 2, "field": "", "message": f"line is longer than {limit} bytes"}]


def test_it_names_the_line_with_invalid_utf8(admin_api, import_url):
    body = good_lines("ok", 2) + b'{"external_id": "bad-\xff\xfe"}\n'
    errors = line_errors(admin_api.post(import_url, data=body, content_type="application/x-ndjson"))
    assert [(error["line"], error["message"].split(" (")[0]) for error in errors] == [(3, "not valid UTF-8")]


def test_it_refuses_invalid_utf8_in_a_json_body(admin_api, import_url):
    response = admin_api.post(import_url, data=b'[{"external_id": "\xff"}]', content_type="application/json")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("content_type", ["application/x-ndjson", "application/json"])
def test_it_refuses_json_nested_100000_deep(admin_api, import_url, content_type):
    body = b"[" * 100_000 + b"]" * 100_000
    response = admin_api.post(import_url, data=body, content_type=content_type)
    assert response.status_code == 400, response.content[:500]
    assert "nested" in response.content.decode().lower() or "deep" in response.content.decode().lower()


def test_it_refuses_a_5_mb_string_by_its_length(admin_api, import_url, settings):
    item = item_line("long", prompt="y" * 5_000_000)
    errors = line_errors(admin_api.post(import_url, data=[item], format="json"))
    limit = settings.CROSSFEED["MAX_PROMPT_CHARS"]
    assert errors == [{"line": 1, "field": "prompt.text",
                       "message": f"5000000 characters; the limit is {limit}"}]


def test_it_caps_the_errors_of_10001_garbage_items_and_states_the_count(admin_api, import_url, campaign, settings):
    response = admin_api.post(import_url, data=[1] * 10_001, format="json")
    errors = line_errors(response)
    shown = settings.CROSSFEED["MAX_IMPORT_ERRORS"]
    assert len(errors) == shown
    assert response.json()["detail"].startswith(f"10001 problem(s) in the import (first {shown} shown)")
    assert errors[0] == {"line": 1, "field": "", "message": "expected a JSON object, got a number"}
    assert not campaign.items.exists()


def test_it_refuses_nul_characters(admin_api, import_url, campaign):
    escaped = admin_api.post(import_url, data=[item_line("nul", prompt="before\x00after")], format="json")
    assert line_errors(escaped) == [{"line": 1, "field": "prompt.text", "message": "contains a NUL character"}]
    raw = admin_api.post(import_url, data=good_lines("ok", 1) + b'{"external_id": "a\x00b"}\n',
                         content_type="application/x-ndjson")
    assert [error["line"] for error in line_errors(raw)] == [2]
    assert not campaign.items.exists()


def test_it_refuses_deeply_nested_json_on_any_json_endpoint(admin_api):
    # The parser is the project's default, so every JSON endpoint answers 400, not only the import.
    response = admin_api.post("/api/v1/campaigns/", data=b"[" * 100_000 + b"]" * 100_000,
                              content_type="application/json")
    assert response.status_code == 400, response.content[:500]
