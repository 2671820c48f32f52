"""The demo that `make run` seeds: with the tiny base model registered (`make run` builds it first), a translator on
it, "Demo tiny model (prompted)", so that the new-job page can start a translation of "Sample instructions" at once;
without the model the demo is seeded as before, without the translator."""

from __future__ import annotations

from django.urls import reverse

from annotation.services.demo import demo_seed
from instructions.services.demo import DEMO_INSTRUCTION_SET
from translation.models import Translator
from translation.services.demo import DEMO_TRANSLATOR


def test_the_demo_adds_a_translator_on_the_tiny_model(db, client, tmp_path, tiny_model_dir):
    from training.services.registry import TINY_MODEL_NAME, base_model_register

    tiny = base_model_register(name=TINY_MODEL_NAME, path=str(tiny_model_dir))
    demo_seed(var_dir=tmp_path)
    translator = Translator.objects.get()
    assert (translator.name, translator.kind, translator.base_model) == (DEMO_TRANSLATOR, "llm", tiny)
    assert "{text}" in translator.prompt_template and translator.created_by.username == "admin"

    client.force_login(translator.created_by)
    form = client.get(reverse("translation:job_new")).context["form"]
    assert [name for _id, name in form.fields["translators"].choices] == [
        f"{DEMO_TRANSLATOR} (instruction-following model with a prompt)"]
    assert [s.name for s in form.fields["instruction_set"].queryset] == [DEMO_INSTRUCTION_SET]


def test_without_the_tiny_model_the_demo_has_no_translator(db, tmp_path):
    demo_seed(var_dir=tmp_path)
    assert not Translator.objects.exists()
