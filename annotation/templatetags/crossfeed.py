from django import template
from django.conf import settings
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
    name = _name_in_interface_language(spec.code, spec.name)
    return spec.native_name if spec.native_name == name else f"{spec.native_name} ({name})"


def _name_in_interface_language(code: str, english: str) -> str:
    """Django's own catalogs name its languages in each interface language ("English" is "الإنجليزية" in an
    Arabic interface); where they have no name, or no translation of it, the English name stays."""
    from django.utils import translation

    try:
        info = translation.get_language_info(code)
    except KeyError:
        return english
    translated = str(info["name_translated"])
    return english if translated == info["name"] else translated


@register.filter
def percent(value) -> str:
    """12.5 → "12.5%", in every interface language: Django's Arabic number format writes "12,5", which beside the
    percent sign read as a list, not a share (issue 15)."""
    try:
        return f"{float(value):.1f}%"
    except (TypeError, ValueError):
        return ""


FLAG_LABELS = {
    "wrong_language": _("wrong language"),
    "incorrect": _("incorrect"),
    "unsafe": _("unsafe"),
    "incomplete": _("incomplete"),
    "garbled": _("garbled"),
}


@register.filter
def flag_label(name: str) -> str:
    # str(): a campaign saved with non-text flags before the admin validated them must not break the page.
    name = str(name)
    return str(FLAG_LABELS.get(name, name.replace("_", " ")))


@register.filter
def language_name_local(code: str) -> str:
    """An interface language's name in itself, from settings.LANGUAGES (get_available_languages translates it)."""
    return dict(settings.LANGUAGES).get(code, code)
