from django import template
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from annotation.rendering import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> str:
    # render_markdown escapes raw HTML and sanitises the result, so marking it safe is sound.
    return mark_safe(render_markdown(text))  # noqa: S308


@register.filter
def letter(index: int) -> str:
    """0 → A, 1 → B: responses are named by letters so that digits stay free for ranks."""
    return chr(ord("A") + int(index))


@register.filter
def language_name(code: str) -> str:
    """'sw' → 'Kiswahili (Swahili)': the autonym first, because annotators read their own language."""
    from annotation.languages import get_language

    spec = get_language(code) if code else None
    if spec is None:
        return code or ""
    return spec.native_name if spec.native_name == spec.name else f"{spec.native_name} ({spec.name})"


FLAG_LABELS = {
    "wrong_language": _("wrong language"),
    "incorrect": _("incorrect"),
    "unsafe": _("unsafe"),
    "incomplete": _("incomplete"),
    "garbled": _("garbled"),
}


@register.filter
def flag_label(name: str) -> str:
    return str(FLAG_LABELS.get(name, name.replace("_", " ")))
