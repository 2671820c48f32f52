"""Post-editing services (issue 14, point 5; docs/translation.md, "Post-editing"): which translations a campaign
gets (below the threshold, not acceptable, a seeded audit sample), every bad input refused with its field and nothing
stored, how accepted / edited / unusable submissions land on the Translation (revisions, latest wins with overlap 2),
who gets the items, and the refusals around post-editing campaigns (rankings, imports, exports)."""

from __future__ import annotations

import io
import math

import pytest

from annotation.models import Campaign, Item, Judgment, JudgmentSubmission, Lease
from annotation.services.assignment import item_skip, lease_next
from annotation.services.exports import export_create
from annotation.services.imports import items_import
from annotation.services.judgments import Outcome, judgment_submit
from crossfeed.errors import InvalidInput
from tests.conftest import item_line, jsonl, new_key, ranks_for
from tests.translation.post_edit_world import alpaca_rows, make_job, make_set
from translation.models import Translation
from translation.services.post_edit import post_edit_campaign_create, post_edit_report, translations_to_post_edit

# Row index -> quality in Arabic: r1 under the 0.5 threshold, r4 not acceptable (chosen False), r6 without any
# candidate; r0, r2, r3 and r5 good.
QUALITY = {0: 0.9, 1: 0.3, 2: 0.8, 3: 0.95, 4: 0.7, 5: 0.6, 6: None}


@pytest.fixture
def alpaca_set(db):
    return make_set(alpaca_rows(7))


@pytest.fixture
def job(alpaca_set):
    return make_job(alpaca_set, languages=["ar"], quality=lambda row, language: QUALITY[row.index],
                    chosen=lambda row, language: row.index not in (4, 6), empty=lambda row, language: row.index == 6)


@pytest.fixture
def arabic(make_annotator):
    """Native Arabic, reads English: the set's language."""
    return make_annotator("arabic-pe", ["ar"], ["en"])


@pytest.fixture
def arabic_too(make_annotator):
    return make_annotator("arabic-pe2", ["ar"], ["en", "fr"])


def sent_rows(campaign: Campaign) -> list[str]:
    return sorted(campaign.items.values_list("external_id", flat=True))


# --- which translations ------------------------------------------------------------------------------------------


def test_it_sends_the_weak_and_the_not_acceptable_translations_only(job):
    campaign = post_edit_campaign_create(job=job, campaign_name="Arabic post-edits")
    assert campaign.task == Campaign.Task.POST_EDIT and campaign.is_post_edit
    assert sent_rows(campaign) == ["r1:ar", "r4:ar"]  # r6 had no candidate: nothing to edit
    pending = Translation.objects.filter(job=job, post_edit=Translation.PostEdit.PENDING)
    assert sorted(pending.values_list("row__external_id", flat=True)) == ["r1", "r4"]
    assert all(translation.post_edit_item.campaign_id == campaign.pk for translation in pending)
    assert Translation.objects.filter(job=job, post_edit="").count() == 5
    job.refresh_from_db()
    assert job.post_edit_campaign_id == campaign.pk


def test_the_audit_sample_is_a_seeded_share_of_the_good_ones(job, alpaca_set):
    good = {"r0", "r2", "r3", "r5"}
    first = translations_to_post_edit(job=job, audit_rate=0.5, seed=7)
    again = translations_to_post_edit(job=job, audit_rate=0.5, seed=7)
    assert [t.pk for t in first] == [t.pk for t in again]
    audited = {t.row.external_id for t in first} - {"r1", "r4"}
    assert len(audited) == 2 and audited <= good  # round(0.5 x 4 good ones)
    campaign = post_edit_campaign_create(job=job, campaign_name="Audit", audit_rate=0.5, seed=7)
    assert sent_rows(campaign) == sorted(f"{row}:ar" for row in {"r1", "r4"} | audited)
    everything = make_job(alpaca_set, languages=["ar"], quality=lambda row, language: QUALITY[row.index],
                          chosen=lambda row, language: row.index not in (4, 6),
                          empty=lambda row, language: row.index == 6)
    assert {t.row.external_id for t in translations_to_post_edit(job=everything, audit_rate=1.0, seed=0)} == \
        {"r0", "r1", "r2", "r3", "r4", "r5"}


def test_each_item_is_one_translation_with_a_response_per_field(job):
    campaign = post_edit_campaign_create(job=job, campaign_name="Fields", overlap=3)
    translation = Translation.objects.select_related("row").get(job=job, row__external_id="r1")
    item = Item.objects.get(campaign=campaign, external_id="r1:ar")
    assert translation.post_edit_item_id == item.pk
    assert (item.prompt_language_id, item.response_language_id, item.target) == ("en", "ar", 3)
    assert item.metadata == {"translation": translation.pk, "job": job.pk, "quality": 0.3}
    assert item.prompt_text == "Instruction number 1.\n\nSome input.\n\nAnswer number 1."
    responses = list(item.responses.order_by("position"))
    assert [(r.position, r.metadata["field"], r.metadata["source"], r.text, r.language_id) for r in responses] == [
        (0, "instruction", "Instruction number 1.", "[ar] Instruction number 1.", "ar"),
        (1, "input", "Some input.", "[ar] Some input.", "ar"),
        (2, "output", "Answer number 1.", "[ar] Answer number 1.", "ar"),
    ]
    # An empty input is no field to edit.
    other = Item.objects.get(campaign=campaign, external_id="r4:ar")
    assert [r.metadata["field"] for r in other.responses.order_by("position")] == ["instruction", "output"]


def test_messages_rows_give_one_response_per_message_and_edits_land_in_the_message(db, arabic):
    rows = [{"id": "chat", "messages": [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "Name a colour."},
                                        {"role": "assistant", "content": "Blue."}]}]
    job = make_job(make_set(rows, name="chat set"), languages=["ar"], quality=lambda row, language: 0.1)
    campaign = post_edit_campaign_create(job=job, campaign_name="Chat")
    item = campaign.items.get()
    responses = list(item.responses.order_by("position"))
    assert [(r.metadata["field"], r.metadata["role"], r.metadata["source"]) for r in responses] == [
        ("m0", "system", "Be brief."), ("m1", "user", "Name a colour."), ("m2", "assistant", "Blue.")]
    lease_next(campaign=campaign, annotator=arabic)
    judgment_submit(annotator=arabic, item_id=item.pk, verdict="edited", edits={str(responses[2].pk): "أزرق."},
                    idempotency_key=new_key())
    translation = Translation.objects.get(job=job)
    assert translation.post_edit == "edited"
    assert translation.fields["messages"][2] == {"role": "assistant", "content": "أزرق."}
    assert translation.fields["messages"][:2] == translation.machine_fields["messages"][:2]
    assert translation.machine_fields["messages"][2]["content"] == "[ar] message m2"


# --- bad input -----------------------------------------------------------------------------------------------------


def _nothing_stored(job, campaigns_before: int) -> None:
    assert Campaign.objects.count() == campaigns_before
    assert not Item.objects.exists()
    assert not Translation.objects.filter(job=job).exclude(post_edit="").exists()
    assert not Translation.objects.filter(job=job, post_edit_item__isnull=False).exists()
    job.refresh_from_db()
    assert job.post_edit_campaign_id is None


@pytest.mark.parametrize(("arguments", "field"), [
    ({"campaign_name": ""}, "campaign_name"),
    ({"campaign_name": "   "}, "campaign_name"),
    ({"campaign_name": "x" * 201}, "campaign_name"),
    ({"campaign_name": "taken campaign"}, "campaign_name"),
    ({"campaign_name": "TAKEN Campaign"}, "campaign_name"),
    ({"overlap": 0}, "overlap"),
    ({"overlap": 21}, "overlap"),
    ({"overlap": "2"}, "overlap"),
    ({"overlap": True}, "overlap"),
    ({"audit_rate": -0.1}, "audit_rate"),
    ({"audit_rate": 1.5}, "audit_rate"),
    ({"audit_rate": math.nan}, "audit_rate"),
    ({"audit_rate": "0.2"}, "audit_rate"),
    ({"seed": "7"}, "seed"),
])
def test_every_bad_input_is_refused_with_its_field_and_nothing_stored(job, admin_user, arguments, field):
    Campaign.objects.create(name="Taken campaign")
    before = Campaign.objects.count()
    with pytest.raises(InvalidInput) as refused:
        post_edit_campaign_create(job=job, **{"campaign_name": "Fresh", **arguments})
    assert refused.value.field == field, refused.value.message
    _nothing_stored(job, before)


@pytest.mark.parametrize("status", ["queued", "running", "failed", "cancelled"])
def test_a_job_that_has_not_succeeded_is_refused(alpaca_set, status):
    job = make_job(alpaca_set, languages=["ar"], quality=lambda row, language: 0.1, status=status)
    with pytest.raises(InvalidInput) as refused:
        post_edit_campaign_create(job=job, campaign_name="Too early")
    assert refused.value.field == "job" and status in refused.value.message
    _nothing_stored(job, 0)


def test_nothing_to_send_is_refused_and_says_what_to_do(alpaca_set):
    job = make_job(alpaca_set, languages=["ar"])  # every translation good and chosen
    with pytest.raises(InvalidInput) as refused:
        post_edit_campaign_create(job=job, campaign_name="Nothing")
    assert refused.value.field == "job" and "audit_rate" in refused.value.message
    _nothing_stored(job, 0)


def test_translations_already_sent_are_not_sent_again(job):
    post_edit_campaign_create(job=job, campaign_name="First")
    with pytest.raises(InvalidInput) as refused:
        post_edit_campaign_create(job=job, campaign_name="Second")
    assert refused.value.field == "job"
    assert not Campaign.objects.filter(name="Second").exists()
    second = post_edit_campaign_create(job=job, campaign_name="Audit later", audit_rate=1.0)
    assert sent_rows(second) == ["r0:ar", "r2:ar", "r3:ar", "r5:ar"]


# --- submissions ---------------------------------------------------------------------------------------------------


@pytest.fixture
def weak_item(db, arabic):
    """A campaign of one Arabic translation, instruction "aaaa" and output "bbbb", leased to `arabic`."""
    rows = [{"id": "one", "instruction": "Say a.", "input": "", "output": "Say b."}]
    job = make_job(make_set(rows, name="one row"), languages=["ar"], quality=lambda row, language: 0.2,
                   text=lambda row, language, name: {"instruction": "aaaa", "output": "bbbb"}[name])
    campaign = post_edit_campaign_create(job=job, campaign_name="One", overlap=2)
    item = campaign.items.get()
    lease_next(campaign=campaign, annotator=arabic)
    return item


def response_ids(item) -> dict[str, str]:
    return {response.metadata["field"]: str(response.pk) for response in item.responses.all()}


def translation_of(item) -> Translation:
    return Translation.objects.get(post_edit_item=item)


def test_an_edit_replaces_the_field_keeps_the_machine_text_and_measures_the_distance(weak_item, arabic):
    ids = response_ids(weak_item)
    result = judgment_submit(annotator=arabic, item_id=weak_item.pk, verdict="edited",
                             edits={ids["output"]: "bbbc"}, comment="one letter", idempotency_key=new_key())
    assert result.outcome is Outcome.CREATED
    judgment = Judgment.objects.get(pk=result.judgment.pk)
    assert (judgment.verdict, judgment.edits, judgment.ranks, judgment.flags) == ("edited", {ids["output"]: "bbbc"},
                                                                                  {}, {})
    translation = translation_of(weak_item)
    assert translation.post_edit == "edited"
    assert translation.fields == {"instruction": "aaaa", "input": "", "output": "bbbc"}
    assert translation.machine_fields == {"instruction": "aaaa", "input": "", "output": "bbbb"}
    # "aaaa\n\nbbbb" (input empty between) against "aaaa\n\nbbbc": one substitution in 10 characters.
    assert translation.edit_distance == 0.1
    assert translation.post_edited_by == arabic and translation.post_edited_at == judgment.updated_at
    assert translation.usable
    weak_item.refresh_from_db()
    assert (weak_item.judgment_count, weak_item.lease_count) == (1, 0)
    assert not Lease.objects.exists()
    submission = JudgmentSubmission.objects.get()
    assert (submission.verdict, submission.edits) == ("edited", {ids["output"]: "bbbc"})


def test_accepted_and_unusable_update_the_translation(weak_item, arabic, arabic_too):
    judgment_submit(annotator=arabic, item_id=weak_item.pk, verdict="accepted", idempotency_key=new_key())
    translation = translation_of(weak_item)
    assert (translation.post_edit, translation.edit_distance, translation.machine_fields) == ("accepted", 0.0, {})
    assert translation.fields["output"] == "bbbb" and translation.usable
    lease_next(campaign=weak_item.campaign, annotator=arabic_too)
    judgment_submit(annotator=arabic_too, item_id=weak_item.pk, verdict="unusable", idempotency_key=new_key())
    translation = translation_of(weak_item)
    assert (translation.post_edit, translation.edit_distance) == ("unusable", None)
    assert translation.post_edited_by == arabic_too and not translation.usable
    assert not Translation.objects.filter(pk=translation.pk).usable().exists()


@pytest.mark.parametrize("same", ["bbbb", "bbbb\r\n", "  bbbb "])
def test_an_edit_equal_to_the_machine_text_is_stored_as_accepted(weak_item, arabic, same):
    ids = response_ids(weak_item)
    result = judgment_submit(annotator=arabic, item_id=weak_item.pk, verdict="edited",
                             edits={ids["output"]: same, ids["instruction"]: "aaaa"}, idempotency_key=new_key())
    assert (result.judgment.verdict, result.judgment.edits) == ("accepted", {})
    assert translation_of(weak_item).post_edit == "accepted"


def test_line_breaks_from_a_browser_are_stored_as_the_machine_writes_them(weak_item, arabic):
    ids = response_ids(weak_item)
    judgment_submit(annotator=arabic, item_id=weak_item.pk, verdict="edited", edits={ids["output"]: "bb\r\nbb"},
                    idempotency_key=new_key())
    assert translation_of(weak_item).fields["output"] == "bb\nbb"


def test_a_revision_replaces_the_translation(weak_item, arabic):
    ids = response_ids(weak_item)
    judgment_submit(annotator=arabic, item_id=weak_item.pk, verdict="edited", edits={ids["output"]: "cccc"},
                    idempotency_key=new_key())
    revised = judgment_submit(annotator=arabic, item_id=weak_item.pk, verdict="accepted", idempotency_key=new_key())
    assert revised.outcome is Outcome.REVISED and revised.judgment.revision == 2
    translation = translation_of(weak_item)
    assert (translation.post_edit, translation.edit_distance) == ("accepted", 0.0)
    assert translation.fields["output"] == "bbbb"  # the machine's again, from machine_fields
    assert JudgmentSubmission.objects.count() == 2
    weak_item.refresh_from_db()
    assert weak_item.judgment_count == 1  # a revision takes no second place


def test_the_same_key_again_stores_nothing_and_changes_nothing(weak_item, arabic):
    ids = response_ids(weak_item)
    key = new_key()
    first = judgment_submit(annotator=arabic, item_id=weak_item.pk, verdict="edited", edits={ids["output"]: "x"},
                            idempotency_key=key)
    again = judgment_submit(annotator=arabic, item_id=weak_item.pk, verdict="unusable", idempotency_key=key)
    assert again.outcome is Outcome.REPLAYED and again.judgment.pk == first.judgment.pk
    assert translation_of(weak_item).post_edit == "edited"
    assert JudgmentSubmission.objects.count() == 1


def test_with_overlap_two_the_latest_submission_wins(weak_item, arabic, arabic_too, make_annotator):
    ids = response_ids(weak_item)
    judgment_submit(annotator=arabic, item_id=weak_item.pk, verdict="edited", edits={ids["output"]: "first"},
                    idempotency_key=new_key())
    assert lease_next(campaign=weak_item.campaign, annotator=arabic_too).item_id == weak_item.pk
    judgment_submit(annotator=arabic_too, item_id=weak_item.pk, verdict="edited", edits={ids["output"]: "second"},
                    idempotency_key=new_key())
    translation = translation_of(weak_item)
    assert translation.fields["output"] == "second" and translation.post_edited_by == arabic_too
    assert translation.machine_fields["output"] == "bbbb"
    # The first annotator revises: theirs is now the latest.
    judgment_submit(annotator=arabic, item_id=weak_item.pk, verdict="edited", edits={ids["instruction"]: "revised"},
                    idempotency_key=new_key())
    translation = translation_of(weak_item)
    assert translation.fields == {"instruction": "revised", "input": "", "output": "bbbb"}
    assert translation.post_edited_by == arabic
    weak_item.refresh_from_db()
    assert (weak_item.judgment_count, weak_item.target) == (2, 2)
    assert lease_next(campaign=weak_item.campaign, annotator=make_annotator("arabic-3", ["ar"], ["en"])) is None
    report = post_edit_report(translation.job)
    assert report["ar"] == {"pending": 0, "accepted": 0, "edited": 1, "unusable": 0,
                            "mean_edit_distance": translation.edit_distance}


@pytest.mark.parametrize(("body", "field"), [
    ({}, "verdict"),
    ({"verdict": "maybe"}, "verdict"),
    ({"verdict": "edited"}, "edits"),
    ({"verdict": "edited", "edits": {}}, "edits"),
    ({"verdict": "edited", "edits": ["text"]}, "edits"),
    ({"verdict": "accepted", "edits": {"OUTPUT": "x"}}, "edits"),
    ({"verdict": "unusable", "edits": {"OUTPUT": "x"}}, "edits"),
    ({"verdict": "edited", "edits": {"999999": "x"}}, "edits"),
    ({"verdict": "edited", "edits": {"OUTPUT": ""}}, "edits"),
    ({"verdict": "edited", "edits": {"OUTPUT": "   "}}, "edits"),
    ({"verdict": "edited", "edits": {"OUTPUT": 5}}, "edits"),
    ({"verdict": "edited", "edits": {"OUTPUT": "x" * 20_001}}, "edits"),
    ({"verdict": "edited", "edits": {"OUTPUT": "a\x00b"}}, "edits"),
    ({"verdict": "edited", "edits": {str(n): "x" for n in range(3)}}, "edits"),
    ({"verdict": "accepted", "ranks": {"OUTPUT": 1}}, "ranks"),
    ({"verdict": "accepted", "flags": {"OUTPUT": ["wrong_language"]}}, "ranks"),
])
def test_bad_post_edits_are_refused_by_field_and_change_nothing(weak_item, arabic, body, field):
    ids = response_ids(weak_item)

    def real(value):
        if isinstance(value, dict):
            return {ids["output"] if key == "OUTPUT" else key: value for key, value in value.items()}
        return value

    with pytest.raises(InvalidInput) as refused:
        judgment_submit(annotator=arabic, item_id=weak_item.pk, idempotency_key=new_key(),
                        **{name: real(value) for name, value in body.items()})
    assert field in refused.value.field_errors, refused.value.field_errors
    assert not Judgment.objects.exists() and not JudgmentSubmission.objects.exists()
    assert translation_of(weak_item).post_edit == "pending"
    weak_item.refresh_from_db()
    assert (weak_item.judgment_count, weak_item.lease_count) == (0, 1)


def test_a_verdict_on_a_ranking_campaign_is_refused_with_a_clear_message(annotator, items):
    lease = lease_next(campaign=items[0].campaign, annotator=annotator)
    with pytest.raises(InvalidInput) as refused:
        judgment_submit(annotator=annotator, item_id=lease.item_id, verdict="accepted", idempotency_key=new_key())
    assert list(refused.value.field_errors) == ["verdict"]
    assert "ranks" in refused.value.field_errors["verdict"][0]
    assert not Judgment.objects.exists()
    # The ranking itself is unchanged.
    result = judgment_submit(annotator=annotator, item_id=lease.item_id, ranks=ranks_for(lease.item),
                             idempotency_key=new_key())
    assert (result.judgment.verdict, result.judgment.edits) == ("", {})


def test_a_ranking_on_a_post_edit_campaign_is_refused_with_a_clear_message(weak_item, arabic):
    with pytest.raises(InvalidInput) as refused:
        judgment_submit(annotator=arabic, item_id=weak_item.pk, ranks=ranks_for(weak_item), idempotency_key=new_key())
    assert "post-editing campaign" in refused.value.field_errors["ranks"][0]


# --- routing -------------------------------------------------------------------------------------------------------


def test_only_native_speakers_of_the_target_who_read_the_source_get_the_items(job, make_annotator, arabic):
    campaign = post_edit_campaign_create(job=job, campaign_name="Routing")
    not_reading = make_annotator("arabic-only", ["ar"], [])
    swahili = make_annotator("swahili-en", ["sw"], ["en"])
    english = make_annotator("english", ["en"], ["ar"])
    for person in (not_reading, swahili, english):
        assert lease_next(campaign=campaign, annotator=person) is None, person
    first = lease_next(campaign=campaign, annotator=arabic)
    assert first is not None and Item.objects.get(pk=first.item_id).response_language_id == "ar"
    # Skipping works as for rankings: the next item comes, the skipped one never again.
    item_skip(item=Item.objects.get(pk=first.item_id), annotator=arabic, reason="not my language")
    second = lease_next(campaign=campaign, annotator=arabic)
    assert second is not None and second.item_id != first.item_id
    item_skip(item=Item.objects.get(pk=second.item_id), annotator=arabic)
    assert lease_next(campaign=campaign, annotator=arabic) is None


# --- refusals around a post-editing campaign ---------------------------------------------------------------------


def test_items_cannot_be_imported_into_a_post_edit_campaign(job):
    campaign = post_edit_campaign_create(job=job, campaign_name="No imports")
    before = Item.objects.count()
    with pytest.raises(InvalidInput) as refused:
        items_import(campaign=campaign, source=io.BytesIO(jsonl([item_line("extra", prompt_lang="en",
                                                                          response_lang="ar")])))
    assert refused.value.field == "campaign" and "post-editing campaign" in refused.value.message
    assert Item.objects.count() == before


def test_a_post_edit_campaign_has_no_preference_export(job, admin_user):
    campaign = post_edit_campaign_create(job=job, campaign_name="No exports")
    for kind in ("preference", "sft"):
        with pytest.raises(InvalidInput) as refused:
            export_create(campaign=campaign, created_by=admin_user, kind=kind, min_judgments=1, enqueue=False)
        assert "POST /api/v1/instruction-sets/{id}/exports/" in refused.value.message
    assert not campaign.exports.exists()


def test_usable_is_the_rule_the_sft_export_reads(job):
    post_edit_campaign_create(job=job, campaign_name="Usable")
    usable = set(Translation.objects.filter(job=job).usable().values_list("row__external_id", flat=True))
    assert usable == {"r0", "r1", "r2", "r3", "r5"}  # r4 not acceptable, r6 failed; r1 chosen though weak
    Translation.objects.filter(job=job, row__external_id="r4").update(post_edit="edited")
    Translation.objects.filter(job=job, row__external_id="r1").update(post_edit="unusable")
    usable = set(Translation.objects.filter(job=job).usable().values_list("row__external_id", flat=True))
    assert usable == {"r0", "r2", "r3", "r4", "r5"}
    assert {t.row.external_id for t in Translation.objects.filter(job=job).select_related("row") if t.usable} == usable


def test_a_generation_job_cannot_write_into_a_post_edit_campaign(job):
    from generation.services.validation import check_campaign_target

    campaign = post_edit_campaign_create(job=job, campaign_name="No generation")
    with pytest.raises(InvalidInput) as refused:
        check_campaign_target({"id": campaign.id})
    assert refused.value.field == "campaign" and "post-editing campaign" in refused.value.message
