"""The SFT export of an instruction set: create (every input checked, queued on commit), run (write, publish),
retry, fail the stale ones, and the export as the API shows it (docs/instruction-sets.md, "SFT export").

What is exported: per (row, language) of one translation job, the translation when it is USABLE - chosen by
quality, or accepted or edited by a native speaker - and not marked unusable; its text is `fields`, which a
post-edit has already replaced with the edited text. Optionally the set's own rows too, as translator "source".

The run (queue "exports", the fast lane) writes `sft-<code>.jsonl` per language, `sft-all.jsonl` and the card
`README.md` into a private folder and publishes them with one rename, as preference exports do
(annotation/services/exports.py): readers see all the files or none, and a failed or killed run leaves nothing
behind. It reads one language at a time through a server-side cursor, so memory does not grow with the set, and
holds no transaction (no SQLite write lock) while it writes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.urls import reverse

from annotation.languages import normalize_language_code
from crossfeed.errors import InvalidInput
from crossfeed.jobs.lifecycle import Attempt, JobFailed, Tracker, job_execute, job_retry, jobs_fail_stale
from crossfeed.jobs.status import JobStatus
from generation.services.validation import ID_MAX
from instructions.formats import LONE_SURROGATE
from instructions.models import InstructionExport, InstructionRow, InstructionSet
from instructions.sft_card import SOURCE, sft_card
from translation.models import Translation, TranslationJob

STALE_AFTER = timedelta(minutes=5)
KEPT = "nothing was published; Retry writes the export again"
ALL_FILE = "sft-all.jsonl"
CARD_FILE = "README.md"
# Rows between two looks at the job's row (cancel, a worker stopping): cheap, one indexed read.
STOP_CHECK_ROWS = 2000
MAX_LANGUAGES = 300
POST_EDITED = (Translation.PostEdit.ACCEPTED, Translation.PostEdit.EDITED)


def exports_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "instruction-exports"


def export_folder(export: InstructionExport) -> Path:
    return exports_root() / str(export.pk)


def language_file(code: str) -> str:
    return f"sft-{code}.jsonl"


def train_file(export: InstructionExport) -> tuple[str, int]:
    """The file a training run reads, and its rows: the one language file when the export has one, else
    sft-all.jsonl."""
    languages = [entry for entry in export.files if entry["name"] != ALL_FILE]
    chosen = languages[0] if len(languages) == 1 else next(e for e in export.files if e["name"] == ALL_FILE)
    return str(export_folder(export) / chosen["name"]), int(chosen["rows"])


# --- create ---------------------------------------------------------------------------------------------------------

def _check_set(instruction_set: Any) -> InstructionSet:
    pk = getattr(instruction_set, "pk", instruction_set)
    found = None
    if isinstance(pk, int) and not isinstance(pk, bool) and 1 <= pk <= ID_MAX:
        found = InstructionSet.objects.ready().filter(pk=pk).first()
    if found is None:
        raise InvalidInput("there is no ready instruction set with this id (an import still running is not ready)",
                           field="instruction_set")
    return found


def _check_job(translation_job: Any, instruction_set: InstructionSet) -> TranslationJob:
    if translation_job is None:
        job = (TranslationJob.objects.filter(instruction_set=instruction_set, status=JobStatus.SUCCEEDED)
               .order_by("-finished_at", "-id").first())
        if job is None:
            raise InvalidInput(f"the instruction set {instruction_set.name!r} has no finished translation job; "
                               "translate it first (POST /api/v1/instruction-sets/"
                               f"{instruction_set.pk}/translations/)", field="translation_job")
        return job
    pk = getattr(translation_job, "pk", translation_job)
    if isinstance(pk, bool) or not isinstance(pk, int) or not 1 <= pk <= ID_MAX:
        raise InvalidInput("the id of a translation job (a whole number)", field="translation_job")
    job = TranslationJob.objects.filter(pk=pk).first()
    if job is None:
        raise InvalidInput(f"there is no translation job {pk}", field="translation_job")
    if job.instruction_set_id != instruction_set.pk:
        raise InvalidInput(f"translation job {pk} translated another instruction set (id {job.instruction_set_id}), "
                           f"not {instruction_set.name!r}", field="translation_job")
    if job.status != JobStatus.SUCCEEDED:
        raise InvalidInput(f"translation job {pk} is {job.get_status_display()}: only a succeeded job's translations "
                           "are chosen; wait for it, or retry it", field="translation_job")
    return job


def _check_languages(languages: Any, job: TranslationJob, source: str) -> list[str]:
    if languages is None or languages == []:
        return sorted(job.languages)
    if not isinstance(languages, list) or len(languages) > MAX_LANGUAGES:
        raise InvalidInput(f'a list of at most {MAX_LANGUAGES} language codes such as ["sw", "ar"]; empty: every '
                           "language of the translation job", field="languages")
    resolved: set[str] = set()
    for code in languages:
        canonical = normalize_language_code(code) if isinstance(code, str) and code else None
        shown = code[:40] if isinstance(code, str) else code
        if canonical is None:
            raise InvalidInput(f"unknown language {shown!r}; see GET /api/v1/languages/ for the codes",
                               field="languages")
        if canonical == source:
            raise InvalidInput(f"{canonical!r} is the set's own language: include_source decides whether its rows "
                               "are exported", field="languages")
        if canonical not in job.languages:
            raise InvalidInput(f"translation job {job.pk} did not translate into {canonical!r}; its languages: "
                               f"{', '.join(job.languages)}", field="languages")
        resolved.add(canonical)
    return sorted(resolved)


def instruction_export_create(*, instruction_set: Any, translation_job: Any = None, languages: Any = None,
                              include_source: Any = True, created_by=None, enqueue: bool = True) -> InstructionExport:
    """Check everything (InvalidInput naming the field; nothing stored), then record the export and queue it.

    translation_job: a job of this set that succeeded (default: the newest); languages: some of the job's target
    languages (default: all); include_source: the set's own rows too."""
    found = _check_set(instruction_set)
    job = _check_job(translation_job, found)
    codes = _check_languages(languages, job, found.language_id)
    if not isinstance(include_source, bool):
        raise InvalidInput("true or false", field="include_source")
    usable = Translation.objects.usable().filter(job=job, language_id__in=codes).count()
    if usable == 0:
        raise InvalidInput(f"translation job {job.pk} has no usable translation in {', '.join(codes)}: none was "
                           "chosen, accepted or edited (or all were marked unusable); nothing to export. Send them "
                           "to post-editing, or translate again with other translators",
                           field="languages" if languages else "translation_job")
    with transaction.atomic():
        export = InstructionExport.objects.create(
            instruction_set=found, translation_job=job, languages=codes, include_source=include_source,
            progress_total=usable + (found.rows if include_source else 0),
            created_by=created_by if created_by is not None and created_by.is_authenticated else None)
        if enqueue:
            instruction_export_enqueue(export)
    return export


def instruction_export_enqueue(export: InstructionExport) -> None:
    from instructions.tasks import run_instruction_export

    # After commit: a worker must never pick up an export whose row it cannot see yet.
    transaction.on_commit(lambda: run_instruction_export.enqueue(export.pk))


def instruction_export_retry(*, export: InstructionExport) -> InstructionExport:
    """Queue a failed or cancelled export again; nothing of it was published, so it is written from the start."""
    return job_retry(job=export, label="instruction set export", enqueue=instruction_export_enqueue)


def instruction_exports_fail_stale(*, now: datetime | None = None, stale_after: timedelta = STALE_AFTER) -> int:
    """Fail the running exports whose worker is gone, and remove what they had written."""
    running = list(InstructionExport.objects.filter(status=JobStatus.RUNNING).values_list("pk", flat=True))
    count = jobs_fail_stale(model=InstructionExport, kept=KEPT, now=now, stale_after=stale_after)
    if count:
        for pk in InstructionExport.objects.filter(pk__in=running, status=JobStatus.FAILED).values_list("pk",
                                                                                                        flat=True):
            _remove_partials(pk)
    return count


# --- run ------------------------------------------------------------------------------------------------------------

class _Stopped(Exception):
    """The job was cancelled, its worker is stopping, or someone else took it over: stop writing."""


def instruction_export_run(*, export_id: int) -> InstructionExport:
    """Run a queued export to its end (claimed first, so two workers never run the same export)."""
    return job_execute(model=InstructionExport, job_id=export_id, label="instruction set export", kept=KEPT,
                       kept_sentence="Nothing was published; Retry writes the export again.", body=_run,
                       queryset=InstructionExport.objects.select_related("instruction_set", "translation_job"))


def _run(export: InstructionExport, attempt: Attempt) -> tuple[str, str] | None:
    _remove_partials(export.pk)
    tracker = Tracker(attempt=attempt, total=export.progress_total, done=0)
    tracker.beat()
    partial = exports_root() / f".{export.pk}.partial-{uuid.uuid4().hex}"
    partial.mkdir(parents=True)
    try:
        summary = _write(export, partial, tracker)
        if not tracker.beat():
            raise _Stopped
        final = export_folder(export)
        if final.exists():  # a folder left by an export of the same id (a database reset since)
            shutil.rmtree(final)
        partial.rename(final)  # publishing is one rename: readers see all the files or none
    except _Stopped:
        shutil.rmtree(partial, ignore_errors=True)
        return tracker.stopped_outcome(KEPT)
    except JobFailed as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise JobFailed(f"{exc.message}. Nothing was published.") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if not attempt.owned().update(progress_done=export.progress_total, **summary):
        return None
    return JobStatus.SUCCEEDED, ""


def _write(export: InstructionExport, folder: Path, tracker: Tracker) -> dict[str, Any]:
    instruction_set, job = export.instruction_set, export.translation_job
    if job is None:
        raise JobFailed("its translation job no longer exists; create a new export")
    alpaca = instruction_set.format == InstructionSet.Format.ALPACA
    per_language: dict[str, dict[str, Any]] = {}
    files: list[dict[str, Any]] = []
    left_out = _left_out(job, export.languages)
    order = ([instruction_set.language_id] if export.include_source else []) + export.languages
    with _HashedFile(folder / ALL_FILE) as everything:
        for code in order:
            if code == instruction_set.language_id and export.include_source:
                records = _source_records(instruction_set, alpaca)
            else:
                records = _translated_records(job, code, alpaca)
            stats = _LanguageStats(threshold=job.quality_threshold)
            with _HashedFile(folder / language_file(code)) as one:
                for record in records:
                    line = _line(record, code)
                    one.write(line)
                    everything.write(line)
                    stats.add(record)
                    tracker.done += 1
                    if tracker.done % STOP_CHECK_ROWS == 0 and tracker.should_stop():
                        raise _Stopped
                    tracker.beat_if_due()
            per_language[code] = stats.as_dict(left_out.get(code) if code in export.languages else None)
            if one.rows:
                files.append(one.described())
            else:
                (folder / language_file(code)).unlink()
    if not everything.rows:
        raise JobFailed("no usable row is left (they were marked unusable since the export was created); nothing "
                        "was published")
    files.insert(0, everything.described())
    card = sft_card(set_name=instruction_set.name, set_id=instruction_set.pk, set_rows=instruction_set.rows,
                    set_sha256=instruction_set.sha256, source_language=instruction_set.language_id, job_id=job.pk,
                    threshold=job.quality_threshold, translators=[entry["label"] for entry in job.translators],
                    include_source=export.include_source, per_language=per_language, files=files)
    (folder / CARD_FILE).write_text(card, encoding="utf-8")
    return {"rows": everything.rows, "files": files, "per_language": per_language, "card": card}


class _Record:
    """One row to write: its id, conversation, translator and post-edit verdict, with what the statistics read."""

    __slots__ = ("external_id", "messages", "translator", "post_edit", "quality", "edit_distance", "where")

    def __init__(self, external_id: str, messages: list[dict], translator: str, post_edit: str = "",
                 quality: float | None = None, edit_distance: float | None = None, where: str = "") -> None:
        self.external_id, self.messages, self.translator = external_id, messages, translator
        self.post_edit, self.quality, self.edit_distance, self.where = post_edit, quality, edit_distance, where


def _source_records(instruction_set: InstructionSet, alpaca: bool) -> Iterator[_Record]:
    rows = (InstructionRow.objects.filter(instruction_set=instruction_set).order_by("index")
            .values_list("external_id", "instruction", "input", "output", "messages"))
    for external_id, instruction, input_text, output, messages in rows.iterator(chunk_size=1000):
        fields = {"instruction": instruction, "input": input_text, "output": output} if alpaca else \
            {"messages": messages}
        where = f"row {external_id!r} of the set"
        yield _Record(external_id, _messages(fields, alpaca, where), SOURCE, where=where)


def _translated_records(job: TranslationJob, code: str, alpaca: bool) -> Iterator[_Record]:
    # Translation.usable's rule, as a filter: chosen by quality or passed by a native speaker, and not unusable.
    translations = (Translation.objects.usable().filter(job=job, language_id=code).order_by("row__index")
                    .values_list("id", "row__external_id", "fields", "translator_label", "post_edit", "quality",
                                 "edit_distance"))
    for pk, external_id, fields, translator, post_edit, quality, distance in translations.iterator(chunk_size=1000):
        where = f"translation {pk} (row {external_id!r} in {code})"
        # "pending" (in a campaign, not answered yet) is no verdict: the machine text goes out as chosen.
        verdict = post_edit if post_edit in POST_EDITED else ""
        yield _Record(external_id, _messages(fields, alpaca, where), translator or "", verdict, quality, distance,
                      where)


def _messages(fields: Any, alpaca: bool, where: str) -> list[dict[str, str]]:
    """The conversation of stored fields; JobFailed naming the row when they do not make one (a text missing or
    empty, a lone surrogate that no tokenizer takes)."""
    if alpaca:
        texts = [fields.get(name) if isinstance(fields, dict) else None for name in ("instruction", "input", "output")]
        instruction, input_text, output = texts
        input_text = "" if input_text is None else input_text
        if not all(isinstance(text, str) for text in (instruction, input_text, output)):
            raise JobFailed(f"{where}: its fields are not instruction, input and output texts; mark it unusable or "
                            "translate the row again")
        user = f"{instruction}\n\n{input_text}" if input_text.strip() else instruction
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
    else:
        given = fields.get("messages") if isinstance(fields, dict) else None
        if not isinstance(given, list) or not given or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in given):
            raise JobFailed(f"{where}: its fields hold no messages [{{role, content}}]; mark it unusable or translate "
                            "the row again")
        messages = [{"role": m["role"], "content": m["content"]} for m in given]
    for message in messages:
        if not message["content"].strip():
            raise JobFailed(f"{where}: the {message['role']} turn is empty; mark it unusable or post-edit it")
        if LONE_SURROGATE.search(message["content"]):
            raise JobFailed(f"{where}: the {message['role']} turn holds a lone surrogate, which is not a character; "
                            "mark it unusable or post-edit it")
    return messages


def _line(record: _Record, code: str) -> bytes:
    row = {"messages": record.messages, "language": code, "id": f"{record.external_id}:{code}",
           "translator": record.translator, "post_edit": record.post_edit}
    return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")


def _left_out(job: TranslationJob, codes: list[str]) -> dict[str, dict[str, int]]:
    """Per language: the translations left out as not acceptable (none chosen, not post-edited) and as unusable."""
    def by_language(translations) -> dict[str, int]:
        # order_by(): the model's ordering would join the GROUP BY and split the counts by row.
        return dict(translations.filter(job=job, language_id__in=codes).order_by().values("language_id")
                    .annotate(n=Count("id")).values_list("language_id", "n"))

    every = by_language(Translation.objects.all())
    usable = by_language(Translation.objects.usable())
    unusable = by_language(Translation.objects.filter(post_edit=Translation.PostEdit.UNUSABLE))
    return {code: {"not_acceptable": every.get(code, 0) - usable.get(code, 0) - unusable.get(code, 0),
                   "unusable": unusable.get(code, 0)} for code in codes}


class _LanguageStats:
    def __init__(self, *, threshold: float) -> None:
        self.threshold = threshold
        self.rows = 0
        self.by_translator: Counter[str] = Counter()
        self.verdicts: Counter[str] = Counter()
        self.qualities: list[float] = []
        self.distances: list[float] = []

    def add(self, record: _Record) -> None:
        self.rows += 1
        self.by_translator[record.translator] += 1
        if record.post_edit in POST_EDITED:
            self.verdicts[record.post_edit] += 1
            if record.edit_distance is not None:
                self.distances.append(record.edit_distance)
        if record.quality is not None:
            self.qualities.append(record.quality)

    def as_dict(self, left_out: dict[str, int] | None) -> dict[str, Any]:
        scored = len(self.qualities)
        below = sum(quality < self.threshold for quality in self.qualities)
        post_edited = self.verdicts["accepted"] + self.verdicts["edited"]
        return {
            "rows": self.rows,
            "by_translator": dict(sorted(self.by_translator.items())),
            "mean_quality": round(sum(self.qualities) / scored, 4) if scored else None,
            "below_threshold": below if scored else None,
            "below_threshold_share": round(below / scored, 4) if scored else None,
            "post_edited": post_edited,
            "accepted": self.verdicts["accepted"],
            "edited": self.verdicts["edited"],
            "post_edit_share": round(post_edited / self.rows, 4) if self.rows else None,
            "mean_edit_distance": round(sum(self.distances) / len(self.distances), 4) if self.distances else None,
            "left_out": left_out or {"not_acceptable": 0, "unusable": 0},
        }


class _HashedFile:
    """A file written once, counting its rows and bytes and hashing them on the way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self.size = 0
        self.digest = hashlib.sha256()
        self.handle: IO[bytes] | None = None

    def __enter__(self) -> _HashedFile:
        self.handle = self.path.open("wb")
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.handle is not None
        self.handle.close()

    def write(self, line: bytes) -> None:
        assert self.handle is not None
        self.handle.write(line)
        self.digest.update(line)
        self.rows += 1
        self.size += len(line)

    def described(self) -> dict[str, Any]:
        return {"name": self.path.name, "rows": self.rows, "bytes": self.size, "sha256": self.digest.hexdigest()}


def _remove_partials(export_id: int) -> None:
    for leftover in exports_root().glob(f".{export_id}.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)


# --- read -----------------------------------------------------------------------------------------------------------

def instruction_export_payload(export: InstructionExport) -> dict[str, Any]:
    """The export as GET /api/v1/instruction-set-exports/{id}/ answers it (docs/api.md)."""
    files = [{**entry, "url": reverse("api-instruction-export-file", kwargs={"export_id": export.pk,
                                                                               "name": entry["name"]})}
             for entry in export.files]
    if export.files:
        card = export.card.encode("utf-8")
        files.append({"name": CARD_FILE, "rows": 0, "bytes": len(card), "sha256": hashlib.sha256(card).hexdigest(),
                      "url": reverse("api-instruction-export-file", kwargs={"export_id": export.pk,
                                                                            "name": CARD_FILE})})
    return {
        "id": export.pk,
        "status": export.status,
        "instruction_set": export.instruction_set_id,
        "translation_job": export.translation_job_id,
        "languages": export.languages,
        "include_source": export.include_source,
        "progress": {"done": export.progress_done, "total": export.progress_total},
        "rows": export.rows,
        "per_language": export.per_language,
        "files": files,
        "error": export.error,
        "attempts": export.attempts,
        "created_by": export.created_by.get_username() if export.created_by_id else None,
        "created_at": export.created_at,
        "started_at": export.started_at,
        "finished_at": export.finished_at,
    }
