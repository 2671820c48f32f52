"""Text metrics as pure functions: lists of strings in, one number out, every score on sacrebleu's 0–100 scale.

- BLEU and chrF++ are corpus-level (n-gram statistics pooled over all pairs), as sacrebleu computes them.
- spBLEU is BLEU over FLORES-200 SentencePiece pieces. It needs the SentencePiece model file on disk, passed as
  ``spm_model_path``: sacrebleu 2.6's own ``flores200`` tokenizer downloads the model into ``~/.sacrebleu`` when it
  is missing, and nothing may be downloaded at run time, so we never construct it. We split with the given model
  exactly as it does (``" ".join(EncodeAsPieces(line))``) and score with ``tokenize="none"``.
- ROUGE-L is the mean of per-pair F1 (as XL-Sum reports it), with our own tokenizer: rouge-score's default one
  keeps only ``[a-z0-9]`` and scores every Arabic, Chinese or Tamil pair 0.
"""

from __future__ import annotations

import importlib.util
import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from .langid import script_of

# sacrebleu tokenizer names that mean "SentencePiece": all of them download their model when it is missing.
SPM_TOKENIZERS = frozenset({"spm", "flores101", "flores200", "spBLEU-1K"})

# Scripts written without spaces between words: BLEU over whitespace tokens would compare whole sentences.
_UNSPACED_SCRIPTS = frozenset({"Thai", "Laoo", "Khmr", "Mymr", "Tibt"})

# Code points ROUGE-L treats one character per token, because their scripts do not separate words by spaces:
# Han (with radicals, 々 and the compatibility and extension blocks), Hiragana, Katakana, Thai, Lao, Tibetan,
# Myanmar, Khmer. Hangul is not here: Korean separates words with spaces.
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x0F00, 0x0FFF),  # Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x19E0, 0x19FF),  # Khmer symbols
    (0x2E80, 0x2FDF),  # CJK and Kangxi radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA9E0, 0xA9FF),  # Myanmar extended-B
    (0xAA60, 0xAA7F),  # Myanmar extended-A
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # halfwidth Katakana
    (0x20000, 0x3134F),  # CJK extensions B–G
)
# Format characters that sit inside words: the zero-width non-joiner of Persian "می‌خواهم" and the joiner of Indic
# conjuncts must not split a word in two.
_WORD_INTERNAL_FORMAT = frozenset({"\u200c", "\u200d"})


def _check_pairs(hypotheses: Sequence[object], references: Sequence[object]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references: pass one reference per hypothesis."
        )
    if not hypotheses:
        raise ValueError("Nothing to score: the hypothesis list is empty.")


def _ja_mecab_installed() -> bool:
    return importlib.util.find_spec("MeCab") is not None and importlib.util.find_spec("ipadic") is not None


def bleu_tokenizer_for(
    language: str, *, script: str | None = None, spm_model_path: str | os.PathLike[str] | None = None
) -> str:
    """The sacrebleu tokenizer BLEU should use for a language (BCP-47 code; ISO 15924 `script` overrides ours).

    'flores200' (spBLEU) when a local SentencePiece model is given; 'zh' for Chinese (splits Han characters);
    'ja-mecab' for Japanese when MeCab and ipadic are installed, else 'char'; 'char' for scripts written without
    spaces (Thai, Lao, Khmer, Myanmar, Tibetan); '13a' otherwise, Korean included (it separates words by spaces).
    """
    if spm_model_path is not None:
        return "flores200"
    expected_script = script_of(language, script)
    if expected_script == "Hani":
        return "zh"
    if expected_script == "Jpan":
        return "ja-mecab" if _ja_mecab_installed() else "char"
    if expected_script in _UNSPACED_SCRIPTS:
        return "char"
    return "13a"


def _sentencepiece_split(lines: Sequence[str], model_path: Path) -> list[str]:
    try:
        import sentencepiece
    except ImportError as error:
        raise ImportError(
            "spBLEU needs the sentencepiece package, which is not installed: `pip install sentencepiece`, "
            "or score with a word tokenizer (leave spm_model_path unset)."
        ) from error
    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
    # sacrebleu strips trailing whitespace before tokenizing; do the same so scores match its flores200 ones.
    return [" ".join(processor.encode(line.rstrip(), out_type=str)) for line in lines]


def bleu(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    language: str | None = None,
    tokenize: str | None = None,
    spm_model_path: str | os.PathLike[str] | None = None,
) -> float:
    """Corpus BLEU (0–100), one reference per hypothesis.

    The tokenizer is `tokenize` if given, else chosen by `bleu_tokenizer_for(language)`. spBLEU ('flores200' and
    the other SentencePiece names) needs `spm_model_path`, a local model file; it is never downloaded.
    """
    _check_pairs(hypotheses, references)
    chosen = tokenize or bleu_tokenizer_for(language or "", spm_model_path=spm_model_path)
    if chosen in SPM_TOKENIZERS:
        if spm_model_path is None:
            raise ValueError(
                f"BLEU tokenizer {chosen!r} needs a SentencePiece model on disk: pass spm_model_path= (for spBLEU, "
                "the FLORES-200 model). sacrebleu would download it at run time, which Crossfeed never does."
            )
        model_path = Path(spm_model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"SentencePiece model not found at {model_path}: spBLEU needs the file locally.")
        hypotheses = _sentencepiece_split(hypotheses, model_path)
        references = _sentencepiece_split(references, model_path)
        chosen = "none"
    elif spm_model_path is not None:
        raise ValueError(f"spm_model_path is only used by SentencePiece tokenizers, not by {chosen!r}.")
    elif chosen not in BLEU.TOKENIZERS:
        raise ValueError(f"Unknown BLEU tokenizer {chosen!r}; sacrebleu knows {sorted(BLEU.TOKENIZERS)}.")
    return float(BLEU(tokenize=chosen).corpus_score(list(hypotheses), [list(references)]).score)


def chrf_pp(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF++ (0–100): character 6-grams plus word uni- and bigrams, recall weighted twice (beta 2)."""
    _check_pairs(hypotheses, references)
    return float(CHRF(word_order=2).corpus_score(list(hypotheses), [list(references)]).score)


def _unspaced(char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in _UNSPACED_RANGES)


def rouge_tokenize(text: str) -> list[str]:
    """Tokens for ROUGE in any script: NFKC, case-folded; words split on whitespace, punctuation and symbols, and
    one token per character (with its combining marks) in Han, Kana, Thai, Lao, Khmer, Myanmar and Tibetan."""
    tokens: list[str] = []
    word: list[str] = []
    after_unspaced = False  # a combining mark right after an unspaced character belongs to that character

    def end_word() -> None:
        if word:
            tokens.append("".join(word))
            word.clear()

    for char in unicodedata.normalize("NFKC", text).casefold():
        category = unicodedata.category(char)
        if category[0] == "M" or (char in _WORD_INTERNAL_FORMAT and (word or after_unspaced)):
            if after_unspaced:
                tokens[-1] += char
            elif word:
                word.append(char)
            continue
        after_unspaced = False
        if category[0] in "LN":
            if _unspaced(char):
                end_word()
                tokens.append(char)
                after_unspaced = True
            else:
                word.append(char)
        else:
            end_word()
    end_word()
    return tokens


class _AnyScriptTokenizer:
    """The object rouge-score expects: anything with a `tokenize(text)` method."""

    def tokenize(self, text: str) -> list[str]:
        return rouge_tokenize(text)


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F1 over pairs (0–100), tokenized by `rouge_tokenize`; no stemming (it is English-only)."""
    _check_pairs(hypotheses, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_AnyScriptTokenizer())
    total = sum(
        scorer.score(reference, hypothesis)["rougeL"].fmeasure
        for hypothesis, reference in zip(hypotheses, references, strict=True)
    )
    return 100 * total / len(hypotheses)


def accuracy(predictions: Sequence[object], references: Sequence[object]) -> float:
    """Percentage of predictions equal to their reference label (0–100). Normalise labels before calling."""
    _check_pairs(predictions, references)
    correct = sum(prediction == reference for prediction, reference in zip(predictions, references, strict=True))
    return 100 * correct / len(predictions)
