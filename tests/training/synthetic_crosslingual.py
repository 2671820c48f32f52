"""A synthetic cross-lingual preference task that the evaluation's language identifier can judge.

Every item asks, in English, for an answer in Swahili, French or German (Latin-script languages, so only language
identification, not the script, tells them from English). Its two responses are both declared in the requested
language, as an import requires: one is a short real sentence in that language, the other a short real English
sentence, the off-target failure the paper measures. Questions are English word salads drawn by a seeded
generator, so the only learnable signal is the one we mean: the requested language versus English.

Each sentence is identified by py3langid as its language (test_it_learns checks this with
`evaluation.metrics.langid.judge`), so on-target and off-target answers are measurable.
"""

from __future__ import annotations

import random
import uuid

NAMES = {"sw": "Swahili", "fr": "French", "de": "German"}

SENTENCES = {
    "sw": [
        "Habari za asubuhi, rafiki yangu mpendwa.",
        "Watoto wanacheza mpira nje ya nyumba.",
        "Mvua kubwa imenyesha usiku wote jana.",
        "Ninapenda kusoma vitabu vya historia ya Afrika.",
        "Soko la samaki liko karibu na bahari.",
        "Mama yangu anapika chakula kitamu sana leo.",
        "Tutakutana kesho asubuhi katika ofisi yako.",
        "Walimu wanafundisha wanafunzi kwa bidii kubwa.",
    ],
    "fr": [
        "Bonjour, je suis très content de vous voir.",
        "Les enfants jouent dans le jardin ce matin.",
        "Il a plu toute la nuit sur la ville.",
        "Nous allons au marché avec nos amis demain.",
        "Elle lit un livre sur l'histoire de la France.",
        "Le repas était vraiment délicieux, merci beaucoup.",
        "Je voudrais une tasse de café, s'il vous plaît.",
        "La maison de mes parents est près de la mer.",
    ],
    "de": [
        "Guten Morgen, wie geht es dir heute?",
        "Die Kinder spielen im Garten hinter dem Haus.",
        "Es hat die ganze Nacht in der Stadt geregnet.",
        "Wir fahren morgen mit dem Zug nach Berlin.",
        "Ich lese gerade ein Buch über die Geschichte.",
        "Das Essen war wirklich sehr lecker, vielen Dank.",
        "Meine Schwester arbeitet in einem großen Krankenhaus.",
        "Kannst du mir bitte das Wasser geben?",
    ],
    "en": [
        "Good morning, I am very happy to see you.",
        "The children are playing in the garden today.",
        "It rained all night long in the city.",
        "We are going to the market with our friends.",
        "She is reading a book about the history of England.",
        "The dinner was really delicious, thank you very much.",
        "I would like a cup of coffee, please.",
        "My parents live in a small house near the sea.",
    ],
}

QUESTION_WORDS = (
    "what", "where", "when", "why", "how", "which", "river", "mountain", "city", "weather", "family", "friend",
    "school", "market", "book", "story", "song", "history", "food", "water", "music", "morning", "evening",
    "travel", "train", "garden", "house", "child", "teacher", "doctor", "village", "country", "language",
    "holiday", "season", "animal", "forest", "ocean", "color", "number", "letter", "word", "name", "work",
    "money", "price", "road", "bridge",
)


def synthetic_items(rng: random.Random, *, per_language: int) -> list[dict]:
    """Items in the import format: an English question naming the language, one on-target and one English reply."""
    items = []
    for language, name in NAMES.items():
        for number in range(per_language):
            question = " ".join(rng.sample(QUESTION_WORDS, rng.randint(3, 6)))
            responses = [
                {"text": rng.choice(SENTENCES[language]), "language": language, "model": "on-target"},
                {"text": rng.choice(SENTENCES["en"]), "language": language, "model": "off-target"},
            ]
            rng.shuffle(responses)  # the position of the good answer carries no signal
            items.append({
                "external_id": f"learns-{language}-{number:03d}",
                "prompt": {"text": f"Answer in {name}: {question.capitalize()}?", "language": "en"},
                "responses": responses,
            })
    return items


def corpus() -> list[str]:
    """Texts for the tiny model's tokenizer: every sentence, the question words and the language names."""
    return [*(s for sentences in SENTENCES.values() for s in sentences), " ".join(QUESTION_WORDS),
            *(f"Answer in {name}:" for name in NAMES.values())]


def judge_everything(campaign, annotators: dict[str, list]) -> None:
    """Every annotator of the item's language ranks the on-target response first and flags the English one
    `wrong_language`, through the annotation service an annotator's submission goes through."""
    from annotation.services.judgments import judgment_submit

    for item in campaign.items.prefetch_related("responses"):
        by_model = {response.model_name: response.id for response in item.responses.all()}
        ranks = {str(by_model["on-target"]): 1, str(by_model["off-target"]): 2}
        flags = {str(by_model["off-target"]): ["wrong_language"]}
        for user in annotators[item.response_language_id]:
            judgment_submit(annotator=user, item_id=item.id, ranks=ranks, flags=flags,
                            idempotency_key=uuid.uuid4().hex)
