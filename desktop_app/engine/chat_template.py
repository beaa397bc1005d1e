"""Render a model's chat template exactly as llama-cpp-python (and transformers) do.

A chat template is a Jinja program shipped inside the model file. Templates rely on the
environment transformers defines: ``{% break %}``/``{% continue %}``, a pass-through
``{% generation %}`` tag, a ``tojson`` that does not HTML-escape, ``raise_exception`` and
``strftime_now``. Rather than re-create that environment, this module calls
llama-cpp-python's ``Jinja2ChatFormatter``, the code that prompts the model when
llama-cpp-python formats a chat itself, so the text shown is the text it would build.
"""

from __future__ import annotations

import functools
import re
from typing import Any


class TemplateBroken(Exception):
    """The template is not valid Jinja, or failed while rendering."""


class TemplateRefused(Exception):
    """The template called ``raise_exception``: it does not accept this conversation."""


def mentions(template: str, name: str) -> bool:
    """Whether the template reads the variable ``name`` (e.g. ``enable_thinking``).

    Attributes (``ns.enable_thinking``), keyword arguments (``namespace(enable_thinking=
    true)``) and text inside quotes are not the variable.
    """
    pattern = rf"(?<![\w.'\"]){re.escape(name)}(?![\w'\"])(?!\s*=[^=])"
    return re.search(pattern, template) is not None


@functools.lru_cache(maxsize=16)
def _formatter(template: str, bos_token: str, eos_token: str) -> Any:
    """A compiled formatter; compiling a large template costs milliseconds, so keep a few."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template=template, eos_token=eos_token, bos_token=bos_token,
                               add_generation_prompt=True)


def _raised_by_template(exc: BaseException) -> bool:
    """True if the innermost frame of ``exc`` is the template's ``raise_exception``."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_name == "raise_exception"


def render_template(
    template: str,
    messages: list[dict[str, str]],
    *,
    bos_token: str = "",
    eos_token: str = "",
    flags: dict[str, Any] | None = None,
) -> str:
    """The prompt for ``messages`` with the generation prompt added, and template ``flags``.

    Raises :class:`TemplateRefused` when the template rejects the conversation (for
    example a system message it has no role for) and :class:`TemplateBroken` for
    anything else: a template is code from a model file, so no error escapes as such.
    """
    try:
        formatter = _formatter(template, bos_token, eos_token)
    except Exception as exc:  # a syntax error in the model's template
        raise TemplateBroken(str(exc)) from exc
    try:
        response = formatter(messages=messages, **(flags or {}))
    except Exception as exc:
        if _raised_by_template(exc):
            raise TemplateRefused(str(exc)) from exc
        raise TemplateBroken(str(exc) or type(exc).__name__) from exc
    return str(response.prompt)
