"""Evaluation metrics as pure functions (no Django): lists of strings in, numbers out."""

from .langid import (
    Detection,
    OffTargetRate,
    coverage,
    detect,
    dominant_script,
    identifiable_languages,
    is_off_target,
    off_target_rate,
    script_of,
)
from .summary import Summary, summarize
from .text import accuracy, bleu, bleu_tokenizer_for, chrf_pp, rouge_l, rouge_tokenize

__all__ = [
    "Detection",
    "OffTargetRate",
    "Summary",
    "accuracy",
    "bleu",
    "bleu_tokenizer_for",
    "chrf_pp",
    "coverage",
    "detect",
    "dominant_script",
    "identifiable_languages",
    "is_off_target",
    "off_target_rate",
    "rouge_l",
    "rouge_tokenize",
    "script_of",
    "summarize",
]
