"""XL-Sum: summarise a news article in its own language.

Layout (as released): one JSONL file per language and split, named by XL-Sum's language name, e.g.
`swahili_test.jsonl`, with objects `{"id", "url", "title", "summary", "text"}`; we need `text` and `summary`. The
files may sit in the data root or in a folder per language (`swahili/swahili_test.jsonl`); `manage.py
fetch_benchmarks` writes them from csebuetnlp/xlsum. A run takes the first 250 articles of the file, as the seed's
evaluation does, or the first `limit`.

Articles are loaded whole. One too long for the model's context loses its END (`fit_messages`, base.py), never the
instruction or the article's opening: XL-Sum's reference models read the first 512 tokens of an article, and a
news article puts what a summary needs first.
"""

from __future__ import annotations

from pathlib import Path

from annotation.languages import get_language
from evaluation import prompts

from .base import Benchmark, Example, first, language_name, read_jsonl, require_file, text_field

# XL-Sum's language names -> our codes. Kirundi, Nigerian Pidgin and Serbian in Latin script are in XL-Sum but
# not in our registry; their files are ignored.
XLSUM_NAMES = {
    "amharic": "am", "arabic": "ar", "azerbaijani": "az", "bengali": "bn", "burmese": "my",
    "chinese_simplified": "zh-Hans", "chinese_traditional": "zh-Hant", "english": "en", "french": "fr",
    "gujarati": "gu", "hausa": "ha", "hindi": "hi", "igbo": "ig", "indonesian": "id", "japanese": "ja",
    "korean": "ko", "kyrgyz": "ky", "marathi": "mr", "nepali": "ne", "oromo": "om", "pashto": "ps",
    "persian": "fa", "portuguese": "pt", "punjabi": "pa", "russian": "ru", "scottish_gaelic": "gd",
    "serbian_cyrillic": "sr", "sinhala": "si", "somali": "so", "spanish": "es", "swahili": "sw", "tamil": "ta",
    "telugu": "te", "thai": "th", "tigrinya": "ti", "turkish": "tr", "ukrainian": "uk", "urdu": "ur",
    "uzbek": "uz", "vietnamese": "vi", "welsh": "cy", "yoruba": "yo",
}  # fmt: skip
CODE_TO_NAME = {code: name for name, code in XLSUM_NAMES.items()}
SPLIT = "test"


class XLSum(Benchmark):
    name = "xlsum"
    title = "XL-Sum, test split"
    task = "summarization"
    metrics = ("rouge_l", "off_target_rate")
    primary_metric = "rouge_l"
    dataset = "xlsum"
    layout = '<xlsum name>_test.jsonl (e.g. swahili_test.jsonl), objects with "text" and "summary"'
    default_limit = 250  # the seed: the first 250 test articles
    document_field = "input"  # the article

    def _path(self, root: Path, code: str) -> Path:
        name = CODE_TO_NAME.get(code, code)
        flat = root / f"{name}_{SPLIT}.jsonl"
        nested = root / name / f"{name}_{SPLIT}.jsonl"
        return nested if not flat.is_file() and nested.is_file() else flat

    def languages(self, root: Path) -> list[str]:
        return sorted(code for code in CODE_TO_NAME if get_language(code) and self._path(root, code).is_file())

    def load(self, root: Path, language: str, *, limit: int | None = None) -> list[Example]:
        path = require_file(self._path(root, language), f"the XL-Sum {SPLIT} file of {language_name(language)}")
        examples = []
        for line, value in read_jsonl(path):
            text, summary = text_field(path, line, value, "text"), text_field(path, line, value, "summary")
            example_id = value.get("id")
            examples.append(Example(id=str(example_id) if example_id else f"line-{line}", language=language,
                                    input=text, expected_language=language, reference=summary))
        return first(examples, self.limit_for(limit))

    def messages(self, example: Example) -> list[dict[str, str]]:
        return prompts.summarization(text=example.input, language=language_name(example.language))
