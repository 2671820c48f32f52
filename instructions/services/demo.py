"""The instructions app's part of the demo (annotation/services/demo.py runs it, through CROSSFEED_DEMO_EXTRAS)."""

from __future__ import annotations

from pathlib import Path

from instructions.services.sets import instruction_set_import

DEMO_INSTRUCTION_SET = "Sample instructions"
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample_alpaca.jsonl"


def demo_instruction_set_import(*, admin) -> None:
    """The hand-written sample instruction set (instructions/data/sample_alpaca.jsonl), for translation jobs."""
    with SAMPLE.open("rb") as source:
        instruction_set_import(name=DEMO_INSTRUCTION_SET, source=source, language="en", created_by=admin,
                               source_name=SAMPLE.name)
