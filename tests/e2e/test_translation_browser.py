"""A translation job from the browser: a staff member opens the translation pages, fills "New translation job" (the
sample-like set, Arabic (right to left) and Simplified Chinese chosen in the list, Swahili typed; the demo's kind of
translator, the tiny model with a prompt, and an OpenAI-compatible endpoint: a real local server answering hand-made
translations) and lands on the job's page; the job runs (here, in the test process: the live server has no worker,
as every background job in these tests); the page, polling, reloads itself and shows the report per language (the
endpoint chosen for every row, the tiny model's noise for none, the scores in the histogram), readable on a 390 px
phone; axe finds no serious violation on these pages."""

from __future__ import annotations

import io
import json
import re

import pytest
from playwright.sync_api import expect

from annotation.models import JobStatus
from tests.e2e.test_axe import serious
from tests.generation.conftest import one_torch_thread, tiny_model_dir  # noqa: F401 - fixtures shared
from tests.translation.fake_translator import ROWS, FakeTranslator
from translation.models import TranslationJob
from translation.services.execution import translation_job_execute

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # translates with the tiny model on the CPU

PHONE = {"width": 390, "height": 844}
DEMO_LIKE = "Demo tiny model (prompted)"
ENDPOINT = "fake-mt"


@pytest.fixture
def translators(db, settings, tmp_path, tiny_model_dir):  # noqa: F811 - the shared fixture
    from generation.models import Endpoint
    from instructions.services.sets import instruction_set_import
    from training.services.registry import base_model_register
    from translation.services.translators import translator_create

    settings.VAR_DIR = tmp_path / "var"
    body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ROWS).encode()
    instruction_set_import(name="Sample-like", source=io.BytesIO(body), language="en", source_name="sample.jsonl")
    base = base_model_register(name="tiny", path=str(tiny_model_dir))
    with FakeTranslator() as server:
        settings.CROSSFEED_GENERATION_ALLOWED_HOSTS = [server.host]
        endpoint = Endpoint.objects.create(name="fake", base_url=server.base_url, model="fake-model",
                                           timeout_seconds=5.0, max_retries=0, concurrency=1)
        # As the demo's, with fewer new tokens: the random model never stops of itself.
        yield [translator_create(name=DEMO_LIKE, kind="llm", base_model=base.id, max_new_tokens=8),
               translator_create(name=ENDPOINT, kind="endpoint", endpoint=endpoint.id)]


def test_a_staff_member_translates_a_set_into_three_languages_from_the_browser(page_as, admin_user, translators,
                                                                               one_torch_thread):  # noqa: F811
    page = page_as(admin_user)
    page.goto("/translation/")
    expect(page.locator("#translators")).to_contain_text(DEMO_LIKE)
    problems = {"jobs": serious(page)}
    with page.expect_navigation():
        page.click("#new-job")
    page.select_option("#id_instruction_set", label="Sample-like")
    page.select_option("#id_languages", ["ar", "zh-Hans"])
    page.fill("#id_language_codes", "sw")
    page.check(f"#field-translators label:has-text('{DEMO_LIKE}') input")
    page.check(f"#field-translators label:has-text('{ENDPOINT}') input")
    page.fill("#id_quality_threshold", "0.6")
    problems["new job"] = serious(page)
    with page.expect_navigation():
        page.click("#queue-job")
    expect(page).to_have_url(re.compile(r"/translation/\d+/$"))
    job = TranslationJob.objects.get()
    assert job.languages == ["ar", "zh-Hans", "sw"] and [t["label"] for t in job.translators] == [DEMO_LIKE, ENDPOINT]
    assert job.quality_threshold == 0.6
    expect(page.locator("#job-badge")).to_have_text("queued")
    expect(page.locator("#per-language")).to_have_count(0)

    job = translation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    # The page polls every 2 s and reloads itself when the job has ended.
    expect(page.locator("#job-badge")).to_have_text("succeeded")
    rows = page.locator("#per-language tbody tr")
    expect(rows).to_have_count(3)
    for index, code in enumerate(["ar", "zh-Hans", "sw"]):
        expect(rows.nth(index)).to_have_attribute("data-language", code)
        expect(rows.nth(index).locator(f"th span[lang='{code}']")).to_be_visible()
        expect(rows.nth(index).locator(f".share[data-translator='{DEMO_LIKE}']")).to_contain_text("0.0%")
        expect(rows.nth(index).locator(f".share[data-translator='{ENDPOINT}']")).to_contain_text("100.0%")
        bars = rows.nth(index).locator(".histogram li")
        expect(bars).to_have_count(10)
        assert sum(int(bars.nth(bin_).get_attribute("data-count")) for bin_ in range(10)) == len(ROWS)
        assert rows.nth(index).locator("td").first.inner_text() == str(len(ROWS))
    assert page.locator("#language-ar th span[lang='ar']").get_attribute("dir") == "rtl"
    expect(page.locator("#job-throughput tbody tr")).to_have_count(2)
    problems["job page"] = serious(page)

    phone = page_as(admin_user, viewport=PHONE)
    for path in (f"/translation/{job.id}/", "/translation/new/"):
        phone.goto(path)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width} px wide on a {PHONE['width']} px screen"
        problems[f"{path} on a phone"] = serious(phone)
    assert problems == dict.fromkeys(problems, []), "axe: serious or critical violations"
