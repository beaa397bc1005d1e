"""``triptych prompt``: print the exact text a model would receive, without generating.

    triptych prompt --model ID QUESTION           the template from the model file's header
    triptych prompt --template FILE.jinja QUESTION
        [--bos TEXT] [--eos TEXT] [--system TEXT] [--no-thinking]
        [--reasoning-effort low|medium|high] [--history FILE.json] [--json]
    triptych prompt --model ID --tokens QUESTION  the same text as the model's tokens

The prompt comes from :func:`desktop_app.engine.prompting.build_prompt`, the same call the
model process makes, so it is the text the window shows as "exact text sent". With
``--model`` only the GGUF header is read (no model is loaded): the chat template and the
BOS/EOS token texts; ``--tokens`` also loads the model's vocabulary (not its weights) and
prints the ids the model process evaluates (``Vocabulary.describe``, as the window's Tokens
view). Notes about the prompt (system text folded, thinking that cannot be turned off) go
to standard error; the prompt alone goes to standard output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from desktop_app.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    note,
    one_line_parser_errors,
    report,
    resolve_model,
)
from desktop_app.engine.prompting import (
    REASONING_EFFORTS,
    BuiltPrompt,
    PromptError,
    Turn,
    build_prompt,
    thinking_control,
)
from desktop_app.engine.protocol import PromptToken
from desktop_app.models import gguf
from desktop_app.models.catalog import ModelEntry, PromptStyle
from desktop_app.models.sources import FileSource, RemoteSource
from desktop_app.text.thinking import format_in_template

TEMPLATE_KEY = "tokenizer.chat_template"
BOS_KEY, EOS_KEY = "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"


class PromptFailed(Exception):
    """The prompt cannot be shown (model missing, unreadable header; one sentence)."""


def add_prompt_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``triptych prompt`` on the main parser's subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "prompt", help="print the exact prompt a model would receive, without generating")
    parser.add_argument("question", help="the question ('-' reads it from standard input)")
    parser.add_argument("--model", metavar="ID", help="a catalog model (its file must be here)")
    parser.add_argument("--template", metavar="FILE.jinja", help="a chat template file")
    parser.add_argument("--bos", metavar="TEXT", help="the BOS token text the template sees")
    parser.add_argument("--eos", metavar="TEXT", help="the EOS token text the template sees")
    parser.add_argument("--system", metavar="TEXT", help="system prompt for chat models")
    parser.add_argument("--no-thinking", action="store_true",
                        help="the prompt with thinking turned off (where the model allows)")
    parser.add_argument("--reasoning-effort", metavar="LEVEL",
                        help="low, medium or high (gpt-oss and other harmony models)")
    parser.add_argument("--history", metavar="FILE.json",
                        help='earlier turns: [{"user": ..., "assistant": ...}, ...] '
                             'or chat messages [{"role": ..., "content": ...}, ...]')
    parser.add_argument("--tokens", action="store_true",
                        help="with --model: the prompt as the model's tokens (id, text, "
                             "special or not)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object: prompt, stop, notes, thinking switch (and "
                             "tokens)")
    one_line_parser_errors(parser, "prompt")
    return parser


# ------------------------------------------------------------------------ GGUF header


def read_model_prompting(path: Path) -> tuple[str | None, str, str]:
    """The chat template and the BOS and EOS token texts from a GGUF file's header."""
    try:
        meta = gguf.read_metadata(path, keys=[TEMPLATE_KEY, BOS_KEY, EOS_KEY])
        ids = {meta[key] for key in (BOS_KEY, EOS_KEY) if isinstance(meta.get(key), int)}
        texts = gguf.token_texts(path, ids)
    except (OSError, gguf.GGUFError) as exc:
        raise PromptFailed(f"Cannot read the header of {path.name}: {exc}.") from None
    template = meta.get(TEMPLATE_KEY)
    bos, eos = (texts.get(meta.get(key, -1), "") for key in (BOS_KEY, EOS_KEY))
    return (template if isinstance(template, str) else None), bos, eos


# ------------------------------------------------------------------------------ input


def read_history(path: str) -> tuple[Turn, ...]:
    """Earlier turns from JSON: user/assistant pairs, or alternating chat messages."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"Cannot read --history {path}: {exc.strerror or exc}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--history {path} is not valid JSON ({exc}).") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise UsageError(f"--history {path} must hold a JSON list of objects.")
    if all("user" in item for item in data):
        pairs = [(item.get("user"), item.get("assistant", "")) for item in data]
    else:
        roles = [item.get("role") for item in data]
        if roles != ["user", "assistant"] * (len(data) // 2):
            raise UsageError(f"--history {path} must alternate user and assistant "
                                   "messages, starting with a user message.")
        contents = [item.get("content") for item in data]
        pairs = list(zip(contents[::2], contents[1::2], strict=True))
    if not all(isinstance(user, str) and isinstance(answer, str) for user, answer in pairs):
        raise UsageError(f"--history {path}: every message must be text.")
    return tuple(Turn(user, answer) for user, answer in pairs)


def template_entry(path: Path, template: str) -> ModelEntry:
    """A stand-in catalog entry for a bare template: its thinking format read from it."""
    thinking = format_in_template(template).name
    return ModelEntry(id=path.stem, name=path.name,
                      role="reasoning" if thinking != "none" else "instruct",
                      family="", source=FileSource(path=str(path)),
                      prompt=PromptStyle(style="chat", thinking=thinking))


def _model_file(entry: ModelEntry) -> Path | None:
    """The file whose header holds *entry*'s chat template; None for a document model."""
    from desktop_app.models.catalog import availability, local_path, missing_message

    if entry.prompt.style == "document":
        return None  # no template needed: the document wrapping is the catalog's
    path = local_path(entry)
    if path is None:
        reason = missing_message(entry, availability(entry)).rstrip(".")
        raise PromptFailed(f"{reason}; or give its template with --template FILE.jinja.")
    return path


# ------------------------------------------------------------------------------- run


def prompt_for(args: argparse.Namespace) -> tuple[ModelEntry, str | None, BuiltPrompt]:
    """The entry, its template and the built prompt for the command's arguments."""
    if bool(args.model) == bool(args.template):
        raise UsageError("Give exactly one of --model ID or --template FILE.jinja.")
    if args.tokens and not args.model:
        raise UsageError("--tokens goes with --model ID: the tokens come from the model's own "
                         "vocabulary.")
    if args.reasoning_effort is not None and args.reasoning_effort not in REASONING_EFFORTS:
        raise UsageError("--reasoning-effort must be low, medium or high.")
    question = args.question if args.question != "-" else sys.stdin.read()
    if not question.strip():
        raise UsageError("The question is empty.")
    history = read_history(args.history) if args.history else ()
    bos = eos = ""
    template: str | None = None
    if args.template:
        path = Path(args.template)
        try:
            template = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise UsageError(f"Cannot read the template {path}: {reason}.") from None
        entry = template_entry(path, template)
    else:
        entry = resolve_model(args.model)
        if args.tokens and isinstance(entry.source, RemoteSource):
            raise PromptFailed(f"{entry.id} runs on a server, whose tokenizer is the server's: "
                               "its tokens cannot be shown here.")
        model_path = _model_file(entry)
        if model_path is not None:
            template, bos, eos = read_model_prompting(model_path)
    bos = args.bos if args.bos is not None else bos
    eos = args.eos if args.eos is not None else eos
    built = build_prompt(entry, question, chat_template=template, bos_token=bos, eos_token=eos,
                         history=history, system_prompt=args.system,
                         thinking=not args.no_thinking, reasoning_effort=args.reasoning_effort)
    return entry, template, built


def prompt_tokens(entry: ModelEntry, text: str) -> tuple[PromptToken, ...]:
    """The prompt as the model's tokenizer splits it: its vocabulary is loaded (not its
    weights) and the text tokenized as the model process does."""
    from desktop_app.engine.llama.vocab import Vocabulary
    from desktop_app.models.catalog import ensure_local
    from desktop_app.models.sources import CatalogError

    try:
        path = ensure_local(entry)
    except CatalogError as exc:
        raise PromptFailed(str(exc)) from None
    try:
        with Vocabulary.open(path) as vocabulary:
            return vocabulary.describe(vocabulary.prompt_ids(text))
    except ValueError as exc:
        raise PromptFailed(str(exc)) from None


def token_lines(tokens: tuple[PromptToken, ...]) -> list[str]:
    """One line per token (position, id, its text with blanks made visible, "special"),
    then the count."""
    from desktop_app.session.tokens import shown_token
    from desktop_app.text.escape import visible_controls

    width = len(str(max((token.id for token in tokens), default=0)))
    lines = [f"{index:>5}  {token.id:>{width}}  "
             + (f"{visible_controls(shown_token(token.text)):<24} special" if token.special
                else visible_controls(shown_token(token.text)))
             for index, token in enumerate(tokens)]
    specials = sum(token.special for token in tokens)
    lines.append(f"{len(tokens)} tokens, {specials} special (· is a space, ↵ a line break)")
    return lines


def run_prompt(args: argparse.Namespace) -> int:
    """Print the prompt; a failure is one line on stderr and exit status 1 (a usage
    mistake raises :class:`UsageError`)."""
    from desktop_app.text.escape import visible_controls

    try:
        entry, template, built = prompt_for(args)
        tokens = prompt_tokens(entry, built.text) if args.tokens else None
    except (PromptFailed, PromptError) as exc:
        return report(exc, EXIT_FAILED)
    out = sys.stdout
    if args.json:
        control = thinking_control(entry, template) if entry.prompt.style == "chat" else None
        extra = {} if tokens is None else {
            "n_tokens": len(tokens),
            "tokens": [{"id": t.id, "text": t.text, "special": t.special} for t in tokens]}
        out.write(json.dumps({
            "model": entry.id,
            "prompt": built.text,
            "stop": list(built.stop),
            "starts_in_thinking": built.starts_in_thinking,
            "thinking_format": entry.prompt.thinking,
            "thinking_switch": control.switch.value if control else None,
            "thinking_flag": control.flag if control else None,
            "notes": list(built.notes),
            **extra,
        }) + "\n")  # ASCII: escapes keep control and bidi characters visible
        return EXIT_OK
    text = built.text if tokens is None else "\n".join(token_lines(tokens)) + "\n"
    if out.isatty():  # a model file's template must not drive the terminal
        text = visible_controls(text)
        text += "" if text.endswith("\n") else "\n"
    out.write(text)
    out.flush()
    for adapted in built.notes:
        note(adapted)
    if built.starts_in_thinking:
        note("the prompt ends inside the model's thinking block.")
    return EXIT_OK
