"""The job page's buttons, for real: a new job asking for post-editing when it succeeds; "Send to post-editing" makes
the campaign (a name in use refused under its field); "Export SFT data" queues an export that, run, lists its files
with downloads that work, the dataset card and "Train on this" with the export preselected; a service's refusal
shown on the form with nothing stored."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from annotation.models import Campaign
from instructions.models import InstructionExport
from instructions.services.exports import instruction_export_run
from tests.translation.test_pages import finished, staff, two_servers  # noqa: F401 - fixtures shared
from translation.models import Translation, TranslationJob


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # where exports are published


def field_error(page: str, field: str) -> str:
    match = re.search(rf'id="error-{field}" role="alert">(.*?)</p>', page)
    return match.group(1) if match else ""


def test_a_new_job_can_ask_for_post_editing_when_it_succeeds(staff, instruction_set,  # noqa: F811
                                                             endpoint_translator):
    response = staff.post(reverse("translation:job_new"), {
        "instruction_set": instruction_set.id, "languages": ["ar"], "translators": [endpoint_translator.id],
        "quality_threshold": "0.8", "post_edit": "on", "post_edit_campaign": "Arabic check",
        "post_edit_overlap": "2", "post_edit_audit_rate": "0.25"})
    job = TranslationJob.objects.get()
    assert response.status_code == 302
    assert job.post_edit == {"campaign_name": "Arabic check", "overlap": 2, "audit_rate": 0.25}
    page = staff.get(reverse("translation:job", args=[job.id])).content.decode()
    assert "Arabic check" in page


def test_a_post_editing_name_in_use_is_refused_under_its_field_before_the_job_is_stored(
        staff, admin_user, instruction_set, endpoint_translator):  # noqa: F811
    Campaign.objects.create(name="Taken", created_by=admin_user)
    response = staff.post(reverse("translation:job_new"), {
        "instruction_set": instruction_set.id, "languages": ["ar"], "translators": [endpoint_translator.id],
        "quality_threshold": "0.8", "post_edit": "on", "post_edit_campaign": "taken"})
    assert response.status_code == 400 and not TranslationJob.objects.exists()
    assert "already exists" in field_error(response.content.decode(), "post_edit_campaign")


def test_send_to_post_editing_makes_the_campaign(staff, finished):  # noqa: F811
    url = reverse("translation:job_post_edit", args=[finished.id])
    page = staff.get(reverse("translation:job", args=[finished.id])).content.decode()
    assert f'action="{url}"' in page and 'id="post-edit-form"' in page
    response = staff.post(url, {"post-edit-campaign_name": "Post-edit all", "post-edit-overlap": "1",
                                "post-edit-audit_rate": "1"})
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Post-edit all")
    assert campaign.task == Campaign.Task.POST_EDIT and campaign.items.count() == 6
    assert Translation.objects.filter(job=finished, post_edit="pending").count() == 6
    page = staff.get(response["Location"]).content.decode()
    assert "Post-editing campaign “Post-edit all” created: 6 translations to post-edit." in page
    assert f'href="{reverse("admin:annotation_campaign_change", args=[campaign.id])}"' in page
    for code in ("sw", "ar", "zh-Hans"):
        row = re.search(rf'<tr id="language-{code}" .*?</tr>', page, re.DOTALL).group(0)
        assert "2 pending, 0 accepted, 0 edited, 0 unusable" in row

    again = staff.post(url, {"post-edit-campaign_name": "post-edit ALL", "post-edit-overlap": "1",
                             "post-edit-audit_rate": "1"})
    assert again.status_code == 400 and Campaign.objects.count() == 1
    assert "already exists" in field_error(again.content.decode(), "campaign_name")


def test_a_job_with_nothing_to_post_edit_says_so_on_top_of_the_form(staff, finished):  # noqa: F811
    assert all(report["below_threshold"] == 0 for report in finished.per_language.values())
    response = staff.post(reverse("translation:job_post_edit", args=[finished.id]), {
        "post-edit-campaign_name": "Nothing", "post-edit-overlap": "1", "post-edit-audit_rate": "0"})
    assert response.status_code == 400 and not Campaign.objects.filter(name="Nothing").exists()
    errors = re.search(r'id="post-edit-errors">(.*?)</div>', response.content.decode()).group(1)
    assert f"translation job {finished.id} has no translation below its threshold" in errors


def test_export_sft_data_lists_the_files_the_card_and_train_on_this(staff, finished):  # noqa: F811
    url = reverse("translation:job_export", args=[finished.id])
    page = staff.get(reverse("translation:job", args=[finished.id])).content.decode()
    assert f'action="{url}"' in page and 'name="export-languages" value="zh-Hans"' in page
    response = staff.post(url, {"export-languages": ["ar", "zh-Hans"], "export-include_source": "on"})
    assert response.status_code == 302
    export = InstructionExport.objects.get()
    assert (export.translation_job_id, export.languages, export.include_source) == (finished.id, ["ar", "zh-Hans"],
                                                                                   True)
    queued = staff.get(reverse("translation:job", args=[finished.id])).content.decode()
    assert f'hx-get="{reverse("translation:job_exports", args=[finished.id])}"' in queued, "polls until it ends"

    export = instruction_export_run(export_id=export.id)
    assert export.status == "succeeded", export.error
    partial = staff.get(reverse("translation:job_exports", args=[finished.id])).content.decode()
    assert "hx-get" not in partial
    for entry in export.files:
        download = reverse("api-instruction-export-file", kwargs={"export_id": export.id, "name": entry["name"]})
        assert f'href="{download}"' in partial
    card = reverse("api-instruction-export-file", kwargs={"export_id": export.id, "name": "README.md"})
    assert f'href="{card}"' in partial
    train = reverse("admin:training_trainingrun_new") + f"?kind=sft&amp;sft_dataset={export.id}"
    assert f'href="{train}"' in partial

    every = reverse("api-instruction-export-file", kwargs={"export_id": export.id, "name": "sft-all.jsonl"})
    lines = b"".join(staff.get(every).streaming_content).decode().splitlines()
    assert {json.loads(line)["language"] for line in lines} == {"en", "ar", "zh-Hans"}
    form_page = staff.get(train.replace("&amp;", "&")).content.decode()
    assert f'<option value="{export.id}" selected>' in form_page, "the training form has the export preselected"


def test_an_export_the_service_refuses_is_shown_on_the_form_and_nothing_is_stored(staff, finished):  # noqa: F811
    Translation.objects.filter(job=finished, language="ar").update(post_edit="unusable")
    response = staff.post(reverse("translation:job_export", args=[finished.id]), {"export-languages": ["ar"]})
    assert response.status_code == 400 and not InstructionExport.objects.exists()
    assert "no usable translation in ar" in field_error(response.content.decode(), "languages")
