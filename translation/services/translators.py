"""Translators: registered by an admin, each checked once here (behind the API and the admin) so that a job never
meets a translator it cannot load: an llm's model is a local folder, an endpoint's host is allowed, a seq2seq
model's tokenizer loads without a download and has FLORES-200 language tokens (recorded as its `languages`); a
CTranslate2 folder (model.bin) is read the same way from the tokenizer files beside model.bin, and its languages are
those its vocabulary has too (translation/backends/seq2seq.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import transaction

from crossfeed.errors import InvalidInput
from generation.models import Endpoint
from generation.services.validation import ID_MAX, check_endpoint_host, check_local_model
from training.models import BaseModel, ModelVersion
from translation.models import Translator

PROMPT_TEMPLATE = (
    "Translate the following text from {source} to {target}. Keep every marker such as <x0/> exactly as it is, in "
    "the place where it belongs. Answer with the translation only, nothing else.\n\n{text}"
)
PROMPT_FIELDS = ("{source}", "{target}", "{text}")


def _row(model, value: Any, field: str, what: str):  # noqa: ANN001, ANN202
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ID_MAX:
        raise InvalidInput(f"the id of a {what} (a whole number)", field=field)
    found = model.objects.filter(pk=value).first()
    if found is None:
        raise InvalidInput(f"there is no {what} {value}", field=field)
    return found


def _check_template(template: Any) -> str:
    if template in (None, ""):
        return PROMPT_TEMPLATE
    if not isinstance(template, str) or len(template) > 4000:
        raise InvalidInput("a text of at most 4,000 characters", field="prompt_template")
    missing = [name for name in PROMPT_FIELDS if name not in template]
    if missing:
        raise InvalidInput(f"the template must contain {', '.join(PROMPT_FIELDS)}; {', '.join(missing)} is missing",
                           field="prompt_template")
    try:
        template.format(source="", target="", text="")
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidInput(f"only {{source}}, {{target}} and {{text}} may be in braces ({exc}); write other "
                           "braces doubled, {{ }}", field="prompt_template") from None
    return template


# A tokenizer is found from one of these (NLLB's tokenizer.json, or its SentencePiece model and config).
TOKENIZER_SOURCES = ("tokenizer.json", "tokenizer_config.json", "sentencepiece.bpe.model")


def _check_ctranslate2_folder(path: str) -> None:
    """A CTranslate2 folder runs only with ctranslate2 installed and its tokenizer copied beside model.bin."""
    from translation.backends.seq2seq import ctranslate2_available

    folder = Path(path)
    if not (folder / "model.bin").is_file():
        return
    if not ctranslate2_available(path):
        raise InvalidInput(f"{path[:200]!r} is a CTranslate2 model (model.bin) but the ctranslate2 package is not "
                           "installed: install it, or give the transformers model's folder", field="path")
    if not any((folder / name).is_file() for name in TOKENIZER_SOURCES):
        raise InvalidInput(f"the CTranslate2 folder {path[:200]!r} has no tokenizer ({', '.join(TOKENIZER_SOURCES)}): "
                           "convert again with --copy_files tokenizer.json tokenizer_config.json, or copy the "
                           "original model's tokenizer files beside model.bin", field="path")


def _seq2seq_languages(path: Any) -> list[str]:
    from translation.backends.seq2seq import known_languages

    if not isinstance(path, str) or not path.strip() or len(path) > 500:
        raise InvalidInput("required for a seq2seq translator: a model folder, or a hub id already downloaded",
                           field="path")
    _check_ctranslate2_folder(path.strip())
    try:
        languages = known_languages(path.strip())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"no tokenizer could be loaded from {path[:200]!r} without a download ({exc}); "
                           "download the model once and give its folder", field="path") from None
    if not languages:
        raise InvalidInput(f"the tokenizer at {path[:200]!r} has no FLORES-200 language tokens (such as eng_Latn): "
                           "it is not an NLLB-style model", field="path")
    return languages


def translator_check(*, name: Any, kind: Any, base_model: Any = None, model_version: Any = None,
                     endpoint: Any = None, path: Any = "", prompt_template: Any = "",
                     max_new_tokens: Any = 512) -> dict[str, Any]:
    """Every rule about a translator; the fields as they will be stored. InvalidInput names the field."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        raise InvalidInput("required, at most 200 characters", field="name")
    if Translator.objects.filter(name__iexact=name.strip()).exists():
        raise InvalidInput(f"a translator named {name.strip()!r} already exists", field="name")
    if kind not in Translator.Kind.values:
        raise InvalidInput(f"one of {', '.join(Translator.Kind.values)}", field="kind")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or not 1 <= max_new_tokens <= 4096:
        raise InvalidInput("a whole number from 1 to 4096", field="max_new_tokens")
    fields: dict[str, Any] = {"name": name.strip(), "kind": kind, "max_new_tokens": max_new_tokens}
    given = {key for key, value in (("base_model", base_model), ("model_version", model_version),
                                    ("endpoint", endpoint), ("path", path)) if value not in (None, "")}
    if kind == Translator.Kind.LLM:
        if given != {"base_model"} and given != {"model_version"}:
            raise InvalidInput("an llm translator takes one of base_model or model_version, nothing else",
                               field="base_model")
        if base_model is not None:
            fields["base_model"] = _row(BaseModel, base_model, "base_model", "base model")
            check_local_model(fields["base_model"], "base_model")
        else:
            fields["model_version"] = _row(ModelVersion, model_version, "model_version", "model version")
            check_local_model(fields["model_version"].base_model, "model_version")
        fields["prompt_template"] = _check_template(prompt_template)
    elif kind == Translator.Kind.ENDPOINT:
        if given != {"endpoint"}:
            raise InvalidInput("an endpoint translator takes endpoint (an id), nothing else", field="endpoint")
        fields["endpoint"] = _row(Endpoint, endpoint, "endpoint", "endpoint")
        check_endpoint_host(fields["endpoint"].base_url, field="endpoint")
        fields["prompt_template"] = _check_template(prompt_template)
    else:
        if given != {"path"}:
            raise InvalidInput("a seq2seq translator takes path (a model folder or hub id), nothing else",
                               field="path")
        fields["path"] = path.strip()
        fields["languages"] = _seq2seq_languages(path)
    return fields


@transaction.atomic
def translator_create(*, name: str, kind: str, base_model: int | None = None, model_version: int | None = None,
                      endpoint: int | None = None, path: str = "", prompt_template: str = "",
                      max_new_tokens: int = 512, notes: str = "", created_by=None) -> Translator:
    fields = translator_check(name=name, kind=kind, base_model=base_model, model_version=model_version,
                              endpoint=endpoint, path=path, prompt_template=prompt_template,
                              max_new_tokens=max_new_tokens)
    return Translator.objects.create(
        **fields, notes=notes or "",
        created_by=created_by if created_by is not None and created_by.is_authenticated else None)


def translator_label(translator: Translator) -> str:
    return translator.name
