"""The dataset card (README.md beside the data files), Hugging Face style. Pure and deterministic: it holds no
timestamp or user, so a re-export of the same judgments gives the same card."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PAIR_RULES = {
    "all": "every pair of responses on which the annotators' votes have a strict majority",
    "best_vs_rest": "the consensus-best response against each other response",
    "best_vs_worst": "the consensus-best response against the consensus-worst response",
}


def _alpha(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def dataset_card(
    *,
    campaign: str,
    kind: str,
    file_format: str,
    filters: Mapping[str, Any],
    files: Sequence[Mapping[str, Any]],
    language_pairs: Sequence[Mapping[str, Any]],
    agreement: float | None,
    quality: Mapping[str, Any] | None = None,
) -> str:
    languages = sorted({str(row["prompt_language"]) for row in language_pairs}
                       | {str(row["response_language"]) for row in language_pairs})
    loader = "json" if file_format == "jsonl" else "parquet"
    data_files = ", ".join(f'"{f["name"].rsplit(".", 1)[0]}": "{f["name"]}"' for f in files)
    lines = [
        "---",
        "language:",
        *[f"- {code}" for code in languages],
        "task_categories:",
        "- text-generation",
        f"pretty_name: {campaign} ({'preference pairs' if kind == 'preference' else 'SFT'})",
        "---",
        "",
        f"# {campaign}: {'cross-lingual preference pairs' if kind == 'preference' else 'consensus-best responses'}",
        "",
        "Exported by Crossfeed from native speakers' rankings of cross-lingual LLM responses (instruction in one "
        "language, responses in another).",
        "",
        "## How the rows were made",
        "",
    ]
    if kind == "preference":
        lines += [
            f"- Pairs: {PAIR_RULES[str(filters['pairs'])]} (mode `{filters['pairs']}`).",
            "- Votes: for responses i and j, each judgment that ranks i above j is a vote for i; ties vote for "
            "neither. `votes_for` / `votes_against` on every row.",
            "- A pair is kept when `votes_for > votes_against` and the margin (for − against) / (for + against + "
            f"tied) is at least {filters['min_agreement']}.",
            "- Consensus order: Borda count (net pairwise votes), ties broken by head-to-head majority, then fewer "
            "wrong-language flags; responses still tied are all paired (best and worst are groups), never picked by "
            "response id. Ties (judgments ranking the two equal) count against the margin: tied = n_judgments − "
            "votes_for − votes_against.",
            "- A response flagged *wrong language* by a majority of its judgments is never `chosen`.",
        ]
    else:
        lines += ["- One row per item: the consensus-best response (Borda) that a majority did not flag as "
                  "*wrong language*, as a user/assistant conversation."]
    lines += [
        f"- Items with at least {filters['min_judgments']} judgments"
        + (f"; response languages: {', '.join(filters['languages'])}" if filters.get("languages") else "") + ".",
        f"- Split by hashing the (pivot) instruction with seed {filters['seed']}: {filters['test_fraction']:.0%} "
        "test; translations of one instruction never straddle the split.",
        "",
        *_quality_lines(quality or {}, kind),
        "## Files",
        "",
        "| file | rows | sha256 |",
        "| --- | ---: | --- |",
        *[f"| {f['name']} | {f['rows']} | `{f['sha256']}` |" for f in files],
        "",
        "```python",
        "from datasets import load_dataset",
        f'dataset = load_dataset("{loader}", data_files={{{data_files}}})',
        "```",
        "",
        "## Language pairs",
        "",
        f"Inter-annotator agreement over the whole export (Krippendorff's alpha, ordinal): {_alpha(agreement)}.",
        "",
        "| prompt | response | items | rows | train | test | alpha |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        *[
            f"| {row['prompt_language']} | {row['response_language']} | {row['items']} | {row['rows']} | "
            f"{row['train']} | {row['test']} | {_alpha(row['agreement'])} |"
            for row in language_pairs
        ],
        "",
    ]
    return "\n".join(lines)


def _quality_lines(quality: Mapping[str, Any], kind: str) -> list[str]:
    """What the campaign's quality controls changed. Counts only: the card names no annotator (exclusions are listed
    by name in the export's record, for admins)."""
    rules = quality.get("exclusions") or []
    lines = ["## Quality control", "",
             "- Gold and qualification items (checks of the annotators, with known answers) are never exported."]
    if rules:
        by_admin = [rule for rule in rules if rule["source"] == "admin"]
        by_gold = [rule for rule in rules if rule["source"] == "gold"]
        lines.append(
            f"- Exclusions applied: {len(by_admin)} by an admin (all of an annotator's judgments, or those from a "
            f"date on), {len(by_gold)} by failed gold checks (an annotator's judgments of one language pair); "
            f"{sum(rule['judgments'] for rule in rules)} judgment(s) left out."
        )
    else:
        lines.append("- Exclusions applied: none.")
    if quality.get("adjudicated"):
        lines.append(f"- {quality['adjudicated']} item(s) were adjudicated: a reviewer's final ranking decided "
                     + ("their pairs" if kind == "preference" else "their best response")
                     + " instead of the consensus (no min_agreement; votes columns still show the annotators').")
    if quality.get("weights"):
        lines.append("- `weight`: the pair's vote margin with each annotator counted by their reliability in the "
                     "language pair (one-coin Dawid-Skene over their pairwise choices), in [0, 1]; 1 for "
                     "adjudicated items.")
    return [*lines, ""]
