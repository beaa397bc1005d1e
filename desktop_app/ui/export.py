"""Export a comparison (prompt, each pane's thinking, answer, metrics) for handouts.

Reads the panes' conversation data (:meth:`desktop_app.conversation.PaneSession.export`),
never the text of labels on screen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from desktop_app.text.escape import html as escape_html
from desktop_app.ui import theme
from desktop_app.ui.markdown import markdown_to_html_fragment
from desktop_app.ui.widgets import thinking_header


def _thinking_summary(turn: dict[str, Any]) -> str:
    """The fold's header, from the turn's data (``Thought for 14 s · 812 tokens``)."""
    return thinking_header(False, turn.get("thinking_s"), int(turn.get("thinking_tokens") or 0))


def to_markdown(panes: list[dict[str, Any]], title: str = "Triptych comparison") -> str:
    lines = [f"# {title}", "", f"_{datetime.now():%Y-%m-%d %H:%M}_", ""]
    for number, pane in enumerate(panes, 1):
        lines += [f"## {number}. {pane['model']} ({pane['role']})", ""]
        if not pane["turns"]:
            lines += ["_(no output)_", ""]
        for turn in pane["turns"]:
            lines += ["**Prompt:**", "", _quote(turn["prompt"]), ""]
            if pane["role"] == "base" and turn.get("prompt_sent"):
                lines += ["<details><summary>Document the base model received</summary>", "",
                          "```text", turn["prompt_sent"], "```", "", "</details>", ""]
            if turn.get("thinking"):
                summary = _thinking_summary(turn)
                lines += [f"<details><summary>{escape_html(summary)}</summary>", "",
                          _quote(turn["thinking"]), "", "</details>", ""]
            lines += ["**Answer:**", "", turn["answer"].strip() or "_(empty)_", ""]
            if turn.get("error"):
                lines += [f"> **Error:** {turn['error']}", ""]
            if turn.get("metrics"):
                lines += [f"_{turn['metrics']}_", ""]
            if turn.get("verdict"):
                lines += [f"Verified: **{turn['verdict']}**", ""]
    return "\n".join(lines).rstrip() + "\n"


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.strip().splitlines())


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
.metrics { color: #718096; font-size: 12px; margin-top: 8px; }
.error { color: #c53030; }
@media (prefers-color-scheme: dark) {
  body { background: #1a1d23; color: #e2e8f0; } .pane { border-color: #3a4150; }
  .prompt, pre { background: #2a2f3a; } .thinking, summary { color: #a0a8b8; }
}
"""


def to_html(panes: list[dict[str, Any]], title: str = "Triptych comparison") -> str:
    """A self-contained HTML page (inline CSS, no scripts, no external files)."""
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape_html(title)}</title>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape_html(title)}</h1>",
        f"<p class='date'>{datetime.now():%Y-%m-%d %H:%M}</p>",
        "<div class='grid'>",
    ]
    for pane in panes:
        color = theme.role_color(pane["role"])
        parts.append(f"<section class='pane' style='border-top-color:{color}'>")
        parts.append(f"<span class='badge' style='background:{color}'>"
                     f"{escape_html(pane['role'].upper())}</span>"
                     f"<span class='model'>{escape_html(pane['model'])}</span>")
        for turn in pane["turns"]:
            parts.append(f"<p class='prompt'>{escape_html(turn['prompt'])}</p>")
            if pane["role"] == "base" and turn.get("prompt_sent"):
                parts.append("<details><summary>Document the base model received</summary>"
                             f"<pre>{escape_html(turn['prompt_sent'])}</pre></details>")
            if turn.get("thinking"):
                summary = _thinking_summary(turn)
                parts.append(f"<details><summary>{escape_html(summary)}</summary>"
                             f"<div class='thinking'>{escape_html(turn['thinking'])}</div>"
                             "</details>")
            parts.append(f"<div class='answer'>{markdown_to_html_fragment(turn['answer'])}</div>")
            if turn.get("error"):
                parts.append(f"<p class='error'>{escape_html(turn['error'])}</p>")
            if turn.get("metrics"):
                parts.append(f"<p class='metrics'>{escape_html(turn['metrics'])}</p>")
            if turn.get("verdict"):
                parts.append(f"<p class='metrics'>Verified: {escape_html(turn['verdict'])}</p>")
        parts.append("</section>")
    parts += ["</div>", "</body></html>"]
    return "\n".join(parts)
