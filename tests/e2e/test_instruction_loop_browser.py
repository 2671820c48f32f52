"""Issue 14's "Done when", in a real browser: an admin turns the sample instruction set into an SFT dataset in three
languages with post-edits by annotators, and trains on it, without leaving the browser.

The admin queues a translation job of the shipped sample set (instructions/data/sample_alpaca.jsonl) into Arabic
(right to left), Simplified Chinese and Swahili with the demo's translator (the tiny model with a prompt) and asks
for post-editing; the job runs (here, in the test process: the live server has no worker, as every background job
in these tests); its campaign exists when it ends. The tiny model's weights are random, so no translation is
acceptable and every row goes to the native speakers, as a bad translator's would: one annotator per language
edits one translation with the keyboard and accepts another. The admin exports the set from the job's page (the
source and the three languages: the post-edited rows only), follows "Train on this" to the training form with the
export chosen, queues an SFT run, and the run (the real sft.py on the tiny model) succeeds on exactly those rows."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from annotation.models import Campaign, JobStatus
from instructions.models import InstructionExport, InstructionSet
from instructions.services.demo import DEMO_INSTRUCTION_SET, demo_instruction_set_import
from instructions.services.exports import export_folder, instruction_export_run
from tests.generation.conftest import one_torch_thread, tiny_model_dir  # noqa: F401 - fixtures shared
from tests.training.conftest import FAST
from tests.translation.fake_translator import FakeTranslator
from training.models import TrainingRun
from training.services.execution import training_run_execute
from translation.models import Translation, TranslationJob
from translation.services.execution import translation_job_execute

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # translates and trains with the tiny model on the CPU

TRANSLATOR = "Demo tiny model (prompted)"
ENDPOINT = "fake-mt"
LANGUAGES = {"ar": "مرحبا", "zh-Hans": "你好", "sw": "Habari"}


@pytest.fixture
def world(db, settings, tmp_path, admin_user, tiny_model_dir):  # noqa: F811 - the shared fixture
    from generation.models import Endpoint
    from training.services.registry import base_model_register
    from translation.services.translators import translator_create

    settings.VAR_DIR = tmp_path / "var"
    settings.MEDIA_ROOT = tmp_path / "media"
    demo_instruction_set_import(admin=admin_user)
    base = base_model_register(name="tiny", path=str(tiny_model_dir))
    # The demo's translator, with fewer new tokens: the random model never stops of itself.
    translator_create(name=TRANSLATOR, kind="llm", base_model=base.id, max_new_tokens=6)
    # A second translator, an OpenAI-compatible endpoint (a real local server): it has hand-made translations of
    # other texts only and echoes these, so its candidates are copies of the source, flagged and never chosen.
    with FakeTranslator() as server:
        settings.CROSSFEED_GENERATION_ALLOWED_HOSTS = [server.host]
        endpoint = Endpoint.objects.create(name="fake", base_url=server.base_url, model="fake-model",
                                           timeout_seconds=5.0, max_retries=0, concurrency=1)
        translator_create(name=ENDPOINT, kind="endpoint", endpoint=endpoint.id)
        yield base


def post_edit_two(page, campaign: Campaign, addition: str) -> None:
    """Edit the first item's last field with the keyboard and save (Ctrl+Enter), then accept the next (Alt+A)."""
    page.goto(f"/campaigns/{campaign.id}/annotate/")
    page.wait_for_selector("#post-edit-form textarea")
    first = page.get_attribute("#post-edit-form", "data-item")
    boxes = page.locator("#post-edit-form textarea")
    boxes.last.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type(addition)
    with page.expect_response(lambda response: response.url.endswith(f"/items/{first}/submit/")):
        page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "old => { const form = document.getElementById('post-edit-form'); return form && form.dataset.item !== old; }",
        arg=first)
    second = page.get_attribute("#post-edit-form", "data-item")
    with page.expect_response(lambda response: response.url.endswith(f"/items/{second}/submit/")):
        page.keyboard.press("Alt+KeyA")


def test_an_admin_turns_the_sample_set_into_sft_data_with_post_edits_and_trains_on_it(
        page_as, admin_user, make_annotator, world, one_torch_thread):  # noqa: F811
    admin = page_as(admin_user)
    admin.goto("/translation/new/")
    admin.select_option("#id_instruction_set", label=DEMO_INSTRUCTION_SET)
    admin.select_option("#id_languages", list(LANGUAGES))
    admin.check(f"#field-translators label:has-text('{TRANSLATOR}') input")
    admin.check(f"#field-translators label:has-text('{ENDPOINT}') input")
    admin.check("#id_post_edit")
    admin.fill("#id_post_edit_campaign", "Sample instructions: post-editing")
    with admin.expect_navigation():
        admin.click("#queue-job")
    expect(admin).to_have_url(re.compile(r"/translation/\d+/$"))

    job = translation_job_execute(job_id=TranslationJob.objects.get().id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert [entry["label"] for entry in job.translators] == [TRANSLATOR, ENDPOINT]
    copies = Translation.objects.filter(job=job).values_list("candidates", flat=True)
    hard = {"copy_of_source", "wrong_language", "wrong_script"}
    assert all(hard & set(candidates[1]["flags"]) for candidates in copies), "the echo is flagged, never chosen"
    rows = InstructionSet.objects.get(name=DEMO_INSTRUCTION_SET).rows
    campaign = Campaign.objects.get(name="Sample instructions: post-editing")
    assert campaign.task == "post_edit" and campaign.items.count() == rows * len(LANGUAGES)
    expect(admin.locator("#post-edit-campaign")).to_have_text(campaign.name)  # the page reloaded itself

    for code, addition in LANGUAGES.items():
        annotator = make_annotator(f"native-{code}", [code], ["en"])
        post_edit_two(page_as(annotator), campaign, addition)
    done = Translation.objects.filter(job=job).exclude(post_edit__in=["", "pending"])
    assert sorted(done.values_list("language_id", "post_edit")) == sorted(
        (code, verdict) for code in LANGUAGES for verdict in ("accepted", "edited"))

    admin.reload()
    for code in LANGUAGES:
        expect(admin.locator(f"#language-{code}")).to_be_visible()
    with admin.expect_navigation():
        admin.click("#export-button")
    export = InstructionExport.objects.get()
    export = instruction_export_run(export_id=export.id)
    assert export.status == JobStatus.SUCCEEDED, export.error
    expect(admin.locator(f"#export-{export.id} .badge")).to_have_text("succeeded")  # the list polls
    card = (export_folder(export) / "README.md").read_text(encoding="utf-8")
    trained_rows = [json.loads(line) for line in
                    (export_folder(export) / "sft-all.jsonl").read_text(encoding="utf-8").splitlines()]
    # The source rows, and in each language the two post-edited ones: nothing the annotators did not pass.
    assert sorted({row["language"] for row in trained_rows}) == sorted(["en", *LANGUAGES])
    assert len(trained_rows) == rows + 2 * len(LANGUAGES)
    edited = [row for row in trained_rows if row["post_edit"] == "edited"]
    assert sorted(row["messages"][-1]["content"] for row in edited) == sorted(LANGUAGES.values())
    assert all(code in card for code in LANGUAGES)

    with admin.expect_navigation():
        admin.click(f"#export-{export.id} a.button")  # "Train on this"
    assert admin.locator("#id_sft_dataset").input_value() == str(export.id)
    admin.select_option("#id_base_model", str(world.id))
    admin.fill("#id_params", json.dumps(FAST))
    with admin.expect_navigation():
        admin.click("#new-run-form input[type=submit]")
    run = TrainingRun.objects.get()
    assert run.kind == "sft" and run.sft_dataset_id == export.id

    run = training_run_execute(run_id=run.id, poll_seconds=0.2)
    assert run.status == JobStatus.SUCCEEDED, run.error + run.log_tail
    assert run.versions.get().manifest["train_rows"] == len(trained_rows)
    admin.goto(f"/training/runs/{run.id}/")
    expect(admin.locator("body")).to_contain_text("succeeded")
