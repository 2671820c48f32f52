"""Which guidelines an annotator reads: the campaign's guidelines translated into the language of the responses
they rank, or the campaign's own (default) guidelines where no translation exists.

The response language, not the interface language: an annotator ranks responses only in a language they speak
natively, so that is the language they read best, and it is known for every item, whereas many annotators keep the
interface in English. An annotator with several native languages gets one version per language, and the annotation
page shows the one of the item in front of them (static/js/annotate.js).
"""

from __future__ import annotations

from dataclasses import dataclass

from annotation.models import Campaign, CampaignGuideline


@dataclass(frozen=True)
class Guidelines:
    language: str | None  # the language of the text; None for the campaign's default guidelines
    text: str
    for_languages: tuple[str, ...]  # the response languages this version is shown for


def guidelines_for(*, campaign: Campaign, languages: list[str]) -> list[Guidelines]:
    """One entry per distinct text for the given response languages, in their order (at most one query)."""
    translated = {}
    if languages:
        translated = dict(CampaignGuideline.objects.filter(campaign=campaign, language_id__in=languages)
                          .values_list("language_id", "text"))
    versions: dict[str | None, list[str]] = {}
    for code in languages:
        versions.setdefault(code if code in translated else None, []).append(code)
    if not versions:
        versions[None] = []
    return [Guidelines(language=key, text=translated[key] if key else campaign.guidelines, for_languages=tuple(codes))
            for key, codes in versions.items()]
