"""``triptych rlhf``: RLHF's three steps on one prompt, from the class's votes.

    triptych rlhf PROMPT --models IDS -n N [--votes FILE.csv] [--expect VALUE]
        [--judge ID] [--seed S] [--temperature T] [--max-tokens M] [--json]

Samples N answers (dealt across the models), reads the class's pairwise votes (CSV lines
``a,b,winner``: answer indices from 0, winner ``a``, ``b`` or ``tie``) and prints the
answers, the Bradley–Terry ``strengths`` (one per answer, in answer order, with 95 %
intervals), the reward model's held-out agreement with the votes beside the proxies'
(the longest answer; with ``--judge``, that model's P("yes")), and the best-of-n curve
(``best_of_n: [{n, reward, gold}]``). The reward model's features are the first model's
own embeddings of the answers plus text features. With ``--expect`` the key is the gold.

With ``--seed`` the answers are reproducible: run once to read them, vote, run again with
``--votes``. Misuse is one sentence on stderr and exit status 2; a model that fails, 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from desktop_app.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    one_line_parser_errors,
    report,
    resolve_model,
    resolve_models,
)
from desktop_app.text.escape import visible_controls


def add_rlhf_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``triptych rlhf`` on the main parser's subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "rlhf", help="rank answers from votes, train a reward model, best-of-N against it",
        description="Sample N answers, read the class's pairwise votes, fit Bradley-Terry "
        "strengths, train a reward model on the votes (held-out agreement beside the "
        "proxies) and print the best-of-N curve: reward model vs gold.")
    parser.add_argument("prompt", help="the question ('-' reads standard input)")
    parser.add_argument("--models", required=True, help="comma-separated model ids")
    parser.add_argument("-n", type=int, default=8, metavar="N",
                        help="answers in all, 2 to 64 (default 8)")
    parser.add_argument("--votes", metavar="FILE.csv",
                        help="pairwise votes, lines a,b,winner (winner a, b or tie)")
    parser.add_argument("--expect", metavar="VALUE",
                        help="a final answer key: the gold of best-of-N is then the key")
    parser.add_argument("--judge", metavar="ID",
                        help="a chat model whose P(\"yes\") is scored as a proxy too")
    parser.add_argument("--seed", type=int, metavar="S", help="makes the answers reproducible")
    parser.add_argument("--temperature", type=float, metavar="T",
                        help="sampling temperature (default: the model's)")
    parser.add_argument("--max-tokens", type=int, metavar="M", help="token limit per answer")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    one_line_parser_errors(parser, "rlhf")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    from desktop_app.rollouts.rlhf import MAX_ANSWERS

    if not 2 <= args.n <= MAX_ANSWERS:
        raise UsageError(f"-n must be between 2 and {MAX_ANSWERS}.")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1.")
    if args.temperature is not None and args.temperature < 0:
        raise UsageError("--temperature cannot be negative.")
    if args.expect is not None and not args.expect.strip():
        raise UsageError("--expect needs a value: an empty answer key checks nothing.")


def _read_votes(path: str | None, n: int) -> list[Any]:
    from desktop_app.rollouts.preferences import VoteError, parse_votes

    if path is None:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"Cannot read --votes {path}: {reason}.") from None
    try:
        return parse_votes(text, n)
    except VoteError as exc:
        raise UsageError(f"--votes {path}: {exc}") from None


def run_rlhf_command(args: argparse.Namespace) -> int:
    """``triptych rlhf``; returns the exit status."""
    from desktop_app.engine.protocol import EmbeddingError
    from desktop_app.engine.worker import open_worker
    from desktop_app.rollouts.goodhart import judge_scores
    from desktop_app.rollouts.rlhf import RlhfSession, analyse, embed_answers, sample_answers
    from desktop_app.rollouts.run import AnswerKey

    _check_args(args)
    entries = resolve_models(args.models)
    judge = resolve_model(args.judge) if args.judge else None
    prompt = args.prompt if args.prompt != "-" else sys.stdin.read()
    if not prompt.strip():
        raise UsageError("The prompt is empty.")
    votes = _read_votes(args.votes, args.n)
    workers = [open_worker(entry) for entry in entries]
    session = RlhfSession(prompt=prompt.strip())
    try:
        if not args.json:
            print(f"[{', '.join(e.id for e in entries)}] {args.n} answers…", file=sys.stderr)
        try:
            session.answers = sample_answers(
                workers, session.prompt, args.n, AnswerKey(expect=args.expect),
                seed=args.seed, max_tokens=args.max_tokens, temperature=args.temperature)
            if len(session.answers) < args.n:
                return report(f"only {len(session.answers)} of {args.n} answers came back.",
                              EXIT_FAILED)
            session.votes = votes
            session.embeddings = embed_answers(workers[0], session.answers)
            session.embedding_model = entries[0].id
        except (RuntimeError, EmbeddingError) as exc:
            return report(str(exc), EXIT_FAILED)
        if judge is not None:
            judge_worker = open_worker(judge)
            try:
                session.judge_scores = judge_scores(judge_worker, session.prompt,
                                                    [a.text for a in session.answers])
                session.judge_model = judge.id
            finally:
                judge_worker.close()
    except KeyboardInterrupt:
        for worker in workers:
            worker.stop()
        return report("stopped.", EXIT_INTERRUPTED)
    finally:
        for worker in workers:
            worker.close()
    result = analyse(session)
    if args.json:
        print(json.dumps({"prompt": session.prompt, "models": [e.id for e in entries],
                          "embedding_model": session.embedding_model,
                          "answers": [a.to_dict() for a in session.answers],
                          "votes": [v.to_dict() for v in votes], **result.to_dict()},
                         ensure_ascii=False))
        return EXIT_OK
    _print_report(session, result)
    return EXIT_OK


def _print_report(session: Any, result: Any) -> None:
    strengths = result.strengths
    print("ANSWERS")
    for index, answer in enumerate(session.answers):
        one_line = " ".join(answer.text.split())
        mark = "" if answer.correct is None else (" ✓" if answer.correct else " ✗")
        print(f"  {index}.{mark} [{answer.model}] {visible_controls(one_line)}")
    print(f"\nBRADLEY-TERRY ({len(session.votes)} votes; strength, 95% interval, votes)")
    for index in strengths.ranking():
        print(f"  {index}: {strengths.strength[index]:+.2f}  [{strengths.low[index]:+.2f}, "
              f"{strengths.high[index]:+.2f}]  {strengths.votes[index]} votes")
    print("\nAGREEMENT WITH THE CLASS (decided votes)")
    for agreement in (result.reward_agreement, *result.proxies):
        print(f"  {agreement.describe()}")
    gold = "the key (share right)" if result.gold_kind == "key" else "the class's strength"
    print(f"\nBEST-OF-N against the reward model (gold: {gold})")
    print("  N   REWARD   GOLD")
    for point in result.best_of_n:
        print(f"  {point.n:<3} {point.reward:+.3f}   {point.gold:+.3f}")
