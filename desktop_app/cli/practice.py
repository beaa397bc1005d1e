"""``triptych practice``: list the practice sets, and pull a whole benchmark from the Hub.

    triptych practice list [--json]
    triptych practice pull NAME      # gsm8k, math500, humaneval or mbpp

The app ships small subsets of each benchmark for offline workshops; ``pull`` downloads
the full set as a Hugging Face *dataset* file through huggingface-hub, into the same cache
as the models and under the same rules (``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``;
every failure one sentence). A pulled set is listed next to its subset from then on.
No Qt.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from desktop_app.cli.common import EXIT_FAILED, EXIT_OK, UsageError, report
from desktop_app.text.escape import visible_controls
from desktop_app.verify.benchmarks import load_full_set, pulled_file
from desktop_app.verify.practice import PracticeError, PracticeSet, load_practice_sets


class PullError(Exception):
    """A pull that failed, as one sentence."""


def add_practice_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``triptych practice`` on the main parser's subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "practice", help="practice sets: list them, pull a whole benchmark from the Hub")
    actions = parser.add_subparsers(dest="practice_command", metavar="ACTION")
    listing = actions.add_parser("list", help="sets, sizes, sources and licences")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    pull = actions.add_parser("pull", help="download a whole benchmark (gsm8k, math500, "
                              "humaneval, mbpp) from the Hugging Face Hub")
    pull.add_argument("name", help="the benchmark: gsm8k, math500, humaneval or mbpp")
    return parser


def set_summary(practice_set: PracticeSet) -> dict[str, Any]:
    """One set as plain data (for ``--json`` and the table)."""
    kinds = sorted({p.kind for p in practice_set.problems})
    return {
        "key": practice_set.key, "name": practice_set.name,
        "problems": len(practice_set.problems), "kinds": kinds,
        "complete": practice_set.complete, "full_size": practice_set.full_size,
        "levels": practice_set.levels, "source": practice_set.source,
        "licence": practice_set.licence, "attribution": practice_set.attribution,
        "selection": practice_set.selection,
        "hub": (f"{practice_set.hub_repo}/{practice_set.hub_file}"
                if practice_set.hub_repo else None),
        "path": practice_set.path,
    }


def _list(args: argparse.Namespace) -> int:
    rows = [set_summary(s) for s in load_practice_sets()]
    if args.json:
        print(json.dumps({"sets": rows}, indent=2, ensure_ascii=False))
        return EXIT_OK
    width = max(len(r["key"]) for r in rows) if rows else 4
    print(f"{'SET'.ljust(width)}  PROBLEMS  KIND        LICENCE    SOURCE")
    for row in rows:
        size = str(row["problems"])
        if row["full_size"] and not row["complete"]:
            size += f"/{row['full_size']}"
        source = row["source"] or "written for Triptych"
        print(f"{row['key'].ljust(width)}  {size:<8}  {','.join(row['kinds']):<10}  "
              f"{(row['licence'] or '–'):<9}  {visible_controls(source)}")
    pullable = [r["key"].removesuffix("-mini") for r in rows
                if r["hub"] and not r["complete"]
                and not any(o["complete"] and o["key"] == r["key"].removesuffix("-mini")
                            for o in rows)]
    if pullable:
        print(f"\nWhole sets: 'triptych practice pull NAME' for {', '.join(pullable)}.")
    return EXIT_OK


def find_benchmark(name: str, sets: list[PracticeSet] | None = None) -> PracticeSet:
    """The shipped subset whose whole benchmark *name* ('gsm8k' or 'gsm8k-mini') is."""
    wanted = name.strip().casefold().removesuffix("-mini")
    candidates = [s for s in (sets if sets is not None else load_practice_sets(full=False))
                  if s.hub_repo and not s.complete]
    for subset in candidates:
        if wanted in (subset.format, subset.key.removesuffix("-mini")):
            return subset
    known = ", ".join(s.format for s in candidates)
    raise UsageError(f"No benchmark called {name!r} to pull; there are: {known}.")


def _explain(exc: BaseException, subset: PracticeSet) -> PullError:
    """What huggingface_hub raised, as one sentence (the models' rules, for a dataset)."""
    from huggingface_hub import errors

    from desktop_app.models.hub import _network_error_types, hub_endpoint

    what, repo = f"'{subset.format}'", subset.hub_repo
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return PullError(f"Cannot download {what}: Hugging Face Hub access is switched off "
                         "(HF_HUB_OFFLINE is set).")
    if isinstance(exc, errors.GatedRepoError):
        return PullError(f"Cannot download {what}: the dataset {repo} is gated; accept its terms "
                         f"at {hub_endpoint()}/datasets/{repo} and set HF_TOKEN.")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return PullError(f"Cannot download {what}: the dataset {repo} does not exist, or it is "
                         "private or gated and needs HF_TOKEN to be set.")
    if isinstance(exc, errors.RemoteEntryNotFoundError | errors.EntryNotFoundError):
        return PullError(f"Cannot download {what}: the dataset {repo} has no file "
                         f"'{subset.hub_file}'.")
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        return PullError(f"Cannot download {what}: the Hub answered with HTTP error {status}.")
    if isinstance(exc, _network_error_types()):
        return PullError(f"Cannot download {what}: the Hugging Face Hub ({hub_endpoint()}) "
                         "cannot be reached; check your network connection.")
    if isinstance(exc, OSError) and exc.strerror:
        return PullError(f"Cannot download {what}: {exc.strerror}.")
    return PullError(f"Cannot download {what}: {type(exc).__name__}: {exc}".rstrip(".") + ".")


class _QuietProgress:
    """What huggingface_hub's download loop needs of a progress bar, drawing nothing: a
    data file is small, ``pull`` reports in one line when done, and a real tqdm would
    start its monitor thread."""

    def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kwargs: Any):
        self.total, self.n, self.initial = total, initial, initial

    def __enter__(self) -> _QuietProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass


def pull_set(name: str) -> PracticeSet:
    """Download the whole benchmark *name* into the Hub cache (unless it is there) and
    read it back; blocking. Raises :class:`PullError` with one sentence (a name that is
    no benchmark: :class:`UsageError`)."""
    from huggingface_hub import hf_hub_download

    from desktop_app.models.catalog import hub_cache_dir
    from desktop_app.models.hub import hub_endpoint, is_offline

    subset = find_benchmark(name)
    path = pulled_file(subset)
    if path is None:
        if is_offline():
            raise PullError(f"Cannot download '{subset.format}': Hugging Face Hub access is "
                            "switched off (HF_HUB_OFFLINE is set).")
        try:
            path = Path(hf_hub_download(subset.hub_repo, subset.hub_file, repo_type="dataset",
                                        cache_dir=hub_cache_dir(), endpoint=hub_endpoint(),
                                        tqdm_class=_QuietProgress))
        except Exception as exc:  # every Hub failure becomes one sentence
            raise _explain(exc, subset) from exc
    try:
        return load_full_set(subset, path)
    except PracticeError as exc:
        raise PullError(f"'{subset.format}' was downloaded but cannot be read: {exc}") from exc


def run_practice(args: argparse.Namespace) -> int:
    """``triptych practice …``; returns the exit status (errors: one line on stderr)."""
    try:
        if args.practice_command in (None, "list"):
            if args.practice_command is None:
                args.json = False
            return _list(args)
        if args.practice_command == "pull":
            full = pull_set(args.name)
            print(f"{full.key}: {len(full.problems)} problems ({full.licence}) at "
                  f"{visible_controls(full.path)}")
            print(f"Run them with: triptych rollouts --set {full.key} --models ID -n 1")
            return EXIT_OK
    except (PullError, PracticeError) as exc:
        return report(exc, EXIT_FAILED)
    raise UsageError(f"Unknown action {args.practice_command!r}; use list or pull.")
