import html
from functools import lru_cache

from django import template
from django.conf import settings
from django.template.base import TextNode, Variable
from django.templatetags.i18n import TranslateNode
from django.urls import get_script_prefix, reverse
from django.utils import translation
from django.utils.html import conditional_escape as escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, gettext_noop
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
    try:
        return _language_name(translation.get_language(), code)
    except TypeError:  # a value that is no key (a lazy or unhashable one) is named without the cache
        return _name_of(code)


def _name_of(code: str) -> str:
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



# --- the response cards of the annotation page (templates/annotation/_item.html) -------------------------------------
# Every submit renders the next item's cards. As template nodes (a loop of cards, in each a loop of ranks and one of
# flags, about 45 nodes per card) they were three quarters of the page's rendering time and a third of the submit's
# CPU (docs/benchmarks.md); written out here they cost a tenth of that. The markup and the texts are the same as
# the template's were: translate-style texts are escaped, blocktranslate-style ones are not (their values are).

# The cards' texts, marked for makemessages as the template's tags marked them (same messages, same catalogs).
RANK = gettext_noop("Rank")
FLAGS = gettext_noop("Flags")
RESPONSE = gettext_noop("Response %(letter)s")
RANK_OF_RESPONSE = gettext_noop("Rank of response %(letter)s")
FOR_RESPONSE = gettext_noop("for response %(letter)s")
CERTAINTY = gettext_noop("language identification, %(percent)s%% confidence")
DETECTED = gettext_noop("Detected: %(language)s")

# One card; the lines holding only spaces are where the template's tags stood.
CARD = (
    '\n    <article class="response card{selected}" data-response="{id}" tabindex="0"\n'
    '             aria-label="{aria_label}"{described_by}>\n'
    '      <header>\n'
    '        <span class="letter">{letter}</span>\n'
    '        <span class="badge">{language_name}</span>\n'
    '        {hint}\n'
    '        \n'
    '        <label class="rank">{rank}\n'
    '          <select name="rank_{id}" data-rank-for="{id}"\n'
    '                  {invalid}\n'
    '                  aria-label="{rank_label}">\n'
    '            <option value="">–</option>\n'
    '            {options}\n'
    '          </select></label>\n'
    '        \n'
    '      </header>\n'
    '      {errors}\n'
    '      <div class="text prose" lang="{language}" dir="auto">{text}</div>\n'
    '      <fieldset class="flags"><legend class="small">{flags}<span class="visually-hidden"> {flags_label}</span>'
    '</legend>\n'
    '        {flag_boxes}\n'
    '      </fieldset>\n'
    '    </article>\n'
    '  '
)
HINT = (
    '\n        \n        \n'
    '        <span class="detected-hint" id="detected-{id}" data-detected="{detected}"{title}>{detected_label}'
    '{certainty}</span>\n'
    '        \n'
    '        '
)
FLAG_BOX = (
    '\n        <label class="flag"><input type="checkbox" name="flag_{id}" value="{flag}"{checked}{described_by}> '
    '{label}</label>\n'
    '        '
)


@register.simple_tag
def response_cards(responses: list[dict], choices, flag_vocabulary) -> SafeString:
    """The cards of an item's responses, in the annotator's order: `responses` as views._item_context makes them."""
    language = translation.get_language()
    # Per flag, once for all cards: its value in the markup and its label.
    flags = [(_escape(flag), flag, _flag_label(language, flag)) for flag in flag_vocabulary]
    ranks = [(_escape(rank), rank) for rank in choices]
    return mark_safe("".join(_card(index, response, ranks, flags, language)  # noqa: S308 - every value escaped
                             for index, response in enumerate(responses)))


def _card(index: int, response: dict, ranks: list, flags: list, language: str) -> str:
    number, name = _escape(response["id"]), letter(index)
    described_by = f' aria-describedby="detected-{number}"' if response["hinted"] else ""
    errors = ""
    if response["errors"]:
        errors = (f'<p class="field-error" id="error-{number}">'
                  + "".join(f"{escape(message)} " for message in response["errors"]) + "</p>")
    return CARD.format(
        selected=" selected" if index == 0 else "", id=number, letter=name, described_by=described_by,
        aria_label=_blocktranslated(language, RESPONSE, (("letter", name),)),
        language_name=_escape(_language_name(language, response["language"])),
        hint=_hint(response, language) if response["hinted"] else "",
        rank=_translated(language, RANK),
        rank_label=_blocktranslated(language, RANK_OF_RESPONSE, (("letter", name),)),
        invalid=f'aria-invalid="true" aria-describedby="error-{number}"' if response["errors"] else "",
        options="".join(f'<option value="{text}"{" selected" if response["rank"] == rank else ""}>{text}</option>'
                        for text, rank in ranks),
        errors=errors, language=_escape(response["language"]), text=markdown_filter(response["text"]),
        flags=_translated(language, FLAGS),
        flags_label=_blocktranslated(language, FOR_RESPONSE, (("letter", name),)),
        flag_boxes="".join(FLAG_BOX.format(id=number, flag=text, label=label,
                                           checked=" checked" if flag in response["flags"] else "",
                                           described_by=described_by if flag == "wrong_language" else "")
                           for text, flag, label in flags),
    )


@register.simple_tag
def ranking_strip(responses: list[dict]) -> SafeString:
    """The letters of the ranking strip, one per response in the annotator's order (as the template's loop wrote
    them: {{ response.id }} and {{ forloop.counter0|letter }}, escaped)."""
    return mark_safe("".join(f'<li draggable="true" data-response="{_escape(response["id"])}">{letter(index)}</li>'  # noqa: S308
                             for index, response in enumerate(responses)))


@register.simple_tag
def item_url(name: str, item_id) -> str:
    """{% url name item_id %} of an item's page (annotation:submit, annotation:skip): the pattern is reversed once
    per name and script prefix, and the id put in its place (reverse() was a tenth of the partial's rendering)."""
    before, after = _around_id(name, get_script_prefix())
    return f"{before}{int(item_id)}{after}"


# 18 digits: what the `id` converter accepts (crossfeed/converters.py); no URL pattern holds this number itself.
_ID_STAND_IN = 987654321987654321


@lru_cache(maxsize=64)
def _around_id(name: str, script_prefix: str) -> tuple[str, str]:
    before, _found, after = reverse(name, args=[_ID_STAND_IN]).partition(str(_ID_STAND_IN))
    return before, after


def _hint(response: dict, language: str) -> str:
    """The "Detected: …" hint (annotation/language_hint.py), with the identifier's confidence when it gave one."""
    certainty = ""
    if response["detected_confidence"] is not None:
        percent = _width_ratio(response["detected_confidence"])
        certainty = _blocktranslated(language, CERTAINTY, (("percent", percent),))
    detected = _language_name(language, response["detected_language"])
    return HINT.format(
        id=_escape(response["id"]), detected=_escape(response["detected_language"]),
        title=f' title="{certainty}"' if certainty else "",
        detected_label=_blocktranslated(language, DETECTED, (("language", detected),)),
        certainty=f'<span class="visually-hidden"> ({certainty})</span>' if certainty else "")


def _width_ratio(confidence) -> str:
    """{% widthratio confidence 1 100 %}: the percentage, rounded."""
    try:
        return str(round(float(confidence) * 100))
    except (ValueError, TypeError, OverflowError):
        return ""


def _escape(value) -> str:
    # Django's escape() without its lazy-string wrapper, for the values here (text, numbers); the same output.
    return html.escape(str(value))


# The interface's texts and language names of a card, per interface language: they never change while the server
# runs (the catalogs are read at start-up), and were most of a card's time.


@lru_cache(maxsize=4096)
def _translated(language: str, message: str) -> str:
    """{% translate message %} in `language` (the active one): escaped."""
    return escape(gettext(message))


@lru_cache(maxsize=4096)
def _blocktranslated(language: str, message: str, values: tuple) -> str:
    """{% blocktranslate %} in `language` (the active one): the translation is markup as it stands, the values are
    escaped; a translation whose placeholders do not fit falls back to the message itself."""
    escaped = {name: _escape(value) for name, value in values}
    try:
        return gettext(message) % escaped
    except (KeyError, ValueError):
        return message % escaped


@lru_cache(maxsize=4096)
def _language_name(language: str, code: str) -> str:
    """A language's name in the interface language `language` (the active one): the registry and the catalogs
    are read at start-up and never change while the server runs."""
    return _name_of(code)


def _flag_label(language: str, flag) -> str:
    try:
        return _escaped_flag_label(language, flag)
    except TypeError:  # a flag that is no name (a campaign saved before the admin validated them) cannot be a key
        return _escape(flag_label(flag))


@lru_cache(maxsize=4096, typed=True)  # typed: a flag True must not take the label of a flag 1
def _escaped_flag_label(language: str, flag) -> str:
    return _escape(flag_label(flag))


# --- the invariant markup of the annotation page -------------------------------------------------------------------
# Around its values, _item.html is the same markup and the same interface texts on every submit: its 19 {% translate %}
# tags were a third of the template's rendering (docs/benchmarks.md). Wrapped in {% chrome %}, such a stretch is
# rendered the first time in each interface language and then taken as it was.


class ChromeNode(template.Node):
    def __init__(self, nodelist: template.NodeList) -> None:
        self.nodelist = nodelist
        # Kept on the node, so it lives as long as the compiled template (Django's cached loader keeps that for the
        # life of the process); a few languages × two autoescape settings at most.
        self.rendered: dict[tuple[str | None, bool], SafeString] = {}

    def render(self, context) -> SafeString:
        key = (translation.get_language(), context.autoescape)
        rendered = self.rendered.get(key)
        if rendered is None:
            rendered = self.rendered[key] = self.nodelist.render(context)
        return rendered


@register.tag
def chrome(parser, token) -> ChromeNode:
    """{% chrome %}…{% endchrome %}: markup and {% translate "…" %} of fixed messages only, nothing from the context;
    rendered once per interface language (and autoescape setting) per compiled template, the same bytes as without
    the tags."""
    nodelist = parser.parse(("endchrome",))
    parser.delete_first_token()
    for node in nodelist:
        if not (isinstance(node, TextNode) or _fixed_translation(node)):
            raise template.TemplateSyntaxError(
                f"{{% chrome %}} on line {token.lineno} may hold only markup and {{% translate \"…\" %}} of a fixed "
                f"message, whose output depends on the interface language alone; it holds {node.token.contents!r} "
                f"(line {node.token.lineno}). Close the block before it and open another after it.")
    return ChromeNode(nodelist)


def _fixed_translation(node) -> bool:
    expression = getattr(node, "filter_expression", None)
    return (isinstance(node, TranslateNode) and node.asvar is None and node.message_context is None
            and isinstance(expression.var, Variable) and expression.var.literal is not None
            and not expression.filters)
