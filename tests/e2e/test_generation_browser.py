"""A round in the browser: an admin opens a succeeded training run, clicks Next round and lands on the generation job's
page; the job runs (here, in the test process: the live server has no worker, as every background job in these
tests) with the tiny model and the version's real LoRA adapter; the job page then shows it succeeded with a link to
its campaign, and the lineage page shows both rounds, readable on a 390 px phone; axe finds no serious violation on
these pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from annotation.models import Campaign, Item, JobStatus
from generation.models import GenerationJob
from generation.services.jobs import generation_job_execute
from tests.e2e.test_axe import serious
from tests.generation.round_chain import campaign_with_items, make_lora_adapter, succeeded_export, succeeded_run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # generates with the tiny model on the CPU

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from training.services.registry import tiny_model_build

    folder = tmp_path_factory.mktemp("tiny-rounds") / "tiny-llama"
    tiny_model_build(output_dir=folder, register=False)
    return folder


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny model's matrices are too small for a second thread to help (tests/evaluation/conftest.py)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def trained(db, tmp_path, settings, admin_user, tiny_model_dir):
    """Round 1 as a real one leaves it: a campaign, its export, a DPO run that succeeded with a LoRA adapter."""
    from training.services.registry import base_model_register

    settings.VAR_DIR = tmp_path / "var"
    base = base_model_register(name="tiny", path=str(tiny_model_dir))
    campaign = campaign_with_items("Demo", ["p-1", "p-2", "p-3"], created_by=admin_user)
    adapter = make_lora_adapter(tiny_model_dir, tmp_path / "adapter")
    run, version = succeeded_run(base=base, export=succeeded_export(campaign), name="tiny-dpo-1",
                                 adapters=tmp_path, adapter=adapter)
    return campaign, run, version


def test_an_admin_goes_from_a_trained_model_to_the_next_rounds_campaign(page_as, admin_user, trained):
    campaign, run, version = trained
    page = page_as(admin_user)
    page.goto(f"/training/runs/{run.id}/")
    problems = {"run page with Next round": serious(page)}
    # One response language per prompt: 3 prompts × 2 generators = 6 answers of up to 256 tokens (~10 s on a CPU).
    page.fill("#next-round-languages", "1")
    with page.expect_navigation():
        page.click("#next-round-button")
    expect(page).to_have_url(re.compile(r"/generation/\d+/$"))
    job = GenerationJob.objects.get()
    assert page.url.endswith(f"/generation/{job.id}/")
    expect(page.locator("h1")).to_have_text(f"Generation job {job.id}")
    expect(page.locator("#job-badge")).to_have_text("queued")
    assert job.training_run_id == run.id and [g["label"] for g in job.generators] == ["tiny-dpo-1", "tiny"]

    job = generation_job_execute(job_id=job.id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    second = Campaign.objects.get(name="Demo — round 2")
    assert job.campaign == second and Item.objects.filter(campaign=second).exists()
    models = set(second.items.values_list("responses__model_name", flat=True))
    assert "tiny-dpo-1" in models, "the new version answered"

    page.reload()
    expect(page.locator("#job-badge")).to_have_text("succeeded")
    problems["job page"] = serious(page)
    with page.expect_navigation():
        page.click("text=Lineage of rounds")
    expect(page.locator("#rounds tbody tr")).to_have_count(2)
    expect(page.locator("#rounds tbody tr").nth(0)).to_contain_text("Demo")
    expect(page.locator("#rounds tbody tr").nth(1)).to_contain_text("Demo — round 2")
    expect(page.locator("#rounds tbody tr").nth(0)).to_contain_text(f"job {job.id}")
    problems["lineage page"] = serious(page)

    phone = page_as(admin_user, viewport=PHONE)
    phone.goto(f"/generation/lineage/{second.id}/")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the lineage page is {width} px wide on a {PHONE['width']} px screen"
    assert version.name in phone.content()
    problems["lineage page on a phone"] = serious(phone)
    assert problems == dict.fromkeys(problems, []), "axe: serious or critical violations"
