"""Rows of the exported datasets, built from one item at a time (pure: no Django).

Preference rows follow TRL's conversational preference format (prompt / chosen / rejected as message lists) plus
our metadata columns; SFT rows are TRL's conversational language-modelling format (`messages`). The columns and
their order are fixed here, for the JSONL and the Parquet writers alike.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from annotation.export.adjudicated import adjudicated_best
from annotation.export.pairs import ItemJudgment, Preference, consensus_best

PREFERENCE_COLUMNS = (
    "prompt", "chosen", "rejected", "prompt_language", "response_language", "item", "chosen_model", "rejected_model",
    "votes_for", "votes_against", "n_judgments", "split",
)
SFT_COLUMNS = ("messages", "prompt_language", "response_language", "item", "model", "n_judgments", "split")
SPLITS = ("train", "test")


@dataclass(frozen=True, slots=True)
class ExportItem:
    """What the export needs of one item: its texts and the judgments as of the snapshot."""

    external_id: str
    prompt_text: str
    prompt_language: str
    pivot_text: str
    response_language: str
    responses: Mapping[int, tuple[str, str]]  # response id -> (text, model)
    judgments: Sequence[ItemJudgment]
    # A reviewer's final ranking (response id -> rank) and the responses they marked wrong-language; when set, it
    # decides instead of the consensus (annotation/export/adjudicated.py).
    final_ranks: Mapping[int, int] | None = None
    wrong_language: tuple[int, ...] = ()


def split_key(item: ExportItem) -> str:
    """The text that decides an item's split: the pivot when there is one, else the prompt, normalised.

    Translations of one instruction share the pivot, so they land on the same side: no instruction is seen in
    training and tested on in another language.
    """
    text = item.pivot_text or item.prompt_text
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip().casefold()


def split_of(key: str, *, test_fraction: float, seed: int) -> str:
    """Deterministic split by hashing: the same key, fraction and seed always give the same side."""
    if test_fraction <= 0:
        return "train"
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    # The first 8 bytes as a number in [0, 1): 2**64 equally likely values, so the test share is test_fraction.
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def preference_rows(item: ExportItem, preferences: Sequence[Preference], split: str) -> list[dict]:
    # One list object per message, shared by the item's rows: the JSONL writer encodes each shared list once.
    prompt = [{"role": "user", "content": item.prompt_text}]
    replies = {response_id: [{"role": "assistant", "content": text}]
               for response_id, (text, _model) in item.responses.items()}
    rows = []
    for preference in preferences:
        chosen_model = item.responses[preference.chosen][1]
        rejected_model = item.responses[preference.rejected][1]
        rows.append({
            "prompt": prompt,
            "chosen": replies[preference.chosen],
            "rejected": replies[preference.rejected],
            "prompt_language": item.prompt_language,
            "response_language": item.response_language,
            "item": item.external_id,
            "chosen_model": chosen_model,
            "rejected_model": rejected_model,
            "votes_for": preference.votes_for,
            "votes_against": preference.votes_against,
            "n_judgments": preference.n_judgments,
            "split": split,
        })
    return rows


def sft_row(item: ExportItem, split: str, *, min_judgments: int) -> dict | None:
    """The consensus-best response as a two-message conversation; None when the item gives no target."""
    if len(item.judgments) < min_judgments:
        return None
    if item.final_ranks is not None:
        best = adjudicated_best(sorted(item.responses), item.final_ranks, item.wrong_language, item.judgments)
    else:
        best = consensus_best(sorted(item.responses), item.judgments)
    if best is None:
        return None
    text, model = item.responses[best]
    return {
        "messages": [{"role": "user", "content": item.prompt_text}, {"role": "assistant", "content": text}],
        "prompt_language": item.prompt_language,
        "response_language": item.response_language,
        "item": item.external_id,
        "model": model,
        "n_judgments": len(item.judgments),
        "split": split,
    }
