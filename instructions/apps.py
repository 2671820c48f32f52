from django.apps import AppConfig


class InstructionsConfig(AppConfig):
    """Instruction sets for SFT: imported, translated into many languages, scored, chosen, post-edited, exported."""

    name = "instructions"
    verbose_name = "Instruction sets"
    default_auto_field = "django.db.models.BigAutoField"
