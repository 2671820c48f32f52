"""How a prompt asks for an answer in another language, and which languages each prompt is answered in. Django-free.

The instruction is part of the prompt the model sees and is recorded with the job (GenerationJob.instruction_template)
and with every response, so a later reader knows exactly what the model was asked.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

# English on purpose: every instruction-tuned model follows it, and the language is named twice, in English and in
# its own name, so a model that knows one of the two names still knows which language is meant.
INSTRUCTION_TEMPLATE = "{prompt}\n\nPlease answer in {language} ({autonym})."


def prompt_messages(prompt_text: str, *, language_name: str, autonym: str, template: str = INSTRUCTION_TEMPLATE
                    ) -> list[dict[str, str]]:
    """The conversation to generate from: one user turn, the prompt followed by the instruction. A language whose
    English name is its own name is not named twice."""
    if not autonym or autonym == language_name:
        autonym = language_name
    content = template.format(prompt=prompt_text.strip(), language=language_name, autonym=autonym)
    if autonym == language_name:
        content = content.replace(f"{language_name} ({language_name})", language_name)
    return [{"role": "user", "content": content}]


def sample_languages(candidates: Sequence[str], k: int | None, *, key: str, seed: int) -> list[str]:
    """`k` of the candidate languages, the same ones for the same (key, seed) on every machine and run (a retry
    resolves the same languages), kept in the order given. k None or >= len(candidates): all of them."""
    if k is None or k >= len(candidates):
        return list(candidates)
    if k <= 0:
        return []
    # Python's hash() of a str changes per process; a digest does not.
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    chosen = set(random.Random(int.from_bytes(digest[:8], "big")).sample(range(len(candidates)), k))
    return [language for index, language in enumerate(candidates) if index in chosen]
