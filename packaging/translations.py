"""The translations' workflow: extract, update, compile, check (Babel's catalogue code).

    python packaging/translations.py extract   # desktop_app/locale/triptych.pot
    python packaging/translations.py update    # new messages into each language's .po
    python packaging/translations.py compile   # .po → .mo, what the app loads
    python packaging/translations.py check     # untranslated, fuzzy, mismatched or stale

Messages are the strings the code passes to ``_()``, ``N_()`` and ``ngettext()``
(:mod:`desktop_app.text.i18n`). ``tests/test_translations.py`` runs :func:`problems` for
every shipped language, so a new string without its German and French fails the suite.
"""

from __future__ import annotations

import gettext
import io
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "desktop_app"
LOCALE = SOURCES / "locale"
TEMPLATE = LOCALE / "triptych.pot"
LANGUAGES = ("de", "fr")  # besides English, the source language
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2),
            "NC_": ((1, "c"), 2)}
STAMP = datetime(2026, 1, 1, tzinfo=UTC)  # a .mo's bytes depend only on its .po
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def po_path(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "triptych.po"


def mo_path(language: str) -> Path:
    return po_path(language).with_suffix(".mo")


def template() -> Catalog:
    """Every message in the sources, with where it is used."""
    catalog = Catalog(project="Triptych", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
            str(SOURCES), method_map=[("**.py", "python")], keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
        catalog.add(message, None, [(f"desktop_app/{filename}", lineno)],
                    auto_comments=comments, context=context)
    return catalog


# Each language's plural rule, stated here rather than taken from Babel's locale data,
# which changes between Babel versions (2.19 gave French CLDR's third form, for millions).
PLURAL_FORMS = {"de": "nplurals=2; plural=(n != 1);", "fr": "nplurals=2; plural=(n > 1);"}


def _rule(catalog: Catalog, language: str) -> Catalog:
    catalog.mime_headers = [("Content-Type", "text/plain; charset=utf-8"),
                            ("Plural-Forms", PLURAL_FORMS[language])]
    return catalog


def read(language: str) -> Catalog:
    """A language's catalogue, with its plural rule (read without Babel's locale data,
    which would give each plural message as many forms as *its* rule has)."""
    with po_path(language).open("rb") as handle:
        catalog = _rule(read_po(handle), language)
    catalog.locale = language
    return catalog


def write(catalog: Catalog, path: Path, *, locations: bool = False) -> None:
    """Sorted, with no header and (in a language's file) no source lines: two branches
    that add messages conflict only where they add the same one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, sort_output=True, omit_header=True,
             no_location=not locations)
    path.write_bytes(buffer.getvalue())


def compiled(catalog: Catalog) -> bytes:
    catalog.creation_date = catalog.revision_date = STAMP
    catalog.fuzzy = False
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def update() -> None:
    """The template's messages into each language's ``.po``, translations kept."""
    pot = template()
    for language in LANGUAGES:
        path = po_path(language)
        catalog = read(language) if path.exists() else _rule(
            Catalog(locale=language, project="Triptych"), language)
        catalog.update(pot, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        write(catalog, path)


def compile_all() -> None:
    for language in LANGUAGES:
        mo_path(language).write_bytes(compiled(read(language)))


def _forms(message: object) -> list[str]:
    value = getattr(message, "string", "")
    return [str(s) for s in value] if isinstance(value, (list, tuple)) else [str(value or "")]


def _ids(message: object) -> list[str]:
    value = getattr(message, "id", "")
    return [str(s) for s in value] if isinstance(value, (list, tuple)) else [str(value)]


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def problems(language: str) -> list[str]:
    """What is wrong with one language: a message missing or empty, fuzzy, with other
    ``{placeholders}`` than the English, the wrong number of plural forms, or a ``.mo``
    that is not the ``.po`` compiled."""
    if not po_path(language).exists():
        return [f"{language}: no {_shown(po_path(language))}"]
    catalog = read(language)
    found: list[str] = []
    for message in template():
        if not message.id:
            continue
        key = _ids(message)[0]
        ours = catalog.get(message.id, context=message.context)
        forms = _forms(ours) if ours is not None else []
        if ours is None or not all(forms):
            found.append(f"{language}: untranslated: {key!r}")
            continue
        if ours.fuzzy:
            found.append(f"{language}: fuzzy: {key!r}")
        wanted = {p for text in _ids(message) for p in PLACEHOLDER.findall(text)}
        for form in forms:
            if {p for p in PLACEHOLDER.findall(form)} != wanted:
                found.append(f"{language}: placeholders differ: {key!r} → {form!r}")
        if message.pluralizable and len(forms) != catalog.num_plurals:
            found.append(f"{language}: {len(forms)} plural forms, needs "
                         f"{catalog.num_plurals}: {key!r}")
    if not mo_path(language).exists() or (_messages(mo_path(language).read_bytes())
                                          != _messages(compiled(catalog))):
        found.append(f"{language}: {_shown(mo_path(language))} is stale: run "
                     "'python packaging/translations.py compile'")
    return found


def _messages(mo: bytes) -> tuple[dict[object, str], str]:
    """What a ``.mo`` says: its messages and its plural rule (not the Babel version that
    wrote it, which its header also names)."""
    translations = gettext.GNUTranslations(io.BytesIO(mo))
    messages = {key: value for key, value in translations._catalog.items()  # type: ignore[attr-defined]
                if key != ""}
    header = translations._catalog.get("", "")  # type: ignore[attr-defined]
    rule = next((line for line in header.splitlines() if line.startswith("Plural-Forms")), "")
    return messages, rule


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "extract":
        write(template(), TEMPLATE, locations=True)  # for translators' tools; not kept
    elif command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "check":
        found = [line for language in LANGUAGES for line in problems(language)]
        print("\n".join(found) or "every message is translated")
        return 1 if found else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
