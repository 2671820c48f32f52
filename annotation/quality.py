"""The quality view's numbers, read live from the judgments: per language pair the pairs an export would give,
agreement, judgments per annotator; per response language and model the wrong-language rate."""

from __future__ import annotations

from collections import Counter, defaultdict

from annotation.export.agreement import AlphaAccumulator, annotator_agreement
from annotation.export.pairs import WRONG_LANGUAGE, ItemJudgment, derive_pairs
from annotation.models import Campaign, Response
from annotation.selectors import judgments_by_item_with_ids


def campaign_quality(campaign: Campaign, *, min_judgments: int = 2) -> dict:
    models = dict(Response.objects.filter(item__campaign=campaign).values_list("id", "model_name"))
    pairs: dict[tuple[str, str], dict] = defaultdict(
        lambda: {"items": 0, "judgments": 0, "pairs": 0, "alpha": AlphaAccumulator(), "annotators": Counter()}
    )
    flagged: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])  # (language, model) -> [flags, seen]
    all_items: list[list[ItemJudgment]] = []
    for (prompt_language, response_language), response_ids, rows in judgments_by_item_with_ids(campaign):
        judgments = [ItemJudgment.from_stored(annotator, ranks, flags) for annotator, ranks, flags in rows]
        pair = pairs[(prompt_language, response_language)]
        pair["items"] += 1
        pair["judgments"] += len(judgments)
        pair["annotators"].update(judgment.annotator_id for judgment in judgments)
        pair["alpha"].add(judgments)
        pair["pairs"] += len(derive_pairs(response_ids, judgments, mode="all", min_judgments=min_judgments))
        for judgment in judgments:
            for response_id in response_ids:
                counts = flagged[(response_language, models.get(response_id, ""))]
                counts[1] += 1
                counts[0] += WRONG_LANGUAGE in judgment.flags.get(response_id, ())
        all_items.append(judgments)
    agreement = annotator_agreement(all_items)
    return {
        "language_pairs": [
            {
                "prompt_language": key[0], "response_language": key[1], "items": value["items"],
                "judgments": value["judgments"], "pairs": value["pairs"], "agreement": value["alpha"].alpha(),
                "judgments_per_annotator": dict(sorted(value["annotators"].items())),
            }
            for key, value in sorted(pairs.items())
        ],
        "wrong_language": [
            {"response_language": language, "model": model, "flags": counts[0], "judged": counts[1],
             "rate": counts[0] / counts[1] if counts[1] else None}
            for (language, model), counts in sorted(flagged.items())
        ],
        "annotators": {annotator: {"items": value.n_items, "agreement": value.agreement}
                       for annotator, value in sorted(agreement.items())},
    }
