"""Evaluation metrics as pure functions (no Django): lists of strings in, numbers out."""

from .langid import (
    Detection,
    OffTargetRate,
    Verdict,
    coverage,
    detect,
    dominant_script,
    han_variant,
    identifiable_languages,
    is_off_target,
    judge,
    off_target_rate,
    script_of,
)
from .rouge_xlsum import xlsum_language, xlsum_tokenize
from .summary import Summary, summarize
from .text import (
    Scored,
    accuracy,
    bleu,
    bleu_score,
    bleu_tokenizer_for,
    chrf_pp,
    chrf_pp_score,
    rouge_l,
    rouge_l_score,
)

__all__ = [
    "Detection",
    "OffTargetRate",
    "Scored",
    "Summary",
    "Verdict",
    "accuracy",
    "bleu",
    "bleu_score",
    "bleu_tokenizer_for",
    "chrf_pp",
    "chrf_pp_score",
    "coverage",
    "detect",
    "dominant_script",
    "han_variant",
    "identifiable_languages",
    "is_off_target",
    "judge",
    "off_target_rate",
    "rouge_l",
    "rouge_l_score",
    "script_of",
    "summarize",
    "xlsum_language",
    "xlsum_tokenize",
]
