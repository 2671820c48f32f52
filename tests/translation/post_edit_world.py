"""Builders for the post-editing tests (tests/translation/test_post_edit_*.py, tests/e2e/test_post_edit_browser.py):
an instruction set imported through the real import service, and a succeeded translation job whose Translation rows
have the qualities, choices and texts a test needs (what translation_job_choose stores at the end of a job), so that
which rows are sent, and how edits land, can be checked against known values."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

from django.utils import timezone

from annotation.models import JobStatus
from instructions.models import InstructionSet
from translation.models import Translation, TranslationJob
from translation.services.execution import row_fields

ARABIC = {
    "instruction": "اشرح لماذا تكون السماء زرقاء.",
    "input": "",
    "output": "ينتشر ضوء الشمس في الهواء، لذلك تبدو السماء زرقاء.",
}


def make_set(rows: list[dict], *, name: str = "post-edit set", language: str = "en") -> InstructionSet:
    from instructions.services.sets import instruction_set_import

    body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    return instruction_set_import(name=name, source=io.BytesIO(body), language=language, source_name="rows.jsonl")


def alpaca_rows(count: int) -> list[dict]:
    return [{"id": f"r{index}", "instruction": f"Instruction number {index}.",
             "input": "Some input." if index == 1 else "", "output": f"Answer number {index}."}
            for index in range(count)]


def machine_text(row, language: str, name: str) -> str:
    return f"[{language}] {row_fields(row)[name]}" if not name.startswith("m") else f"[{language}] message {name}"


def make_job(instruction_set: InstructionSet, *, languages: list[str], threshold: float = 0.5,
             quality: Callable | None = None, chosen: Callable | None = None, text: Callable | None = None,
             empty: Callable | None = None, status: str = JobStatus.SUCCEEDED) -> TranslationJob:
    """A job of the set into `languages` with one Translation per (row, language). quality(row, language) and
    chosen(row, language) default to 0.9 and True; text(row, language, field) to machine_text; empty(row, language)
    True leaves the Translation without a candidate (every translator failed)."""
    quality = quality or (lambda row, language: 0.9)
    chosen = chosen or (lambda row, language: True)
    text = text or machine_text
    empty = empty or (lambda row, language: False)
    job = TranslationJob.objects.create(
        instruction_set=instruction_set, languages=languages, quality_threshold=threshold, status=status,
        translators=[{"translator": 1, "label": "fake-mt", "kind": "endpoint"}], finished_at=timezone.now())
    rows = list(instruction_set.instruction_rows.order_by("index"))
    translations = []
    for language in languages:
        for row in rows:
            if empty(row, language):
                translations.append(Translation(job=job, row=row, language_id=language, chosen=False,
                                                flags=["translator_failed"]))
                continue
            if row.instruction or row.output:
                fields = {name: text(row, language, name) if row_fields(row).get(name) else ""
                          for name in ("instruction", "input", "output")}
            else:
                fields = {"messages": [{"role": message["role"], "content": text(row, language, f"m{index}")}
                                       for index, message in enumerate(row.messages)]}
            translations.append(Translation(job=job, row=row, language_id=language, chosen=chosen(row, language),
                                            translator_label="fake-mt", fields=fields,
                                            quality=quality(row, language)))
    Translation.objects.bulk_create(translations)
    per_language = {language: {"rows": len(rows), "chosen_by": {}, "mean_quality": None, "below_threshold": 0,
                               "not_acceptable": 0, "histogram": [0] * 10, "post_edited": 0}
                    for language in languages}
    TranslationJob.objects.filter(pk=job.pk).update(per_language=per_language)
    job.refresh_from_db()
    return job
