import json
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Export, Item, JobStatus
from annotation.services.exports import (
    export_create,
    export_folder,
    export_retry,
    export_run,
    exports_fail_stale,
    exports_root,
)
from annotation.services.judgments import judgment_submit
from crossfeed.errors import Conflict, InvalidInput
from tests.conftest import item_line, new_key, ranks_for


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run(campaign, admin_user, **filters):
    export = export_create(campaign=campaign, created_by=admin_user, enqueue=False, **filters)
    return export_run(export_id=export.id)


def test_it_exports_trl_preference_rows(judged, admin_user):
    export = run(judged, admin_user, test_fraction=0.0)
    assert export.status == JobStatus.SUCCEEDED, export.error
    # 5 items × 3 pairs, each 2–0.
    assert export.rows == 15
    rows = read_jsonl(export_folder(export) / "train.jsonl")
    first = rows[0]
    assert list(first) == ["prompt", "chosen", "rejected", "prompt_language", "response_language", "item",
                           "chosen_model", "rejected_model", "votes_for", "votes_against", "n_judgments", "split"]
    assert first["prompt"] == [{"role": "user", "content": "Prompt of t-0"}]
    assert first["chosen"] == [{"role": "assistant", "content": "t-0 response 0"}]
    assert first["rejected"] == [{"role": "assistant", "content": "t-0 response 1"}]
    assert (first["votes_for"], first["votes_against"], first["n_judgments"]) == (2, 0, 2)
    assert (first["chosen_model"], first["rejected_model"], first["split"]) == ("model-0", "model-1", "train")
    assert export.per_language == {"ar": {"items": 2, "rows": 6, "train": 6, "test": 0},
                                   "ta": {"items": 3, "rows": 9, "train": 9, "test": 0}}
    assert [(p["prompt_language"], p["response_language"], p["agreement"]) for p in export.language_pairs] == [
        ("en", "ar", 1.0), ("sw", "ta", 1.0)]
    card = (export_folder(export) / "README.md").read_text()
    assert export.files[0]["sha256"] in card and "| sw | ta | 3 | 9 |" in card


def test_reexport_is_byte_identical(judged, admin_user):
    first = run(judged, admin_user, format="parquet", test_fraction=0.5)
    second = run(judged, admin_user, format="parquet", test_fraction=0.5)
    assert first.files == second.files
    for name in [f["name"] for f in first.files] + ["README.md"]:
        assert (export_folder(first) / name).read_bytes() == (export_folder(second) / name).read_bytes()


def test_translations_of_one_instruction_share_a_split(campaign, admin_user, import_items, make_annotator):
    lines = []
    for n in range(40):
        for language in ["ta", "ar"]:
            line = item_line(f"i{n}-{language}", response_lang=language)
            line["pivot"]["text"] = f"Shared instruction {n}"
            lines.append(line)
    import_items(campaign, lines)
    users = {lang: [make_annotator(f"{lang}{k}", [lang], ["sw"]) for k in range(2)] for lang in ["ta", "ar"]}
    for item in Item.objects.all():
        for user in users[item.response_language_id]:
            judgment_submit(annotator=user, item_id=item.id, ranks=ranks_for(item), idempotency_key=new_key())
    export = run(campaign, admin_user, test_fraction=0.3, pairs="best_vs_worst")
    sides: dict[str, set] = {}
    for file in export.files:
        for row in read_jsonl(export_folder(export) / file["name"]):
            sides.setdefault(row["item"].split("-")[0], set()).add(row["split"])
    assert all(len(split) == 1 for split in sides.values())
    assert {"train", "test"} == set().union(*sides.values())


def test_filters_that_match_nothing_are_refused(judged, admin_user):
    with pytest.raises(InvalidInput, match="has 3 or more judgments"):
        export_create(campaign=judged, created_by=admin_user, min_judgments=3, enqueue=False)
    with pytest.raises(InvalidInput, match="response language yo"):
        export_create(campaign=judged, created_by=admin_user, languages=["yo"], enqueue=False)
    assert not Export.objects.exists()


def test_invalid_settings_name_each_field(judged, admin_user):
    with pytest.raises(InvalidInput) as caught:
        export_create(campaign=judged, created_by=admin_user, format="csv", pairs="some", min_judgments=0,
                      min_agreement=2, languages=["klingon"], test_fraction=1.0, seed=-1, enqueue=False)
    assert set(caught.value.field_errors) == {"format", "pairs", "min_judgments", "min_agreement", "languages",
                                              "test_fraction", "seed"}


def test_min_agreement_that_removes_every_pair_fails_with_a_reason(campaign, admin_user, import_items,
                                                                   make_annotator):
    import_items(campaign, [item_line("split", n=2)])
    item = Item.objects.get()
    for n, order in enumerate([[1, 2], [2, 1]]):
        user = make_annotator(f"u{n}", ["ta"], ["sw"])
        judgment_submit(annotator=user, item_id=item.id, ranks=ranks_for(item, order), idempotency_key=new_key())
    export = run(campaign, admin_user)
    assert export.status == JobStatus.FAILED and "gave no rows" in export.error
    assert not export_folder(export).exists()


def test_a_revision_after_the_cutoff_is_not_in_the_snapshot(judged, admin_user):
    export = export_create(campaign=judged, created_by=admin_user, enqueue=False, test_fraction=0.0,
                           pairs="best_vs_worst")
    item = Item.objects.get(external_id="t-0")
    user = item.judgments.first().annotator
    Export.objects.filter(pk=export.pk).update(cutoff=timezone.now() - timedelta(microseconds=1))
    judgment_submit(annotator=user, item_id=item.id, ranks=ranks_for(item, [3, 2, 1]), idempotency_key=new_key())
    export = export_run(export_id=export.id)
    row = next(r for r in read_jsonl(export_folder(export) / "train.jsonl") if r["item"] == "t-0")
    assert (row["votes_for"], row["votes_against"]) == (2, 0)


def test_a_crash_publishes_nothing_and_a_retry_succeeds(judged, admin_user, monkeypatch):
    export = export_create(campaign=judged, created_by=admin_user, enqueue=False)

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("annotation.services.exports.preference_rows", explode)
    export = export_run(export_id=export.id)
    assert export.status == JobStatus.FAILED and export.error == "OSError: disk full"
    assert not export_folder(export).exists() and not list(exports_root().glob(".*partial*"))
    monkeypatch.undo()
    queued = export_create(campaign=judged, created_by=admin_user, enqueue=False)
    with pytest.raises(Conflict, match="only failed or cancelled"):
        export_retry(export=queued)
    export = export_retry(export=export)
    export = export_run(export_id=export.id)
    assert export.status == JobStatus.SUCCEEDED and export.attempts == 2 and export.rows == 15


def test_a_silent_worker_is_marked_failed(judged, admin_user):
    export = export_create(campaign=judged, created_by=admin_user, enqueue=False)
    long_ago = timezone.now() - timedelta(hours=1)
    Export.objects.filter(pk=export.pk).update(status=JobStatus.RUNNING, heartbeat_at=long_ago)
    partial = exports_root() / f".{export.pk}.partial-dead"
    partial.mkdir(parents=True)
    (partial / "train.jsonl").write_text("half a row")
    assert exports_fail_stale() == 1
    export.refresh_from_db()
    assert export.status == JobStatus.FAILED and "stopped responding" in export.error
    assert not partial.exists()
    assert export_run(export_id=export_retry(export=export).id).status == JobStatus.SUCCEEDED


def test_a_claimed_export_is_not_run_twice(judged, admin_user):
    export = export_create(campaign=judged, created_by=admin_user, enqueue=False)
    assert export_run(export_id=export.id).status == JobStatus.SUCCEEDED
    again = export_run(export_id=export.id)
    assert again.status == JobStatus.SUCCEEDED and again.attempts == 1


def test_sft_export_holds_the_consensus_best(judged, admin_user):
    export = run(judged, admin_user, kind="sft", test_fraction=0.0)
    rows = read_jsonl(export_folder(export) / "train.jsonl")
    assert len(rows) == 5
    assert rows[0]["messages"] == [{"role": "user", "content": "Prompt of t-0"},
                                   {"role": "assistant", "content": "t-0 response 0"}]


def test_exports_load_with_datasets(judged, admin_user):
    datasets = pytest.importorskip("datasets")
    for file_format, loader in [("jsonl", "json"), ("parquet", "parquet")]:
        export = run(judged, admin_user, format=file_format, test_fraction=0.0)
        path = str(export_folder(export) / f"train.{file_format}")
        dataset = datasets.load_dataset(loader, data_files={"train": path}, split="train")
        assert dataset.num_rows == 15
        assert dataset[0]["chosen"] == [{"role": "assistant", "content": "t-0 response 0"}]


@pytest.mark.django_db(transaction=True)
def test_two_exports_running_at_once_give_two_correct_snapshots(judged, admin_user):
    import threading

    from django.db import connection

    exports = [export_create(campaign=judged, created_by=admin_user, enqueue=False, test_fraction=0.0)
               for _ in range(2)]
    results = {}

    def work(export_id):
        try:
            results[export_id] = export_run(export_id=export_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(export.id,)) for export in exports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    first, second = (results[export.id] for export in exports)
    assert first.status == second.status == JobStatus.SUCCEEDED
    assert first.rows == second.rows == 15 and first.files == second.files
    assert export_folder(first) != export_folder(second)
    assert (export_folder(first) / "train.jsonl").read_bytes() == (export_folder(second) / "train.jsonl").read_bytes()
