"""The instruction set's SFT export (instructions/services/exports.py): which translations go out (chosen, post-edited
ones with the edited text; unusable and not acceptable ones left out), the files per language and all together in
TRL's messages format, the dataset card's counts and hashes against the files, bad inputs refused by field with
nothing stored, a failed run that publishes nothing, retry and the stale check.

Translation rows are made directly, with post-edit verdicts as translation/services/post_edit.py would leave them:
what is under test is the export, not the translators."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone

from crossfeed.errors import Conflict, InvalidInput
from instructions.models import InstructionExport, InstructionSet
from instructions.services.exports import (
    export_folder,
    exports_root,
    instruction_export_create,
    instruction_export_retry,
    instruction_export_run,
    instruction_exports_fail_stale,
)
from instructions.services.sets import instruction_set_import
from translation.models import Translation, TranslationJob

pytestmark = pytest.mark.django_db

ROWS = [
    {"id": "sky", "instruction": "Explain why the sky is blue.", "input": "",
     "output": "Air scatters blue light most."},
    {"id": "add", "instruction": "Add the numbers.", "input": "2 + 3", "output": "5"},
    {"id": "peru", "instruction": "Name the capital of Peru.", "output": "Lima."},
]
TRANSLATORS = [{"translator": None, "label": "fake-mt", "kind": "endpoint"},
               {"translator": None, "label": "tiny-llm", "kind": "llm"}]
EDITED = {"instruction": "Jumlisha namba.", "input": "2 + 3", "output": "Jibu ni 5."}
# (language, row id): (chosen, translator, quality, post_edit, edit_distance)
PLAN = {
    ("sw", "sky"): (True, "fake-mt", 0.9, "", None),
    ("sw", "add"): (True, "tiny-llm", 0.4, "edited", 0.25),  # post-edited: the edited text goes out
    ("sw", "peru"): (False, "fake-mt", 0.2, "", None),  # no acceptable candidate, never post-edited: left out
    ("ar", "sky"): (True, "fake-mt", 0.8, "unusable", None),  # chosen, but a native speaker said unusable: left out
    ("ar", "add"): (False, "tiny-llm", 0.3, "accepted", 0.0),  # not chosen, but accepted by a native speaker
    ("ar", "peru"): (True, "fake-mt", 0.7, "pending", None),  # still in a campaign: the machine text goes out
    ("zh-Hans", "sky"): (True, "fake-mt", 0.95, "", None),
    ("zh-Hans", "add"): (True, "tiny-llm", 0.85, "", None),
    ("zh-Hans", "peru"): (True, "fake-mt", 0.6, "", None),
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def import_set(rows: list[dict], name: str = "tiny alpaca") -> InstructionSet:
    body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    return instruction_set_import(name=name, source=io.BytesIO(body), language="en", source_name="tiny.jsonl")


def machine_fields(row, language: str) -> dict:
    """A stand-in translation of an Alpaca row: the source texts marked with the language."""
    return {"instruction": f"[{language}] {row.instruction}", "input": row.input and f"[{language}] {row.input}",
            "output": f"[{language}] {row.output}"}


def translated_set(plan: dict | None = None, *, status: str = "succeeded") -> tuple[InstructionSet, TranslationJob]:
    """The set of ROWS and a finished translation job into sw, ar and zh-Hans with Translation rows as PLAN says."""
    plan = PLAN if plan is None else plan
    instruction_set = import_set(ROWS)
    job = TranslationJob.objects.create(instruction_set=instruction_set, languages=["sw", "ar", "zh-Hans"],
                                        translators=TRANSLATORS, quality_threshold=0.5, status=status)
    rows = {row.external_id: row for row in instruction_set.instruction_rows.all()}
    for (language, row_id), (chosen, translator, quality, post_edit, distance) in plan.items():
        row = rows[row_id]
        fields = machine_fields(row, language)
        edited = post_edit == "edited"
        Translation.objects.create(
            job=job, row=row, language_id=language, chosen=chosen, translator_label=translator, quality=quality,
            fields=EDITED if edited else fields, machine_fields=fields if edited else {}, post_edit=post_edit,
            edit_distance=distance)
    return instruction_set, job


def run(**kwargs) -> InstructionExport:
    export = instruction_export_create(enqueue=False, **kwargs)
    return instruction_export_run(export_id=export.id)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_it_exports_the_usable_translations_with_post_edits_replacing_the_machine_text():
    instruction_set, job = translated_set()
    export = run(instruction_set=instruction_set)
    assert export.status == "succeeded", export.error
    assert export.translation_job == job  # the newest succeeded job, by default
    folder = export_folder(export)
    sw = lines(folder / "sft-sw.jsonl")
    assert [row["id"] for row in sw] == ["sky:sw", "add:sw"]  # peru had no acceptable candidate
    edited = sw[1]
    assert edited["messages"] == [{"role": "user", "content": "Jumlisha namba.\n\n2 + 3"},
                                  {"role": "assistant", "content": "Jibu ni 5."}]
    assert (edited["language"], edited["translator"], edited["post_edit"]) == ("sw", "tiny-llm", "edited")
    # An empty input adds nothing to the user turn.
    assert sw[0]["messages"][0]["content"] == "[sw] Explain why the sky is blue."
    ar = lines(folder / "sft-ar.jsonl")
    assert [(row["id"], row["post_edit"]) for row in ar] == [("add:ar", "accepted"), ("peru:ar", "")]
    assert [row["id"] for row in lines(folder / "sft-zh-Hans.jsonl")] == ["sky:zh-Hans", "add:zh-Hans",
                                                                          "peru:zh-Hans"]
    source = lines(folder / "sft-en.jsonl")
    assert [(row["id"], row["translator"]) for row in source] == [("sky:en", "source"), ("add:en", "source"),
                                                                  ("peru:en", "source")]
    assert source[1]["messages"][0]["content"] == "Add the numbers.\n\n2 + 3"
    everything = lines(folder / "sft-all.jsonl")
    assert [row["language"] for row in everything] == ["en"] * 3 + ["ar"] * 2 + ["sw"] * 2 + ["zh-Hans"] * 3
    assert everything == source + ar + sw + lines(folder / "sft-zh-Hans.jsonl")
    assert export.rows == 10 and export.progress_done == export.progress_total == 10


def test_the_per_language_counts_quality_and_post_edits_are_reported():
    instruction_set, _job = translated_set()
    export = run(instruction_set=instruction_set)
    sw, ar = export.per_language["sw"], export.per_language["ar"]
    assert sw == {"rows": 2, "by_translator": {"fake-mt": 1, "tiny-llm": 1}, "mean_quality": 0.65,
                  "below_threshold": 1, "below_threshold_share": 0.5, "post_edited": 1, "accepted": 0, "edited": 1,
                  "post_edit_share": 0.5, "mean_edit_distance": 0.25,
                  "left_out": {"not_acceptable": 1, "unusable": 0}}
    assert (ar["rows"], ar["accepted"], ar["mean_edit_distance"], ar["left_out"]) == (
        2, 1, 0.0, {"not_acceptable": 0, "unusable": 1})
    source = export.per_language["en"]
    assert (source["rows"], source["by_translator"], source["mean_quality"]) == (3, {"source": 3}, None)


def test_the_card_counts_and_hashes_match_the_files():
    instruction_set, job = translated_set()
    export = run(instruction_set=instruction_set)
    folder = export_folder(export)
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert card == export.card
    meta = front_matter(card)
    assert meta["language"] == ["ar", "en", "sw", "zh-Hans"]
    assert (meta["task_categories"], meta["size_categories"]) == (["text-generation"], ["n<1K"])
    assert {config["config_name"]: config["data_files"] for config in meta["configs"]} == {
        "all": "sft-all.jsonl", "en": "sft-en.jsonl", "ar": "sft-ar.jsonl", "sw": "sft-sw.jsonl",
        "zh-Hans": "sft-zh-Hans.jsonl"}
    names = sorted(path.name for path in folder.iterdir())
    assert names == ["README.md", "sft-all.jsonl", "sft-ar.jsonl", "sft-en.jsonl", "sft-sw.jsonl",
                     "sft-zh-Hans.jsonl"]
    assert [entry["name"] for entry in export.files][0] == "sft-all.jsonl"
    for entry in export.files:
        content = (folder / entry["name"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert (entry["bytes"], entry["rows"]) == (len(content), content.count(b"\n"))
        assert f"| {entry['name']} | {entry['rows']} | {entry['bytes']} | `{entry['sha256']}` |" in card
    # Per language: rows, mean quality, below threshold, post-edited, accepted, edited, edit distance, left out.
    assert "| sw | 2 | 0.650 | 1 (50.0%) | 1 (50.0%) | 0 | 1 | 0.250 | 1 | 0 |" in card
    assert "| ar | 2 | 0.500 | 1 (50.0%) | 1 (50.0%) | 1 | 0 | 0.000 | 0 | 1 |" in card
    assert "| sw | tiny-llm | 1 |" in card and "| en | source | 3 |" in card
    assert f"translation job {job.id} (translators: fake-mt, tiny-llm; quality threshold 0.5)" in card
    assert instruction_set.sha256 in card
    # Deterministic: the same rows exported again give the same files and card.
    again = run(instruction_set=instruction_set)
    assert again.files == export.files and again.card == export.card


def test_languages_and_include_source_narrow_the_export_and_one_language_trains_from_its_file():
    from instructions.services.exports import train_file

    instruction_set, _job = translated_set()
    export = run(instruction_set=instruction_set, languages=["zh-Hans"], include_source=False)
    assert (export.languages, export.rows) == (["zh-Hans"], 3)
    assert [entry["name"] for entry in export.files] == ["sft-all.jsonl", "sft-zh-Hans.jsonl"]
    assert "The set's own rows are not included." in export.card
    assert front_matter(export.card)["language"] == ["zh-Hans"]
    path, rows = train_file(export)
    assert (Path(path).name, rows) == ("sft-zh-Hans.jsonl", 3)
    both = run(instruction_set=instruction_set, languages=["sw", "ar"])
    assert both.languages == ["ar", "sw"] and Path(train_file(both)[0]).name == "sft-all.jsonl"


def test_a_messages_set_keeps_its_turns():
    rows = [{"id": "m1", "messages": [{"role": "system", "content": "Answer briefly."},
                                      {"role": "user", "content": "Capital of Peru?"},
                                      {"role": "assistant", "content": "Lima."}]}]
    instruction_set = import_set(rows, name="messages set")
    job = TranslationJob.objects.create(instruction_set=instruction_set, languages=["sw"], translators=TRANSLATORS,
                                        status="succeeded")
    turns = [{"role": "system", "content": "Jibu kwa ufupi."}, {"role": "user", "content": "Mji mkuu wa Peru?"},
             {"role": "assistant", "content": "Lima."}]
    Translation.objects.create(job=job, row=instruction_set.instruction_rows.get(), language_id="sw", chosen=True,
                               translator_label="fake-mt", quality=0.9, fields={"messages": turns})
    export = run(instruction_set=instruction_set)
    assert lines(export_folder(export) / "sft-sw.jsonl")[0]["messages"] == turns
    assert lines(export_folder(export) / "sft-en.jsonl")[0]["messages"] == rows[0]["messages"]


def _importing_set():
    return InstructionSet.objects.create(name="half", format="alpaca", language_id="en", sha256="0" * 64)


@pytest.mark.parametrize("change, field, words", [
    (lambda s, j, other: {"instruction_set": _importing_set()}, "instruction_set", "no ready instruction set"),
    (lambda s, j, other: {"translation_job": other.id}, "translation_job", "translated another instruction set"),
    (lambda s, j, other: {"translation_job": 10**6}, "translation_job", "there is no translation job"),
    (lambda s, j, other: {"translation_job": "7"}, "translation_job", "a whole number"),
    (lambda s, j, other: {"languages": ["xx-nope"]}, "languages", "unknown language 'xx-nope'"),
    (lambda s, j, other: {"languages": ["de"]}, "languages", "did not translate into 'de'"),
    (lambda s, j, other: {"languages": ["en"]}, "languages", "the set's own language"),
    (lambda s, j, other: {"languages": "sw"}, "languages", "a list"),
    (lambda s, j, other: {"include_source": "yes"}, "include_source", "true or false"),
])
def test_bad_inputs_are_refused_by_field_and_nothing_is_stored(change, field, words):
    instruction_set, job = translated_set()
    other_set = import_set(ROWS, name="another set")
    other = TranslationJob.objects.create(instruction_set=other_set, languages=["sw"], status="succeeded")
    arguments = {"instruction_set": instruction_set, **change(instruction_set, job, other)}
    with pytest.raises(InvalidInput) as refused:
        instruction_export_create(enqueue=False, **arguments)
    assert refused.value.field == field and words in refused.value.message
    assert not InstructionExport.objects.exists()


def test_an_unfinished_job_no_job_and_no_usable_row_are_refused():
    unusable = {key: (chosen, translator, quality, "unusable", None)
                for key, (chosen, translator, quality, _, _) in PLAN.items() if key[0] == "sw"}
    instruction_set, job = translated_set(unusable, status="running")
    with pytest.raises(InvalidInput, match="no finished translation job") as refused:
        instruction_export_create(instruction_set=instruction_set, enqueue=False)
    assert refused.value.field == "translation_job"
    with pytest.raises(InvalidInput, match="is running: only a succeeded job") as refused:
        instruction_export_create(instruction_set=instruction_set, translation_job=job, enqueue=False)
    assert refused.value.field == "translation_job"
    TranslationJob.objects.filter(pk=job.pk).update(status="succeeded")
    with pytest.raises(InvalidInput, match="no usable translation in sw") as refused:
        instruction_export_create(instruction_set=instruction_set, languages=["sw"], enqueue=False)
    assert refused.value.field == "languages"
    assert not InstructionExport.objects.exists()


def test_a_failed_run_publishes_nothing_and_retry_writes_it_once_mended():
    instruction_set, job = translated_set()
    broken = Translation.objects.get(job=job, language_id="zh-Hans", row__external_id="peru")
    # The last row written: every file before it has lines in the private folder when the run fails.
    Translation.objects.filter(pk=broken.pk).update(fields={"instruction": "只有指令"})
    export = run(instruction_set=instruction_set)
    assert export.status == "failed"
    assert f"translation {broken.pk} (row 'peru' in zh-Hans)" in export.error
    assert "Nothing was published" in export.error
    assert (export.rows, export.files, export.card) == (0, [], "")
    assert not export_folder(export).exists()
    assert list(exports_root().iterdir()) == []  # no partial folder left behind

    Translation.objects.filter(pk=broken.pk).update(post_edit="unusable")
    instruction_export_retry(export=export)
    export = instruction_export_run(export_id=export.id)
    assert export.status == "succeeded" and export.per_language["zh-Hans"]["rows"] == 2
    with pytest.raises(Conflict, match="only failed or cancelled"):
        instruction_export_retry(export=export)


def test_an_export_whose_worker_went_silent_is_failed_and_its_partial_folder_removed():
    instruction_set, _job = translated_set()
    export = instruction_export_create(instruction_set=instruction_set, enqueue=False)
    long_ago = timezone.now() - timedelta(minutes=30)
    InstructionExport.objects.filter(pk=export.pk).update(status="running", heartbeat_at=long_ago,
                                                           worker="another-host:1", attempts=1)
    partial = exports_root() / f".{export.pk}.partial-dead"
    partial.mkdir(parents=True)
    (partial / "sft-all.jsonl").write_text("{}\n")
    assert instruction_exports_fail_stale() == 1
    export.refresh_from_db()
    assert export.status == "failed" and "stopped responding" in export.error and "Retry" in export.error
    assert not partial.exists()


def test_a_fast_lane_worker_fails_the_exports_of_a_dead_worker_when_it_starts() -> None:
    from crossfeed.jobs.lanes import FAST, RECOVER_AT_START

    assert "instructions.services.exports.instruction_exports_fail_stale" in RECOVER_AT_START[FAST]
