"""The app's words in the user's language.

GNU gettext (Python's :mod:`gettext`), not Qt's ``tr()``: the core has no Qt, yet its
verdicts, reasons and error sentences are what the window shows most, so the window and
the core share one catalogue (``desktop_app/locale/<lang>/LC_MESSAGES/triptych.mo``, built
from the ``.po`` files by ``packaging/translations.py``). Plural forms come from each
catalogue's ``Plural-Forms`` header.

Only the window calls :func:`set_language`: the command line stays English, because
scripts parse it. ``_()`` translates now; :func:`N_` marks a string that is stored (a
label table at import time) and translated where it is shown. Numbers the core writes
into a sentence go through :func:`number`, which the window points at the locale's own
formatting (Qt's ``QLocale``) so that ``0.7`` reads ``0,7`` in German.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable, Iterable
from pathlib import Path

DOMAIN = "triptych"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
SOURCE_LANGUAGE = "en"
# The shipped languages, each named in its own language (as a language menu shows them).
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch", "fr": "Français"}
# Every message wrapped in ⟦…⟧: a test sets it and fails on any text shown without them.
PSEUDO = "pseudo"

_translations: gettext.NullTranslations = gettext.NullTranslations()
_language = SOURCE_LANGUAGE


class _Pseudo(gettext.NullTranslations):
    def gettext(self, message: str) -> str:
        return f"⟦{message}⟧"

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return f"⟦{msgid1 if n == 1 else msgid2}⟧"

    def pgettext(self, context: str, message: str) -> str:
        return f"⟦{message}⟧"


def _plain_number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


_number: Callable[[float, int], str] = _plain_number


def _(message: str) -> str:
    """``message`` in the current language (itself where no translation exists)."""
    return _translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a counted phrase that ``n`` needs in the current language."""
    return _translations.ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` as meant in ``context``: one English word, two translations ("failed":
    a verdict is *nicht bestanden*, a download *fehlgeschlagen*)."""
    return _translations.pgettext(context, message)


def NC_(context: str, message: str) -> str:
    """:func:`N_` with a context: translate it later with ``pgettext(context, message)``."""
    return message


def N_(message: str) -> str:
    """Marks ``message`` for translation without translating it yet (pass it to ``_``
    where it is shown: a table built at import time outlives a language change)."""
    return message


def language() -> str:
    """The language set now (``en`` unless the window chose another)."""
    return _language


def set_language(code: str) -> str:
    """Speak ``code`` (a key of :data:`LANGUAGES`, or :data:`PSEUDO`) from now on; an
    unknown code falls back to English. Returns the language set."""
    global _translations, _language
    if code == PSEUDO:
        _translations, _language = _Pseudo(), PSEUDO
        return _language
    if code not in LANGUAGES or code == SOURCE_LANGUAGE:
        _translations, _language = gettext.NullTranslations(), SOURCE_LANGUAGE
        return _language
    _translations = gettext.translation(DOMAIN, LOCALE_DIR, languages=[code], fallback=True)
    _language = code if isinstance(_translations, gettext.GNUTranslations) else SOURCE_LANGUAGE
    return _language


def pick_language(preferred: Iterable[str]) -> str:
    """The first shipped language among ``preferred`` (``de-DE``, ``de_AT``, ``fr``: the
    OS's list, most wanted first), else English."""
    for tag in preferred:
        code = tag.replace("_", "-").split("-")[0].lower()
        if code in LANGUAGES:
            return code
    return SOURCE_LANGUAGE


def number(value: float, decimals: int = 0) -> str:
    """``value`` written the current locale's way (decimal comma, grouping)."""
    return _number(value, decimals)


def whole(n: int) -> str:
    """A count with its thousands grouped: ``1,024`` on the command line, ``1.024`` in a
    German window."""
    return f"{n:,}" if _number is _plain_number else _number(n, 0)


def set_number_format(formatter: Callable[[float, int], str] | None) -> None:
    """Write numbers with ``formatter(value, decimals)`` (the window passes ``QLocale``'s);
    None restores plain ``1234.5`` (what the command line prints)."""
    global _number
    _number = formatter or _plain_number
