"""Campaign statistics for admins: progress and inter-annotator agreement per language pair."""

from __future__ import annotations

from collections import defaultdict

from annotation.export.agreement import alpha_for_items
from annotation.export.pairs import ItemJudgment
from annotation.models import Campaign
from annotation.selectors import judgments_by_item, language_pair_rows


def _item_judgments(rows) -> list[ItemJudgment]:
    return [ItemJudgment.from_stored(annotator_id, ranks, flags) for annotator_id, ranks, flags in rows]


def campaign_stats(campaign: Campaign) -> dict:
    by_pair: dict[tuple[str, str], list[list[ItemJudgment]]] = defaultdict(list)
    for pair, rows in judgments_by_item(campaign):
        if len(rows) >= 2:  # agreement needs at least two annotators on an item
            by_pair[pair].append(_item_judgments(rows))
    pairs = []
    for row in language_pair_rows(campaign):
        key = (row["prompt_language"], row["response_language"])
        pairs.append({**row, "agreement": alpha_for_items(by_pair.get(key, []))})
    every_item = [item for items in by_pair.values() for item in items]
    return {
        "campaign": campaign.id,
        "items": sum(row["items"] for row in pairs),
        "judgments": sum(row["judgments"] for row in pairs),
        "complete_items": sum(row["complete_items"] for row in pairs),
        "agreement": alpha_for_items(every_item),
        "language_pairs": pairs,
    }
