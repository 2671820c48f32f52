"""Number formatting for the evaluation pages: signed deltas that read without colour."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def metric(value: float | None, digits: int = 1) -> str:
    """A score with `digits` decimals; an em dash when there is none (not measurable, or not run)."""
    return "—" if value is None else f"{value:.{digits}f}"


@register.filter
def signed(value: float | None, digits: int = 1) -> str:
    """+2.3, −1.2 (a real minus sign), ±0.0: the sign carries the direction for readers who cannot see colour."""
    if value is None:
        return "—"
    text = f"{abs(value):.{digits}f}"
    if text == f"{0:.{digits}f}":
        return f"±{text}"
    return f"+{text}" if value > 0 else f"\u2212{text}"


@register.filter
def verdict_label(verdict: str) -> str:
    return {"better": _("better"), "worse": _("worse"), "same": _("no change")}.get(verdict, "")


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"
