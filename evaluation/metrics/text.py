"""Text metrics as pure functions: lists of strings in, a number out, every score on sacrebleu's 0–100 scale.

Each metric also has a ``*_score`` form that returns a `Scored`: the value, and the settings needed to reproduce
it (for BLEU and chrF++ sacrebleu's own signature string), which Crossfeed stores with every result.

- BLEU and chrF++ are corpus-level (n-gram statistics pooled over all pairs), as sacrebleu computes them. BLEU's
  tokenizer is sacrebleu's recommended one for the target language (`bleu_tokenizer_for`): ``zh`` for Chinese,
  ``ja-mecab`` (MeCab + IPAdic) for Japanese, ``ko-mecab`` (MeCab-ko + mecab-ko-dic) for Korean, ``13a`` for the
  rest; Thai is word-segmented with pythainlp's ``newmm`` first (sacrebleu has no Thai tokenizer and ``13a`` would
  see whole clauses as one word); Lao, Khmer, Burmese and Tibetan, which have neither spaces nor a tokenizer in
  sacrebleu, per character (``char``). Use spBLEU for numbers comparable across all of them.
- spBLEU is BLEU over the FLORES-200 SentencePiece pieces (sacrebleu's ``flores200`` tokenizer). sacrebleu
  downloads that model into ``~/.sacrebleu`` when it is missing and nothing may be downloaded at run time, so we
  never let it: the model file is passed in (``spm_model_path``) and split exactly as sacrebleu does
  (``" ".join(EncodeAsPieces(line.rstrip()))``); the signature says ``tok:flores200``.
- ROUGE-L is XL-Sum's (evaluation/metrics/rouge_xlsum.py): per-language word segmentation and stemming as its
  multilingual scorer does them, LCS F1 per pair, averaged over pairs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sacrebleu.metrics import BLEU, CHRF

from .langid import script_of
from .rouge_xlsum import XLSumTokenizer, rouge_settings, xlsum_language

# sacrebleu tokenizer names that mean "SentencePiece": all of them download their model when it is missing.
SPM_TOKENIZERS = frozenset({"spm", "flores101", "flores200", "spBLEU-1K"})
# Ours, not sacrebleu's: pythainlp newmm word segmentation, then 13a.
THAI_TOKENIZER = "th-newmm"

# Scripts written without spaces between words, which sacrebleu has no word tokenizer for: scored per character.
_CHARACTER_SCRIPTS = frozenset({"Laoo", "Khmr", "Mymr", "Tibt"})


@dataclass(frozen=True)
class Scored:
    """A metric's value (0–100) and how it was computed: `settings` has a "signature" for sacrebleu metrics."""

    value: float
    settings: dict[str, Any] = field(default_factory=dict)


def _check_pairs(hypotheses: Sequence[object], references: Sequence[object]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references: pass one reference per hypothesis."
        )
    if not hypotheses:
        raise ValueError("Nothing to score: the hypothesis list is empty.")


def bleu_tokenizer_for(
    language: str, *, script: str | None = None, spm_model_path: str | os.PathLike[str] | None = None
) -> str:
    """The tokenizer BLEU uses for a language (BCP-47 code; ISO 15924 `script` overrides ours).

    'flores200' (spBLEU) when a local SentencePiece model is given; 'zh' for Chinese, 'ja-mecab' for Japanese,
    'ko-mecab' for Korean (sacrebleu's own choice for these three); 'th-newmm' for Thai; 'char' for Lao, Khmer,
    Burmese and Tibetan; '13a' otherwise.
    """
    if spm_model_path is not None:
        return "flores200"
    expected_script = script_of(language, script)
    if expected_script == "Hani":
        return "zh"
    if expected_script == "Jpan":
        return "ja-mecab"
    if expected_script in ("Kore", "Hang"):
        return "ko-mecab"
    if expected_script == "Thai":
        return THAI_TOKENIZER
    if expected_script in _CHARACTER_SCRIPTS:
        return "char"
    return "13a"


class _SentencePieceTokenizer:
    """sacrebleu's TokenizerSPM with a model we point at, never one it downloads; same split, same signature."""

    def __init__(self, model_path: Path, name: str) -> None:
        import sentencepiece

        self.processor = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
        self.name = "flores200" if name == "flores200" else name

    def signature(self) -> str:
        return self.name

    def __call__(self, line: str) -> str:
        return " ".join(self.processor.EncodeAsPieces(line))


class _ThaiTokenizer:
    """pythainlp's newmm words joined by spaces, then sacrebleu's 13a (which splits off punctuation)."""

    def __init__(self) -> None:
        from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

        os.environ.setdefault("PYTHAINLP_READ_ONLY", "1")  # newmm's dictionary ships in the wheel
        os.environ.setdefault("PYTHAINLP_OFFLINE", "1")
        from pythainlp.tokenize import word_tokenize

        self.segment = word_tokenize
        self.then = Tokenizer13a()

    def signature(self) -> str:
        return f"pythainlp-{version('pythainlp')}-newmm+13a"

    def __call__(self, line: str) -> str:
        return self.then(" ".join(self.segment(line, engine="newmm", keep_whitespace=False)))


@cache
def _spm_tokenizer(model_path: Path, name: str) -> _SentencePieceTokenizer:
    return _SentencePieceTokenizer(model_path, name)


def _bleu_metric(chosen: str, spm_model_path: str | os.PathLike[str] | None) -> BLEU:
    if chosen in SPM_TOKENIZERS:
        if spm_model_path is None:
            raise ValueError(
                f"BLEU tokenizer {chosen!r} needs a SentencePiece model on disk: pass spm_model_path= (for spBLEU, "
                "the FLORES-200 model). sacrebleu would download it at run time, which Crossfeed never does."
            )
        model_path = Path(spm_model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"SentencePiece model not found at {model_path}: spBLEU needs the file locally.")
        metric = BLEU(tokenize="none")
        # Replaces the tokenizer sacrebleu built: BLEU tokenizes every segment with `self.tokenizer` and writes
        # `tokenizer_signature` into its signature (sacrebleu is pinned; a test compares with its flores200).
        metric.tokenizer = _spm_tokenizer(model_path.resolve(), chosen)
        metric.tokenizer_signature = metric.tokenizer.signature()
        return metric
    if spm_model_path is not None:
        raise ValueError(f"spm_model_path is only used by SentencePiece tokenizers, not by {chosen!r}.")
    if chosen == THAI_TOKENIZER:
        metric = BLEU(tokenize="none")
        metric.tokenizer = _ThaiTokenizer()
        metric.tokenizer_signature = metric.tokenizer.signature()
        return metric
    if chosen not in BLEU.TOKENIZERS:
        raise ValueError(
            f"Unknown BLEU tokenizer {chosen!r}; sacrebleu knows {sorted(BLEU.TOKENIZERS)}, and Crossfeed adds "
            f"{THAI_TOKENIZER!r}."
        )
    try:
        return BLEU(tokenize=chosen)
    except RuntimeError as error:  # sacrebleu's message when MeCab or its dictionary is missing
        raise RuntimeError(
            f"BLEU tokenizer {chosen!r} needs MeCab and its dictionary, pinned in Crossfeed's dependencies "
            "(mecab-python3 + ipadic for ja-mecab, mecab-ko + mecab-ko-dic for ko-mecab): run `make install`."
        ) from error


def bleu_score(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    language: str | None = None,
    script: str | None = None,
    tokenize: str | None = None,
    spm_model_path: str | os.PathLike[str] | None = None,
) -> Scored:
    """Corpus BLEU (0–100), one reference per hypothesis, with sacrebleu's signature in the settings.

    The tokenizer is `tokenize` if given, else `bleu_tokenizer_for(language, script=script)`. spBLEU ('flores200'
    and the other SentencePiece names) needs `spm_model_path`, a local model file; it is never downloaded.
    """
    _check_pairs(hypotheses, references)
    chosen = tokenize or bleu_tokenizer_for(language or "", script=script, spm_model_path=spm_model_path)
    metric = _bleu_metric(chosen, spm_model_path)
    value = float(metric.corpus_score(list(hypotheses), [list(references)]).score)
    settings: dict[str, Any] = {"signature": str(metric.get_signature()), "tokenizer": chosen}
    if chosen in SPM_TOKENIZERS:
        settings["spm_model"] = Path(spm_model_path).name  # type: ignore[arg-type]
    return Scored(value, settings)


def bleu(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    language: str | None = None,
    tokenize: str | None = None,
    spm_model_path: str | os.PathLike[str] | None = None,
) -> float:
    """Corpus BLEU (0–100); see `bleu_score`."""
    return bleu_score(hypotheses, references, language=language, tokenize=tokenize,
                      spm_model_path=spm_model_path).value


def chrf_pp_score(hypotheses: Sequence[str], references: Sequence[str]) -> Scored:
    """Corpus chrF++ (0–100): character 6-grams plus word uni- and bigrams, recall weighted twice (beta 2)."""
    _check_pairs(hypotheses, references)
    metric = CHRF(word_order=2)
    value = float(metric.corpus_score(list(hypotheses), [list(references)]).score)
    return Scored(value, {"signature": str(metric.get_signature())})


def chrf_pp(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF++ (0–100); see `chrf_pp_score`."""
    return chrf_pp_score(hypotheses, references).value


def rouge_l_score(hypotheses: Sequence[str], references: Sequence[str], *, language: str | None = None) -> Scored:
    """Mean ROUGE-L F1 over pairs (0–100) as XL-Sum's scorer computes it for `language` (BCP-47 code).

    A language XL-Sum's scorer has no name for is treated as it treats an unknown name: no segmenter, no stemmer.
    """
    _check_pairs(hypotheses, references)
    name = xlsum_language(language) if language else None
    # Imported here: rouge_score imports NLTK, which imports scikit-learn, SciPy and pandas (3 s), and this module is
    # imported by every Django process through the evaluation app's forms and services.
    from rouge_score import rouge_scorer

    # One tokenizer for the corpus, reference before hypothesis in each pair: XL-Sum's order (see rouge_xlsum).
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=XLSumTokenizer(name, stem=True))
    total = sum(
        scorer.score(reference, hypothesis)["rougeL"].fmeasure
        for hypothesis, reference in zip(hypotheses, references, strict=True)
    )
    return Scored(100 * total / len(hypotheses), rouge_settings(name))


def rouge_l(hypotheses: Sequence[str], references: Sequence[str], *, language: str | None = None) -> float:
    """Mean ROUGE-L F1 over pairs (0–100); see `rouge_l_score`."""
    return rouge_l_score(hypotheses, references, language=language).value


def accuracy(predictions: Sequence[object], references: Sequence[object]) -> float:
    """Percentage of predictions equal to their reference label (0–100). Normalise labels before calling."""
    _check_pairs(predictions, references)
    correct = sum(prediction == reference for prediction, reference in zip(predictions, references, strict=True))
    return 100 * correct / len(predictions)
