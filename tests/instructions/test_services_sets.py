"""instructions/services/sets.py: the import stores every row or none, names the rows, and frees a dead import's
name; the command and the demo use it."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from annotation.services.imports import ImportRefused
from crossfeed.errors import InvalidInput
from instructions.models import InstructionRow, InstructionSet
from instructions.services import sets
from instructions.services.sets import instruction_set_import, instruction_sets_cleanup

SAMPLE = Path(__file__).resolve().parents[2] / "instructions" / "data" / "sample_alpaca.jsonl"
pytestmark = pytest.mark.django_db


def jsonl(rows: list[dict]) -> io.BytesIO:
    return io.BytesIO(("\n".join(json.dumps(row) for row in rows) + "\n").encode("utf-8"))


def alpaca(n: int, **extra) -> list[dict]:
    return [{"instruction": f"Instruction {i}", "output": f"Output {i}", **extra} for i in range(n)]


def test_it_stores_every_row_in_order_with_messages_and_alpaca_fields(admin_user):
    rows = [{"instruction": "Add.", "input": "2 + 3", "output": "5", "id": "add-1", "metadata": {"k": 1}},
            {"instruction": "Name a colour.", "output": "Blue."}]
    stored = instruction_set_import(name="Tiny", source=jsonl(rows), language="swh_Latn", created_by=admin_user)
    assert (stored.status, stored.format, stored.rows, stored.language_id) == ("ready", "alpaca", 2, "sw")
    assert stored.created_by == admin_user
    first, second = stored.instruction_rows.order_by("index")
    assert (first.index, first.external_id, first.input, first.metadata) == (0, "add-1", "2 + 3", {"k": 1})
    assert first.messages == [{"role": "user", "content": "Add.\n\n2 + 3"}, {"role": "assistant", "content": "5"}]
    assert (second.index, second.external_id, second.language_id) == (1, "tiny-1", "sw")


def test_it_records_the_files_sha256_and_stores_a_messages_set():
    raw = (json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"}]})
           + "\n").encode()
    stored = instruction_set_import(name="Chat", source=io.BytesIO(raw))
    assert stored.sha256 == hashlib.sha256(raw).hexdigest()
    row = stored.instruction_rows.get()
    assert (stored.format, row.instruction, row.output) == ("messages", "", "")
    assert row.messages[1] == {"role": "assistant", "content": "Hey"}


def test_it_stores_nothing_when_one_line_is_bad():
    rows = alpaca(5)
    rows[3] = {"instruction": "no output"}
    with pytest.raises(ImportRefused) as refused:
        instruction_set_import(name="Broken", source=jsonl(rows))
    assert refused.value.errors == [{"line": 4, "field": "output", "message": "required"}]
    assert (refused.value.error_count, refused.value.truncated) == (1, False)
    assert not InstructionSet.objects.exists() and not InstructionRow.objects.exists()


def test_it_caps_the_errors_and_counts_them_all(settings):
    settings.CROSSFEED = {**settings.CROSSFEED, "MAX_IMPORT_ERRORS": 3}
    with pytest.raises(ImportRefused) as refused:
        instruction_set_import(name="Garbage", source=io.BytesIO(b"x\n" * 50))
    assert ([error["line"] for error in refused.value.errors], refused.value.error_count) == ([1, 2, 3], 50)
    assert refused.value.as_dict()["truncated"] is True


def test_it_refuses_a_name_in_use_an_empty_name_and_an_unknown_language():
    instruction_set_import(name="Taken", source=jsonl(alpaca(1)))
    for name, language, field in (("Taken", "en", "name"), ("  ", "en", "name"), ("New", "xx-nowhere", "language")):
        with pytest.raises(InvalidInput) as refused:
            instruction_set_import(name=name, source=jsonl(alpaca(1)), language=language)
        assert refused.value.field == field
    assert InstructionSet.objects.count() == 1


def test_it_refuses_a_given_id_that_a_generated_one_would_repeat():
    rows = [{"instruction": "a", "output": "b", "id": "clash-1"}, {"instruction": "c", "output": "d"}]
    with pytest.raises(ImportRefused) as refused:
        instruction_set_import(name="Clash", source=jsonl(rows))
    assert refused.value.errors[0]["field"] == "id"
    assert not InstructionSet.objects.exists()


def test_it_deletes_what_it_wrote_when_a_batch_fails(monkeypatch):
    monkeypatch.setattr(sets, "BATCH_SIZE", 10)
    written = []
    real = sets._write_batch

    def failing(instruction_set, batch):
        if written:
            raise RuntimeError("disk full")
        written.append(len(batch))
        real(instruction_set, batch)

    monkeypatch.setattr(sets, "_write_batch", failing)
    with pytest.raises(RuntimeError):
        instruction_set_import(name="Half", source=jsonl(alpaca(25)))
    assert written == [10]
    assert not InstructionSet.objects.exists() and not InstructionRow.objects.exists()


def test_it_hides_an_import_in_progress_and_frees_its_name_once_it_is_dead(settings):
    dead = InstructionSet.objects.create(name="Dead", format="alpaca", language_id="en", sha256="0" * 64)
    InstructionRow.objects.create(instruction_set=dead, index=0, external_id="x", language_id="en", messages=[])
    assert not InstructionSet.objects.ready().exists()
    with pytest.raises(InvalidInput, match="being imported"):
        instruction_set_import(name="Dead", source=jsonl(alpaca(1)))
    assert instruction_sets_cleanup() == 0  # still writing, as far as anyone can tell
    stale = timezone.now() - timedelta(seconds=settings.CROSSFEED["IMPORT_STALE_SECONDS"] + 1)
    InstructionSet.objects.filter(pk=dead.pk).update(heartbeat_at=stale)
    assert instruction_set_import(name="Dead", source=jsonl(alpaca(2))).rows == 2  # the clean-up ran first
    assert InstructionRow.objects.count() == 2


def test_it_imports_in_batches(monkeypatch):
    monkeypatch.setattr(sets, "BATCH_SIZE", 7)
    stored = instruction_set_import(name="Batched", source=jsonl(alpaca(50)))
    assert stored.rows == 50
    assert list(stored.instruction_rows.values_list("index", flat=True)) == list(range(50))


def test_the_sample_set_imports_and_shows_what_translation_must_protect():
    with SAMPLE.open("rb") as source:
        stored = instruction_set_import(name="Sample", source=source)
    texts = [row.instruction + row.input + row.output for row in stored.instruction_rows.all()]
    assert stored.rows >= 20 and stored.format == "alpaca"
    assert any("```" in text for text in texts)  # code
    assert any("https://" in text for text in texts)  # a URL
    assert any("{customer_name}" in text for text in texts)  # placeholders
    assert any("\\frac" in text or "πr²" in text for text in texts)  # a formula
    assert stored.instruction_rows.exclude(input="").count() >= 5


def test_the_command_imports_a_file_and_lists_the_bad_lines(tmp_path, capsys):
    call_command("import_instruction_set", str(SAMPLE), "--name", "From the CLI", "--language", "en")
    assert InstructionSet.objects.get(name="From the CLI").rows == sum(1 for _ in SAMPLE.open())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a"}\n')
    with pytest.raises(CommandError, match="nothing was stored"):
        call_command("import_instruction_set", str(bad))
    assert f"{bad}:2 output: required" in capsys.readouterr().err


def test_the_demo_seeds_the_sample_instructions(tmp_path):
    from annotation.services.demo import demo_seed
    from instructions.services.demo import DEMO_INSTRUCTION_SET

    demo_seed(var_dir=tmp_path)
    stored = InstructionSet.objects.ready().get(name=DEMO_INSTRUCTION_SET)
    assert (stored.rows, stored.created_by.username) == (24, "admin")
