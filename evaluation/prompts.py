"""Zero-shot prompts, all in one place.

Generated answers (FLORES, XL-Sum, open-ended, and the seed's classification format): each function returns chat
messages (one user turn); evaluation/inference.py renders them through the model's chat template, the one it was
trained with (training/scripts/chat_templates.py), with the assistant turn opened. Instructions are in English, as
in the paper's evaluation: the task is the same for every language, only the content changes; every prompt whose
answer is checked for its language names that language.

The long input (an article) comes before the instruction in the summarization prompt. When a prompt does not fit
the model's context, the article is cut from its end (benchmarks.base.fit_messages), as XL-Sum's own models read an
article (its first 512 tokens), so its opening and the instruction after it are kept.

XCOPA and PAWS-X are scored by default as lm-evaluation-harness scores them: plain text (no chat template), the
log-likelihood of each choice after the context, with lm-eval's own wording per language. The functions below
follow lm-eval's task definitions at commit 4e7e0d47 (2026-08-21): lm_eval/tasks/xcopa/utils.py with
default_<lang>.yaml (target_delimiter " "), and lm_eval/tasks/paws-x/paws_<lang>.yaml with pawsx_template_yaml
(empty context, target_delimiter "") and utils.process_docs_paraphrases for en, de, es, fr.
tests/evaluation/test_prompts_reference.py checks them against those definitions on the sample sets.
"""

from __future__ import annotations

import re

Messages = list[dict[str, str]]


def _user(content: str) -> Messages:
    return [{"role": "user", "content": content}]


def translation(*, text: str, source: str, target: str) -> Messages:
    return _user(
        f"Translate this {source} text into {target}. Give only the {target} translation, nothing else.\n\n{text}"
    )


def summarization(*, text: str, language: str) -> Messages:
    return _user(
        f"{text}\n\nWrite a summary of the {language} article above in one or two sentences. "
        f"Write the summary in {language}."
    )


def open_ended(*, instruction: str, input_text: str = "", response_language: str) -> Messages:
    """The instruction, then the language the answer is scored in: a cross-lingual prompt (an instruction in
    Swahili, the answer wanted in Tamil) would otherwise never say which language it wants."""
    body = f"{instruction}\n\n{input_text}" if input_text else instruction
    return _user(f"{body}\n\nWrite your answer in {response_language}.")


# --- XCOPA and PAWS-X as lm-evaluation-harness asks them (the default) -----------------------------------------------

# XCOPA: the premise without its final character (its full stop), then a word for "because" or "so", per language;
# each choice continues it, its first letter lowercased, after one space. Languages lm-eval has no words for get
# those of its English COPA task (lm_eval/tasks/super_glue/copa/utils.py).
XCOPA_CONNECTORS = {
    "et": ("sest", "seetõttu"), "ht": ("poukisa", "donk sa"), "id": ("karena", "maka"),
    "it": ("perché", "quindi"), "qu": ("imataq", "chaymi"), "sw": ("kwa sababu", "kwa hiyo"),
    "ta": ("காரணமாக", "எனவே"), "th": ("เพราะ", "ดังนั้น"), "tr": ("çünkü", "bu yüzden"),
    "vi": ("bởi vì", "vì vậy"), "zh-Hans": ("因为", "所以"),
}  # fmt: skip
ENGLISH_CONNECTORS = ("because", "therefore")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def xcopa_context(*, premise: str, question: str, language: str) -> str:
    cause, effect = XCOPA_CONNECTORS.get(language, ENGLISH_CONNECTORS)
    return f"{premise.strip()[:-1]} {cause if question == 'cause' else effect}"


def xcopa_choices(*, choice1: str, choice2: str) -> tuple[str, str]:
    return (f" {_lower_first(choice1)}", f" {_lower_first(choice2)}")


# PAWS-X: no context at all; each choice is the whole "sentence1, right? Yes/No, sentence2" in the language's own
# words, option 0 the "No" one (label 0: not a paraphrase).
PAWSX_WORDS = {  # language: (the tag question, yes, no)
    "en": ("right?", "Yes", "No"), "de": ("richtig?", "Ja", "Nein"), "es": ("verdad?", "Sí", "No"),
    "fr": ("n'est-ce pas?", "Oui", "Non"), "ja": ("ですね?", "はい", "いいえ"), "ko": ("맞죠?", "예", "아니요"),
    "zh-Hans": ("对吧?", "是", "不是"),
}  # fmt: skip
# lm-eval cleans the sentences of these languages (utils.process_docs_paraphrases), and only these.
PAWSX_CLEANED = ("en", "de", "es", "fr")
PAWSX_CONTEXT = ""


def _detokenize(text: str) -> str:
    """PAWS-X's tokenized spacing undone the way lm-eval's general_detokenize does it."""
    for spaced, joined in ((" n't", "n't"), (" )", ")"), ("( ", "("), ('" ', '"'), (' "', '"')):
        text = text.replace(spaced, joined)
    return re.sub(r" (['.,])", r"\1", text)


def pawsx_choices(*, sentence1: str, sentence2: str, language: str) -> tuple[str, str]:
    tag, yes, no = PAWSX_WORDS.get(language, PAWSX_WORDS["en"])
    if language in PAWSX_CLEANED:
        sentence1, sentence2 = _detokenize(sentence1).strip(), _detokenize(sentence2).strip()
        if sentence1.endswith((".", ",", ";")):
            sentence1 = sentence1[:-1]
        sentence2 = _lower_first(sentence2)
    return (f"{sentence1}, {tag} {no}, {sentence2}", f"{sentence1}, {tag} {yes}, {sentence2}")


# --- the seed paper's format (xLLMs-100, inference/XCOPA and inference/PAWS-X), an option -------------------------
# The seed asks an instruction-following question and reads the generated answer: the options listed with letters
# for XCOPA, a yes or no for PAWS-X. Crossfeed asks the same, in its own words, through the model's chat template,
# and scores the answer words by their likelihood (what greedy decoding picks when held to those answers).

LETTERED_OPTIONS = ("A", "B")
YES_NO_OPTIONS = ("no", "yes")  # option index = PAWS-X label


def xcopa_lettered(*, premise: str, question: str, choice1: str, choice2: str) -> Messages:
    return _user(
        f"Premise: {premise}\nWhat is the {question}? Pick the more plausible option: -A: {choice1} -B: {choice2}\n"
        "Answer with A or B only."
    )


def pawsx_yes_no(*, sentence1: str, sentence2: str) -> Messages:
    return _user(
        f"Here are two sentences:\nSentence1: {sentence1}\nSentence2: {sentence2}\n"
        "Does Sentence1 paraphrase Sentence2? Answer with yes or no only."
    )
