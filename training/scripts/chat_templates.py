"""The one chat template a base model is trained and evaluated with, and the rule that picks it. Django-free.

Training (sft.py and dpo.py, through common.load_tokenizer) and evaluation (evaluation/inference.load_model) both call
`use_chat_template` with the base model's two settings, so the text a model learns from and the text it is measured
on are rendered by the same template:

1. `override`: the base model's own Jinja template (BaseModel.chat_template), when it has one;
2. `name`: a template chosen when the model was registered (BaseModel.chat_template_name): `question_answer` or
   `alpaca`, below;
3. `auto` (the default): the tokenizer's own template, or `question_answer` when it has none (a base model such as
   Llama-2-7b-hf ships without one).

The named templates follow the seed paper's formats (xLLMs-100: sft.py wraps every example as "Question: ...\\n\\n
Answer: ...", dpo.py builds "Question: <instruction>\\n\\nAnswer: " prompts, and its inference scripts use Alpaca's
"### Instruction: / ### Response:" prompt). Both end an answer with EOS, so the model learns to stop, and put the
answer and its EOS inside {% generation %} (TRL's `assistant_only_loss` trains on exactly that). The prompt rendered
with `add_generation_prompt` ends on "Answer:" or "### Response:" and the answer starts with a space or a newline:
the prompt's tokens are then a prefix of the prompt + answer tokens, which TRL's DPO needs to split them.
They write BOS only for a tokenizer that adds BOS to plain text itself (Llama does, Qwen and BLOOM do not), so the
model sees the start of a text as it did in pre-training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

AUTO = "auto"
QUESTION_ANSWER = "question_answer"
ALPACA = "alpaca"
TEMPLATE_NAMES = (AUTO, QUESTION_ANSWER, ALPACA)
# When the named templates are used: "auto" falls back to this for a tokenizer without a template.
FALLBACK = QUESTION_ANSWER

# Newlines sit right after a {{ }} expression: transformers renders with trim_blocks, which eats a newline that
# follows a {% %} tag.
NAMED_TEMPLATES = {
    QUESTION_ANSWER: (
        "{% for message in messages %}"
        "{% if message['role'] == 'assistant' %}"
        "Answer:{% generation %}{{ ' ' + message['content'] + eos_token }}{% endgeneration %}"
        "{% elif message['role'] == 'user' %}"
        "Question: {{ message['content'] }}\n\n"
        "{% else %}"
        "{{ message['content'] }}\n\n"
        "{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}Answer:{% endif %}"
    ),
    ALPACA: (
        "{% if messages[0]['role'] != 'system' %}"
        "{{ 'Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.' }}\n\n"
        "{% endif %}"
        "{% for message in messages %}"
        "{% if message['role'] == 'assistant' %}"
        "### Response:{% generation %}{{ '\n' + message['content'] + eos_token }}{% endgeneration %}"
        "{% elif message['role'] == 'user' %}"
        "### Instruction:\n{{ message['content'] }}\n\n"
        "{% else %}"
        "{{ message['content'] }}\n\n"
        "{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}### Response:{% endif %}"
    ),
}


@dataclass(frozen=True)
class ChatTemplate:
    """The template in use and where it came from: "override", "tokenizer", "question_answer" or "alpaca"."""

    source: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def record(self) -> dict[str, str]:
        """What the training manifest keeps, so anyone can render a prompt exactly as the model was trained."""
        return {"source": self.source, "sha256": self.sha256, "text": self.text}


class ChatTemplateError(ValueError):
    """A template name we do not know."""


def check_template_name(name: str) -> str:
    if name not in TEMPLATE_NAMES:
        raise ChatTemplateError(f"chat_template_name: {name!r} is not one of {', '.join(TEMPLATE_NAMES)}")
    return name


def adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer puts BOS before plain text on its own (what the model saw in pre-training)."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def named_template(tokenizer: Any, name: str) -> str:
    return ("{{ bos_token }}" if adds_bos(tokenizer) else "") + NAMED_TEMPLATES[name]


def resolve_chat_template(tokenizer: Any, *, name: str = AUTO, override: str | None = None) -> ChatTemplate:
    """The template the rule above picks for this tokenizer; the tokenizer is not changed."""
    if override:
        return ChatTemplate("override", override)
    check_template_name(name)
    if name == AUTO:
        own = getattr(tokenizer, "chat_template", None)
        if isinstance(own, str) and own.strip():
            return ChatTemplate("tokenizer", own)
        name = FALLBACK
    return ChatTemplate(name, named_template(tokenizer, name))


def use_chat_template(tokenizer: Any, *, name: str = AUTO, override: str | None = None) -> ChatTemplate:
    """Resolve the template and set it on the tokenizer (so apply_chat_template, TRL and save_pretrained use it)."""
    template = resolve_chat_template(tokenizer, name=name, override=override)
    tokenizer.chat_template = template.text
    return template
