"""Zero-shot prompt templates, all in one place, in our own words.

Each function returns chat messages (one user turn); evaluation/inference.py renders them through the model's chat
template with the assistant turn opened, so the model answers as it would in a conversation. Instructions are in
English, as in the paper's evaluation: the task is the same for every language, only the content changes.

The long input (an article) comes before the instruction in the summarization prompt: when a prompt has to be cut
to fit the model's context, inference keeps its end, so the instruction and the open assistant turn survive.
"""

from __future__ import annotations

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


def paraphrase(*, sentence1: str, sentence2: str) -> Messages:
    return _user(
        f"First sentence: {sentence1}\nSecond sentence: {sentence2}\n\n"
        "Do these two sentences say the same thing in different words? Answer Yes or No."
    )


# PAWS-X label 0 = not a paraphrase, 1 = paraphrase; the option index is the label.
PARAPHRASE_OPTIONS = ("No", "Yes")


def causal_choice(*, premise: str, question: str) -> Messages:
    # XCOPA: each option is scored as the assistant's answer (log-likelihood), as lm-evaluation-harness does, so the
    # options are not listed in the prompt.
    asked = "What was the cause of this?" if question == "cause" else "What happened as a result?"
    return _user(f"{premise}\n\n{asked} Answer with one sentence.")


def open_ended(*, instruction: str, input_text: str = "") -> Messages:
    return _user(f"{instruction}\n\n{input_text}" if input_text else instruction)
