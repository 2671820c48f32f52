"""The dataset card (README.md) of an instruction set's SFT export, Hugging Face style: YAML front matter (languages,
task category, size, one config per file), then how the rows were chosen, counts per language and translator, the
quality summary, the post-edits and the files with their SHA-256.

Pure and deterministic: it holds no timestamp or user, so two exports of the same rows give the same card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

# Hugging Face's size_categories buckets, by the number of rows of the whole dataset.
SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))
SOURCE = "source"


def size_category(rows: int) -> str:
    return next((label for limit, label in SIZE_BUCKETS if rows < limit), "n>100M")


def _yaml_string(text: str) -> str:
    # A JSON string is a YAML double-quoted scalar: a set's name may hold ": ", "#" or quotes.
    return json.dumps(text, ensure_ascii=True)


def _cell(value: Any) -> str:
    """A Markdown table cell: a pipe or a line break in a name would split the row."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def sft_card(
    *,
    set_name: str,
    set_id: int,
    set_rows: int,
    set_sha256: str,
    source_language: str,
    job_id: int,
    threshold: float,
    translators: Sequence[str],
    include_source: bool,
    per_language: Mapping[str, Mapping[str, Any]],
    files: Sequence[Mapping[str, Any]],
) -> str:
    """The card's text. per_language: instructions/services/exports.py's statistics by language code; files:
    [{name, rows, bytes, sha256}] of the data files, sft-all.jsonl first."""
    languages = sorted(code for code, stats in per_language.items() if stats["rows"])
    total = sum(stats["rows"] for stats in per_language.values())
    configs = [("all", "sft-all.jsonl")] + [(entry["name"][4:-6], entry["name"]) for entry in files
                                             if entry["name"] != "sft-all.jsonl"]
    lines = [
        "---",
        "language:",
        # Quoted: YAML 1.1 reads a bare `no` (Norwegian) as false.
        *[f"- {_yaml_string(code)}" for code in languages],
        "task_categories:",
        "- text-generation",
        "size_categories:",
        f"- {size_category(total)}",
        f"pretty_name: {_yaml_string(f'{set_name} (SFT, {len(languages)} languages)')}",
        "configs:",
        *[line for name, file in configs
          for line in (f"- config_name: {_yaml_string(name)}", f"  data_files: {_yaml_string(file)}")],
        "---",
        "",
        f"# {set_name}: SFT data in {len(languages)} language(s)",
        "",
        f"Exported by Crossfeed from the instruction set “{set_name}” (id {set_id}, {set_rows} rows in "
        f"`{source_language}`, file SHA-256 `{set_sha256}`) and its translation job {job_id} (translators: "
        f"{', '.join(translators) or '—'}; quality threshold {threshold:g}).",
        "",
        "## How the rows were chosen",
        "",
        "- Per row and language, the translation chosen by quality among the translators' candidates; a row whose "
        "candidates were all unacceptable (empty, wrong language or script, a copy of the source, truncated, a "
        "protected segment lost) is left out unless a native speaker accepted or edited it.",
        "- A post-edit replaces the machine text: `post_edit` is `edited` (the native speaker's text), `accepted` "
        "(the machine text, checked) or empty (not post-edited). Translations marked `unusable` are left out.",
        ("- The set's own rows are included in `" + source_language + "`, with translator `source`." if include_source
         else "- The set's own rows are not included."),
        "- Alpaca rows are one user turn (the instruction, then a blank line and the input when there is one) and "
        "one assistant turn (the output); messages rows keep their turns.",
        "",
        "## Format",
        "",
        "TRL's conversational format, one JSON object per line:",
        "",
        "```json",
        '{"messages": [{"role": "user", "content": "…"}, {"role": "assistant", "content": "…"}], '
        '"language": "sw", "id": "<row id>:sw", "translator": "…", "post_edit": ""}',
        "```",
        "",
        "## Languages",
        "",
        "| language | rows | mean quality | below threshold | post-edited | accepted | edited | mean edit distance "
        "| left out: not acceptable | left out: unusable |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for code in sorted(per_language):
        stats = per_language[code]
        left_out = stats.get("left_out") or {}
        below = stats.get("below_threshold")
        below_cell = "—" if below is None else f"{below} ({_share(stats.get('below_threshold_share'))})"
        lines.append(
            f"| {_cell(code)} | {stats['rows']} | {_number(stats.get('mean_quality'))} | {below_cell} | "
            f"{stats.get('post_edited', 0)} ({_share(stats.get('post_edit_share'))}) | {stats.get('accepted', 0)} | "
            f"{stats.get('edited', 0)} | {_number(stats.get('mean_edit_distance'))} | "
            f"{left_out.get('not_acceptable', 0)} | {left_out.get('unusable', 0)} |"
        )
    lines += [
        "",
        "Quality is the machine translation's score (0–1) when it was chosen; a post-edited row keeps it. Edit "
        "distance is the normalised character edit distance between the machine text and the post-edited text "
        "(0 for accepted).",
        "",
        "## Rows per translator",
        "",
        "| language | translator | rows |",
        "| --- | --- | ---: |",
        *[f"| {_cell(code)} | {_cell(translator)} | {count} |"
          for code in sorted(per_language)
          for translator, count in sorted(per_language[code].get("by_translator", {}).items())],
        "",
        "## Files",
        "",
        "| file | rows | bytes | sha256 |",
        "| --- | ---: | ---: | --- |",
        *[f"| {entry['name']} | {entry['rows']} | {entry['bytes']} | `{entry['sha256']}` |" for entry in files],
        "",
        "```python",
        "from datasets import load_dataset",
        'data = load_dataset("json", data_files="sft-all.jsonl", split="train")',
        "```",
        "",
    ]
    return "\n".join(lines)
