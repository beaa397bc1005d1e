"""Export a comparison (prompt, each pane's thinking, answer, metrics) for handouts.

Reads the panes' conversation data (:meth:`desktop_app.session.pane.PaneSession.export`),
never the text of labels on screen. What a model wrote cannot change the handout's own
structure: in Markdown, prompts, thinking and errors are quoted literally (every Markdown
character escaped), a chat answer is quoted with its raw HTML escaped, and a base model's
exact continuation sits in a fence longer than any backtick run in it; in HTML, answers go
through the window's renderer (:func:`desktop_app.ui.markdown.render_html`: raw HTML as
text, no ``javascript:`` links) and the page has no scripts.
"""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt
from PySide6.QtCore import QDateTime, QLocale

from desktop_app.rollouts.summary import RunFigures
from desktop_app.session.turn import thinking_header
from desktop_app.text import i18n
from desktop_app.text.escape import html as escape_html
from desktop_app.text.i18n import N_, _, ngettext, number
from desktop_app.ui import theme
from desktop_app.ui.markdown import render_html
from desktop_app.verify.verdict import (
    VerdictState,
    got_in_headline,
    verdict_headline,
    verdict_title,
)


def _thinking_summary(turn: dict[str, Any]) -> str:
    """The fold's header, from the turn's data (``Thought for 14 s · 812 tokens``)."""
    return thinking_header(False, turn.get("thinking_s"), int(turn.get("thinking_tokens") or 0),
                           still_thinking=bool(turn.get("still_thinking")),
                           finish_reason=turn.get("finish_reason"))


def pane_title(pane: dict[str, Any]) -> str:
    """``Qwen3 0.6B (thinking) · reasoning``: the role once, even if the name has it."""
    name, role = str(pane.get("model") or ""), str(pane.get("role") or "")
    if not role or role.lower() in name.lower():
        return name
    return f"{name} · {role}"


def verdict_label(raw: Any) -> str:
    """``✓ Passed``, from Verify's one label table ('' if not checked)."""
    return verdict_title(raw) if raw else ""


def verdict_line(turn: dict[str, Any]) -> str:
    """``✓ Passed · expected 20 · got 20``, ``• Answer found: 4 · no key to check against``:
    the window's headline, from Verify's one label table ('' if none)."""
    raw = turn.get("verdict")
    if not raw:
        return ""
    detail = turn.get("verdict_detail") or {}
    got = detail.get("got")
    parts = [verdict_headline(raw, got)]
    if detail.get("expected"):
        parts.append(_("expected {value}").format(value=detail["expected"]))
    if got and not got_in_headline(raw, got):
        parts.append(_("got {value}").format(value=got))
    if detail.get("reason"):
        parts.append(str(detail["reason"]))
    return " · ".join(parts)


ROLLOUT_COLUMNS = (N_("Seed"), N_("Verdict"), N_("Got"), N_("Thinking tokens"))


def rollout_columns() -> list[str]:
    """The rollouts table's header, in the window's language."""
    return [_(name) for name in ROLLOUT_COLUMNS]


def when() -> str:
    """Now, the locale's way (``Monday, January 5, 2026, 3:04 PM``; German in German)."""
    locale, now = QLocale(), QDateTime.currentDateTime()
    return _("{date}, {time}").format(
        date=locale.toString(now.date(), QLocale.FormatType.LongFormat),
        time=locale.toString(now.time(), QLocale.FormatType.ShortFormat))


def _one_line(value: Any) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def rollouts_heading(run: dict[str, Any]) -> str:
    """``Rollouts ×8 · Qwen3 0.6B · thinking budget 256``."""
    parts = [_("Rollouts ×{n}").format(n=run.get("n", 0)), _one_line(run.get("model"))]
    if run.get("thinking_budget") is not None:
        parts.append(_("thinking budget {tokens}").format(tokens=run["thinking_budget"]))
    return " · ".join(part for part in parts if part)


def rollouts_figures(run: dict[str, Any]) -> list[str]:
    """The run's figures, one line each, in the one wording (plain text, escaped by each
    format)."""
    return RunFigures.of(run).lines()


def rollouts_run(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The rollouts the model finished: those it failed to finish are counted in the
    figures ("3 of 8 rollouts failed", and why), never listed as if they had run."""
    return [r for r in run.get("rollouts") or [] if r.get("finish_reason") != "error"]


def rollout_cells(rollout: dict[str, Any]) -> list[str]:
    """A table row: seed, verdict, got, thinking tokens (plain text, one line each)."""
    tokens = rollout.get("thinking_tokens")
    return [_one_line(rollout.get("seed")), verdict_label(rollout.get("verdict")) or "–",
            _one_line(rollout.get("got")) or "–", "" if tokens is None else str(tokens)]


RLHF_HEADING = N_("The class's votes (RLHF)")
# the ranking table's columns, by key (the labels in the window's language)
RLHF_COLUMNS = {"rank": N_("Rank"), "answer": N_("Answer"), "strength": N_("Strength"),
                "interval": N_("95% interval"), "votes": N_("Votes"),
                "judge": N_("Judge P(yes)"), "model": N_("Model"), "text": N_("Text")}


def rlhf_column_keys(rlhf: dict[str, Any]) -> tuple[str, ...]:
    """The ranking table's columns: a model's column only where the answers name one
    (never in the blind quiz), the judge's where it scored them."""
    answers = rlhf.get("answers") or []
    return ("rank", "answer", "strength", "interval", "votes",
            *(("judge",) if any("judge_p_yes" in a for a in answers) else ()),
            *(("model",) if any(a.get("model") for a in answers) else ()), "text")


def rlhf_columns(rlhf: dict[str, Any]) -> tuple[str, ...]:
    """The ranking table's header, in the window's language."""
    return tuple(_(RLHF_COLUMNS[key]) for key in rlhf_column_keys(rlhf))


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "") + number(value, 2)


def rlhf_rows(rlhf: dict[str, Any]) -> list[list[str]]:
    """The answers strongest first, one row each (plain text, one line per cell)."""
    columns = rlhf_column_keys(rlhf)
    answers = rlhf.get("answers") or []
    rows = []
    for rank, index in enumerate(rlhf.get("ranking") or range(len(answers)), 1):
        answer = answers[index]
        low, high = answer["interval"]
        cells = [str(rank), f"#{index}", _signed(answer["strength"]),
                 _("[{low}, {high}]").format(low=_signed(low), high=_signed(high)),
                 str(answer["votes"])]
        if "judge" in columns:
            score = answer.get("judge_p_yes")
            cells.append("–" if score is None else number(score, 2))
        if "model" in columns:
            cells.append(_one_line(answer.get("model")))
        cells.append(_one_line(answer.get("text")))
        rows.append(cells)
    return rows


def rlhf_notes(rlhf: dict[str, Any]) -> list[str]:
    """One line each: how many votes, and the judge (by name, unless blind)."""
    votes = rlhf.get("votes") or []
    answers = len(rlhf.get("answers") or [])
    notes = [ngettext("{votes} pairwise votes on {n} answer; Bradley–Terry strengths, "
                      "strongest first.", "{votes} pairwise votes on {n} answers; "
                      "Bradley–Terry strengths, strongest first.", answers).format(
                          votes=len(votes), n=answers)]
    if rlhf.get("judge_model"):
        notes.append(_("Judge: {model}.").format(model=rlhf["judge_model"]))
    return notes


def rlhf_votes_csv(rlhf: dict[str, Any]) -> str:
    return "a,b,winner\n" + "".join(f"{v['a']},{v['b']},{v['winner']}\n"
                                    for v in rlhf.get("votes") or [])


# ------------------------------------------------------------------------------ Markdown


def _markdown_rollouts(run: dict[str, Any]) -> list[str]:
    lines = [f"### {_literal(rollouts_heading(run))}", ""]
    if run.get("prompt"):
        lines += [_quote(_literal(run["prompt"])), ""]
    lines += [_literal(line) + "  " for line in rollouts_figures(run)]
    if not rollouts_run(run):
        return [*lines, ""]
    lines += ["", "| " + " | ".join(rollout_columns()) + " |", "|---:|---|---|---:|"]
    for rollout in rollouts_run(run):
        lines.append("| " + " | ".join(_literal(cell) if cell else " "
                                       for cell in rollout_cells(rollout)) + " |")
    return [*lines, ""]

_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<&~|])")  # emphasis, code, links, HTML, tables
_LINE_START = re.compile(r"^(\s*)([#>+=-]|\d+(?=[.)]))")  # headings, quotes, lists
_CODE_SPAN = re.compile(r"(`+)(?:.+?)(?<!`)\1(?!`)", re.DOTALL)


def _literal(text: str) -> str:
    """Text shown exactly as written: the Markdown characters that could make structure
    (headings, lists, HTML, emphasis, code) escaped, and every line break kept."""
    def one(line: str) -> str:
        line = _INLINE_SPECIAL.sub(r"\\\1", line)
        match = _LINE_START.match(line)
        if match and match.group(2).isdigit():  # "1." would start a list: escape the dot
            end = match.end()
            return line[:end] + "\\" + line[end:]
        return _LINE_START.sub(r"\1\\\2", line)
    lines = [one(line) if line.strip() else "" for line in text.strip().splitlines()]
    # a backslash at the end of a line is a hard break (none before a blank line: there
    # it would show as a backslash)
    return "\n".join(line + "\\" if line and i + 1 < len(lines) and lines[i + 1] else line
                     for i, line in enumerate(lines))


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


def _fence(text: str, info: str = "text") -> list[str]:
    """``text`` verbatim in a fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{info}", text.rstrip("\n"), fence]


SENT = N_("Document the base model received")
HEADING_SHIFT = 3  # an answer's "# Title" becomes a level-4 heading, under the pane's


def _contained(markdown: str) -> str:
    """A chat answer's Markdown that cannot break the export around it: every ``<``
    outside code escaped, so the model's raw HTML (``</details>``, ``<script>``) shows as
    text, as in the window; its headings moved below the export's own."""
    lines = markdown.splitlines()
    code_lines: set[int] = set()
    tokens = MarkdownIt("commonmark").parse(markdown)
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map:
            code_lines.update(range(*token.map))
        elif token.type == "heading_open" and token.map:
            level = min(6, int(token.tag[1:]) + HEADING_SHIFT)
            start, end = token.map
            if token.markup.startswith("#"):  # ATX: "# Title"
                lines[start] = re.sub(r"^(\s*)#+", r"\g<1>" + "#" * level, lines[start],
                                      count=1)
            else:  # setext: "Title" over "====="
                text = " ".join(line.strip() for line in lines[start:end - 1])
                lines[start] = "#" * level + " " + text
                for index in range(start + 1, end):
                    lines[index] = ""

    def outside_spans(line: str) -> str:
        out, last = [], 0
        for match in _CODE_SPAN.finditer(line):
            out.append(line[last:match.start()].replace("<", "\\<"))
            out.append(match.group(0))
            last = match.end()
        out.append(line[last:].replace("<", "\\<"))
        return "".join(out)

    return "\n".join(line if i in code_lines else outside_spans(line)
                     for i, line in enumerate(lines))


def _markdown_rlhf(rlhf: dict[str, Any]) -> list[str]:
    lines = [f"## {_literal(_(RLHF_HEADING))}", ""]
    if rlhf.get("prompt"):
        lines += ["**" + _("Prompt:") + "**", "", _quote(_literal(rlhf["prompt"])), ""]
    lines += [_literal(note) + "  " for note in rlhf_notes(rlhf)]
    keys = rlhf_column_keys(rlhf)
    lines += ["", "| " + " | ".join(rlhf_columns(rlhf)) + " |",
              "|" + "|".join("---" if c in ("model", "text") else "---:" for c in keys) + "|"]
    for row in rlhf_rows(rlhf):
        # a cell is one line: only inline Markdown (and the table's "|") needs escaping
        lines.append("| " + " | ".join(_INLINE_SPECIAL.sub(r"\\\1", cell) if cell else " "
                                       for cell in row) + " |")
    lines += ["", _("**Votes** (answer indices from 0; winner `a`, `b` or `tie`):"), "",
              *_fence(rlhf_votes_csv(rlhf), "csv"), ""]
    return lines


def to_markdown(panes: list[dict[str, Any]], title: str | None = None,
                rlhf: dict[str, Any] | None = None) -> str:
    """The comparison as Markdown, in the window's language; ``rlhf``: the class's votes
    (:func:`desktop_app.rollouts.rlhf.export_summary`), after the panes."""
    title = _("Triptych comparison") if title is None else title
    prompt, answer_label = "**" + _("Prompt:") + "**", "**" + _("Answer:") + "**"
    lines = [f"# {title}", "", f"_{_literal(when())}_", ""]
    for place, pane in enumerate(panes, 1):
        lines += [f"## {place}. {_literal(pane_title(pane))}", ""]
        if pane.get("missing"):
            lines += ["_" + _literal(_("Not run: {reason}").format(reason=pane["missing"]))
                      + "_", ""]
        elif not pane["turns"]:
            lines += ["_" + _literal(_("(no output)")) + "_", ""]
        base = pane["role"] == "base"
        for turn in pane["turns"]:
            lines += [prompt, "", _quote(_literal(turn["prompt"])), ""]
            if base and turn.get("prompt_sent"):
                lines += [f"<details><summary>{escape_html(_(SENT))}</summary>", "",
                          *_fence(turn["prompt_sent"]), "", "</details>", ""]
            for note in turn.get("prompt_notes") or ():  # how the prompt was adapted
                lines += [f"_{_literal(note)}_", ""]
            if turn.get("thinking"):
                summary = _thinking_summary(turn)
                lines += [f"<details><summary>{escape_html(summary)}</summary>", "",
                          _quote(_literal(turn["thinking"])), "", "</details>", ""]
            answer = turn["answer"]
            lines += [answer_label, ""]
            if not answer.strip():
                lines += ["_" + _literal(_("(empty)")) + "_", ""]
            elif base:  # the exact continuation, not Markdown
                lines += [_literal(answer), ""]
            else:
                lines += [_contained(answer.strip()), ""]
            if turn.get("error"):
                lines += ["> **" + _("Error:") + f"** {_literal(turn['error'])}", ""]
            if turn.get("metrics"):
                lines += [f"_{_literal(turn['metrics'])}_", ""]
            verdict = verdict_line(turn)
            if verdict:
                lines += [_("Verify:") + f" **{_literal(verdict)}**", ""]
        if pane.get("rollouts"):
            lines += _markdown_rollouts(pane["rollouts"])
    if rlhf:
        lines += _markdown_rlhf(rlhf)
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px;
       color: #1a202c; background: #fff; }
h1 { font-size: 22px; } .date { color: #718096; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 16px; }
.pane { border: 1px solid #d5dae1; border-radius: 8px; padding: 12px; border-top-width: 4px; }
.badge { display: inline-block; color: #fff; border-radius: 8px; padding: 1px 8px;
         font-size: 11px; font-weight: 600; }
.model { font-weight: 600; margin-left: 6px; }
.prompt { background: #f1f3f6; border-radius: 6px; padding: 6px 8px; white-space: pre-wrap; }
details { margin: 8px 0; } summary { cursor: pointer; color: #5a6270; }
.thinking { white-space: pre-wrap; color: #5a6270; border-left: 3px solid #7b3fc4;
            padding-left: 8px; font-size: 90%; }
pre, code { font-family: ui-monospace, 'SF Mono', Menlo, Consolas, monospace; }
pre { background: #f4f5f7; padding: 8px; border-radius: 6px; overflow-x: auto;
      white-space: pre-wrap; }
pre.continuation { background: none; border-left: 3px solid #d5dae1; border-radius: 0; }
.metrics { color: #718096; font-size: 12px; margin-top: 8px; }
.note { color: #718096; font-size: 12px; margin: 4px 0; }
.verdict { font-weight: 600; } .verdict.pass { color: #2f855a; } .verdict.fail { color: #c53030; }
.error, .missing { color: #c53030; }
.rollouts h3 { font-size: 15px; margin: 16px 0 4px; }
.rollouts table { border-collapse: collapse; font-size: 12px; }
.rollouts th, .rollouts td { border-bottom: 1px solid #d5dae1; padding: 2px 8px; text-align: left; }
.rlhf { margin-top: 24px; } .rlhf h2 { font-size: 18px; }
.rlhf table { border-collapse: collapse; font-size: 13px; }
.rlhf th, .rlhf td { border-bottom: 1px solid #d5dae1; padding: 2px 8px; text-align: left;
                     vertical-align: top; }
@media (prefers-color-scheme: dark) {
  body { background: #1a1d23; color: #e2e8f0; } .pane { border-color: #3a4150; }
  .prompt, pre { background: #2a2f3a; } .thinking, summary { color: #a0a8b8; }
}
"""


def _verdict_class(turn: dict[str, Any]) -> str:
    raw = turn.get("verdict")
    if raw == VerdictState.PASS:
        return "verdict pass"
    if raw in (VerdictState.FAIL, VerdictState.ERROR, VerdictState.TIMEOUT):
        return "verdict fail"
    return "verdict"


def _html_rollouts(run: dict[str, Any]) -> str:
    parts = [f"<section class='rollouts'><h3>{escape_html(rollouts_heading(run))}</h3>"]
    if run.get("prompt"):
        parts.append(f"<p class='prompt'>{escape_html(run['prompt'])}</p>")
    parts += [f"<p class='metrics'>{escape_html(line)}</p>" for line in rollouts_figures(run)]
    if not rollouts_run(run):
        return "".join(parts) + "</section>"
    parts.append("<table><tr>" + "".join(f"<th>{escape_html(name)}</th>"
                                         for name in rollout_columns()) + "</tr>")
    for rollout in rollouts_run(run):
        parts.append("<tr>" + "".join(f"<td>{escape_html(cell)}</td>"
                                      for cell in rollout_cells(rollout)) + "</tr>")
    parts.append("</table></section>")
    return "".join(parts)


def _html_rlhf(rlhf: dict[str, Any]) -> str:
    parts = [f"<section class='rlhf'><h2>{escape_html(_(RLHF_HEADING))}</h2>"]
    if rlhf.get("prompt"):
        parts.append(f"<p class='prompt'>{escape_html(rlhf['prompt'])}</p>")
    parts += [f"<p class='metrics'>{escape_html(note)}</p>" for note in rlhf_notes(rlhf)]
    parts.append("<table><tr>" + "".join(f"<th>{escape_html(c)}</th>"
                                         for c in rlhf_columns(rlhf)) + "</tr>")
    for row in rlhf_rows(rlhf):
        parts.append("<tr>" + "".join(f"<td>{escape_html(cell)}</td>" for cell in row)
                     + "</tr>")
    votes = escape_html(_("Votes (a, b, winner)"))
    parts.append(f"</table><details><summary>{votes}</summary>"
                 f"<pre>{escape_html(rlhf_votes_csv(rlhf))}</pre></details></section>")
    return "".join(parts)


def to_html(panes: list[dict[str, Any]], title: str | None = None,
            rlhf: dict[str, Any] | None = None) -> str:
    """A self-contained HTML page (inline CSS, no scripts, no external files) in the
    window's language; ``rlhf``: the class's votes, after the panes."""
    title = _("Triptych comparison") if title is None else title
    lang = i18n.language() if i18n.language() in i18n.LANGUAGES else i18n.SOURCE_LANGUAGE
    parts = [
        "<!DOCTYPE html>", f"<html lang='{lang}'><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{escape_html(title)}</title>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape_html(title)}</h1>",
        f"<p class='date'>{escape_html(when())}</p>",
        "<div class='grid'>",
    ]
    for pane in panes:
        color = theme.role_color(pane["role"])
        base = pane["role"] == "base"
        parts.append(f"<section class='pane' style='border-top-color:{color}'>")
        parts.append(f"<span class='badge' style='background:{color}'>"
                     f"{escape_html((pane['role'] or '?').upper())}</span>"
                     f"<span class='model'>{escape_html(pane['model'])}</span>")
        if pane.get("missing"):
            parts.append("<p class='missing'>" + escape_html(_("Not run: {reason}").format(
                reason=pane["missing"])) + "</p>")
        for turn in pane["turns"]:
            parts.append(f"<p class='prompt'>{escape_html(turn['prompt'])}</p>")
            if base and turn.get("prompt_sent"):
                parts.append(f"<details><summary>{escape_html(_(SENT))}</summary>"
                             f"<pre>{escape_html(turn['prompt_sent'])}</pre></details>")
            for note in turn.get("prompt_notes") or ():
                parts.append(f"<p class='note'>{escape_html(note)}</p>")
            if turn.get("thinking"):
                summary = _thinking_summary(turn)
                parts.append(f"<details><summary>{escape_html(summary)}</summary>"
                             f"<div class='thinking'>{escape_html(turn['thinking'])}</div>"
                             "</details>")
            if base:
                answer = f"<pre class='continuation'>{escape_html(turn['answer'])}</pre>"
            else:
                answer = render_html(turn["answer"])
            parts.append(f"<div class='answer'>{answer}</div>")
            if turn.get("error"):
                parts.append(f"<p class='error'>{escape_html(turn['error'])}</p>")
            if turn.get("metrics"):
                parts.append(f"<p class='metrics'>{escape_html(turn['metrics'])}</p>")
            verdict = verdict_line(turn)
            if verdict:
                label = escape_html(_("Verify:"))
                parts.append(f"<p class='{_verdict_class(turn)}'>{label} "
                             f"{escape_html(verdict)}</p>")
        if pane.get("rollouts"):
            parts.append(_html_rollouts(pane["rollouts"]))
        parts.append("</section>")
    parts.append("</div>")
    if rlhf:
        parts.append(_html_rlhf(rlhf))
    parts.append("</body></html>")
    return "\n".join(parts)
