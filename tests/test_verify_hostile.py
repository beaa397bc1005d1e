"""Every byte from the sandbox is hostile, and nothing outside it changes (issue 18).

Hostile answers (hash-collision floods, wrong types, lone surrogates, deep nesting,
garbage floods) must give a valid ``error`` verdict quickly; the CLI must never print a
traceback; metadata changes outside the temp dir must fail even as root; whatever the
code builds in its temp dir must disappear; terminal escapes must be shown, not obeyed.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from desktop_app.cli.verify import main
from desktop_app.verify import detect_protections, verify_reply
from desktop_app.verify.sandbox import Limits, run_code
from desktop_app.verify.sandbox.child.codec import Malformed, decode, encode
from desktop_app.verify.sandbox.process import remove_tree
from desktop_app.verify.sandbox.wire import Hostile, parse_line
from tests.sandbox_attacks import FIND_ANSWER_FD, nothing_left_running

TIMEOUT = 3.0
BOUND = TIMEOUT + 10.0  # a hung check fails the test; this is not a speed requirement
PROTECTIONS = detect_protections()
needs_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _answering(line_expr: str) -> str:
    """A reply whose `add` writes *line_expr* (bytes) as its answer, then waits."""
    return FIND_ANSWER_FD + textwrap.dedent(f"""\
        import time
        def add(a, b):
            os.write(_answer_fd(), {line_expr})
            time.sleep(30)
        """)


def _check(code: str, tests: str = "assert add(2, 3) == 5\n"):
    started = time.monotonic()
    verdict = verify_reply(f"```python\n{code}\n```", tests=tests, timeout_s=TIMEOUT)
    assert time.monotonic() - started < BOUND
    assert verdict.verdict != "pass"
    json.dumps(verdict.to_dict())  # always a valid JSON verdict
    return verdict


# ------------------------------------------------------------ the decoder itself


def test_hash_collision_sets_and_dicts_are_refused():
    colliding = [{"int": hex(k * (2**61 - 1))} for k in range(1, 5000)]
    with pytest.raises(Malformed):
        decode({"set": colliding})
    with pytest.raises(Malformed):
        decode({"dict": [[c, 0] for c in colliding]})
    assert decode({"set": list(range(5000))}) == set(range(5000))


@pytest.mark.parametrize("data", [
    {"set": [[1, 2]]},                   # unhashable key
    {"dict": [[1]]},                     # not a pair
    {"int": 5},                          # wrong payload type
    {"float": "zz"},                     # not a hex float
    {"tuple": 3},
    {"ref": 0},                          # references only inside the sandbox
    {"a": 1, "b": 2},
    1.5,                                 # raw floats are never sent
])
def test_malformed_values_are_refused(data: object):
    with pytest.raises(Malformed):
        decode(data)


def test_decoding_does_not_recurse_and_has_a_budget():
    deep: object = 1
    for _ in range(200):
        deep = [deep]
    with pytest.raises(Malformed):
        decode(deep)
    with pytest.raises(Malformed):
        decode(list(range(300_000)))
    value = {"x": [1, (2.5, b"\x00"), {3, 4}], "y": 2**80, "z": float("nan")}
    back = decode(encode(value))
    assert back["x"] == value["x"] and back["y"] == 2**80 and back["z"] != back["z"]


@pytest.mark.parametrize("line", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"v": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"not json",
    b"[1, 2]",
    b"\xff\xfe",
    b'{"v": "' + b"x" * (5 * 1024 * 1024) + b'"}',
])
def test_hostile_lines_are_refused(line: bytes):
    with pytest.raises(Hostile):
        parse_line(line)


# ---------------------------------------------------- hostile answers, end to end


def test_hash_collision_flood_is_an_error_quickly():
    # 60,000 different ints that all hash alike: built as a set, quadratic (minutes).
    line = ("(b'{\"v\": {\"set\": [' + ','.join('{\"int\": \"%s\"}' % hex(k * (2**61 - 1)) "
            "for k in range(1, 60_000)).encode() + b']}}\\n')")
    verdict = _check(_answering(line))
    assert verdict.verdict == "error" and "hash" in verdict.reason


@pytest.mark.parametrize("answer", [
    b'{"h": [1, 2], "t": "x"}\n',
    b'{"err": [1, 2, 3]}\n',
    b'{"err": ["ValueError", "ValueError"]}\n',
    b'{"v": {"int": [1]}}\n',
    b'{"v": 1, "nodes": [[0, 1, 2]]}\n',
    b'{"v": 1, "nodes": "x"}\n',
    b'{"v": 1, "nodes": [[1, [5]]]}\n',          # a node of the parent's it never sent
    b'{"v": {"node": 7}}\n',                      # a node nobody sent
    b'{"v": 1, "nodes": [[-1, 5]]}\n',            # a state that is no container
    b'{"v": 1, "nodes": [[-1, {"list": []}]]}\n',
    b"\x00" * 100 + b"\n",
])
def test_malformed_answers_are_an_error(answer: bytes):
    verdict = _check(_answering(repr(answer)))
    assert verdict.verdict == "error", verdict.reason
    assert "sandbox sent" in verdict.reason


@pytest.mark.parametrize("chunk", [
    "b'garbage' * 100_000",  # one endless line
    "b'\\n' * 1_000_000",  # millions of empty lines: splitting stays linear
], ids=["garbage", "newlines"])
def test_output_flood_is_an_error_quickly(chunk: str):
    code = FIND_ANSWER_FD + textwrap.dedent(f"""\
        def add(a, b):
            fd = _answer_fd()
            chunk = {chunk}
            while True:
                os.write(fd, chunk)
        """)
    verdict = _check(code)
    assert verdict.verdict == "error"


def test_lone_surrogates_and_controls_in_messages_stay_printable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code = ("def add(a, b):\n    raise ValueError('bad \\ud800 \\x1b[2J \\u202e \\x9b')\n"
            "print('\\x1b]52;c;cHduZWQ=\\x07')\n")
    verdict = _check(code)
    assert verdict.verdict == "fail"
    text = json.dumps(verdict.to_dict(), ensure_ascii=False)
    for bad in ("\ud800", "\x1b", "\u202e", "\x9b", "\x07"):
        assert bad not in text
    assert "\\x1b" in text and "\\u202e" in text
    reply = tmp_path / "reply.md"
    reply.write_text(f"```python\n{code}```")
    tests = tmp_path / "tests.py"
    tests.write_text("assert add(2, 3) == 5\n")
    for json_flag in ([], ["--json"]):
        assert main([str(reply), "--tests", str(tests), "--timeout", str(TIMEOUT),
                     *json_flag]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\u202e" not in out and "\x9b" not in out
        assert out.startswith(("✗ FAIL", "{"))


def test_fake_pass_line_in_output_is_shown_escaped(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path):
    reply = tmp_path / "reply.md"
    reply.write_text("```python\nprint('\\x1b[1A\\x1b[2K\\x1b[32m✓ PASS: all good\\x1b[0m')\n"
                     "raise SystemExit(1)\n```")
    assert main([str(reply), "--timeout", str(TIMEOUT)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("! ERROR") and "\x1b" not in out and "\\x1b[32m" in out


@pytest.mark.parametrize("body", [
    "x = " + "-" * 100_000 + "1",
    "x = " + "+".join(["1"] * 50_000),
    "x = " + "(" * 300 + "1" + ")" * 300,
])
def test_parse_bombs_are_an_error_not_a_crash(body: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]):
    verdict = _check(body + "\ndef add(a, b):\n    return a + b\n")
    assert verdict.verdict == "error" and "does not parse" in verdict.reason
    reply = tmp_path / "reply.md"
    reply.write_text(f"```\n{body}\n```\n")  # unlabelled: parsed here to see if it is Python
    assert main([str(reply), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] in ("ran", "error", "no-answer")


def test_cli_never_prints_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch):
    import desktop_app.verify.checker as checker

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(checker, "_verify", broken)
    reply = tmp_path / "reply.md"
    reply.write_text("#### 5")
    assert main([str(reply), "--expect", "5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "error" and "RuntimeError" in data["reason"]
    assert "boom" not in data["reason"]  # an exception's text may be the reply's


# ------------------------------------------------------- nothing outside changes


@needs_linux
@pytest.mark.skipif(not PROTECTIONS.readonly_view, reason="no read-only mount view here")
def test_metadata_outside_the_temp_dir_cannot_change(tmp_path: Path):
    canary = tmp_path / "canary.txt"
    canary.write_text("keep")
    os.chmod(canary, 0o644)
    os.chmod(tmp_path, 0o755)
    before = (os.stat(canary), os.stat(tmp_path), os.listxattr(canary))
    code = textwrap.dedent(f"""\
        import os
        p, d = {str(canary)!r}, {str(tmp_path)!r}
        acts = [lambda: os.chmod(p, 0o4777), lambda: os.utime(p, (0, 0)),
                lambda: os.setxattr(p, 'user.pwned', b'1'), lambda: os.chmod(d, 0o777),
                lambda: os.chown(p, 12345, 12345), lambda: os.link(p, 'hard'),
                lambda: os.rename(p, p + '.moved'), lambda: os.truncate(p, 0)]
        for act in acts:
            try:
                act()
                print('did it')
            except OSError as exc:
                print('refused', type(exc).__name__)
        """)
    result = run_code(code, limits=Limits(timeout_s=TIMEOUT))
    assert "did it" not in result.stdout, result.stdout
    assert result.stdout.count("refused") == 8
    after = (os.stat(canary), os.stat(tmp_path), os.listxattr(canary))
    for old, new in zip(before[:2], after[:2], strict=True):
        assert (old.st_mode, old.st_mtime_ns, old.st_uid) == (new.st_mode, new.st_mtime_ns,
                                                             new.st_uid)
    assert after[2] == before[2] and canary.read_text() == "keep"


@needs_linux
@pytest.mark.skipif(not PROTECTIONS.readonly_view, reason="no read-only mount view here")
def test_setuid_files_made_inside_do_not_work():
    code = textwrap.dedent("""\
        import os, shutil
        shutil.copy('/bin/true', 'suid')
        os.chmod('suid', 0o4755)
        print('nosuid' if os.statvfs('.').f_flag & os.ST_NOSUID else 'suid allowed')
        """)
    result = run_code(code, limits=Limits(timeout_s=TIMEOUT))
    assert "nosuid" in result.stdout, result.stdout + result.stderr


def test_a_deep_directory_tree_leaves_nothing_behind():
    code = textwrap.dedent("""\
        import os
        fd = os.open('.', os.O_RDONLY)
        for i in range(1500):
            os.mkdir('d', dir_fd=fd)
            new = os.open('d', os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
            with open(os.open('f', os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), 'w') as h:
                h.write('x')
        os.fchmod(fd, 0)
        print('built')
        """)
    result = run_code(code, limits=Limits(timeout_s=TIMEOUT))
    assert "built" in result.stdout, result.stderr
    assert not result.leftovers and not os.path.lexists(result.workdir)


def test_remove_tree_handles_depth_without_recursion(tmp_path: Path):
    root = tmp_path / "deep"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(1500):  # deeper than the recursion limit and than PATH_MAX allows
        os.mkdir("d", dir_fd=fd)
        new = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = new
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    os.symlink("/etc/passwd", "link", dir_fd=fd)
    os.fchmod(fd, 0)
    os.close(fd)
    assert remove_tree(str(root))
    assert not root.exists() and Path("/etc/passwd").exists()
    assert stat.S_ISDIR(os.stat(tmp_path).st_mode)


@needs_linux
@pytest.mark.skipif(not PROTECTIONS.hidden, reason="no mount namespace to hide paths with")
def test_secret_files_and_app_dirs_are_covered_even_without_landlock(tmp_path: Path):
    # Landlock already refuses these reads here; the mount view must cover them too, for
    # machines without Landlock. stat() is not a read, so it shows what is underneath.
    import desktop_app

    secret = tmp_path / "tests.py"
    secret.write_text("assert add(2, 3) == 31337\n")
    package = os.path.dirname(os.path.abspath(desktop_app.__file__))
    code = textwrap.dedent(f"""\
        import os
        print('size', os.stat({str(secret)!r}).st_size)
        try:
            print('app', os.stat({package!r}).st_dev != os.stat('/').st_dev)
        except FileNotFoundError:
            print('app True')  # the whole source tree is covered
        """)
    result = run_code(code, limits=Limits(timeout_s=TIMEOUT), secret_paths=[str(secret)])
    assert "size 0" in result.stdout and "app True" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("reply", [
    "\\boxed{" * 120_000,            # every group unclosed: was quadratic
    "\\frac{" * 150_000,
    "\\frac{" * 3000 + "1}{2}" * 3000,  # nesting deeper than any answer
    "1," * 450_000,
    "#### 1\n" * 100_000,
    "{" * 900_000,
    "x" * 2_000_000,                # over the reply limit: an error, not a stall
    "The answer is 6" + " " * 900_000 + "x",  # one answer line, regex backtracking bait
    "The answer is " + "from " * 150_000,
], ids=["boxed", "frac", "nested-frac", "digits", "gsm8k-lines", "braces", "huge",
        "answer-line-spaces", "answer-line-ranges"])
def test_hostile_reply_text_is_read_in_bounded_time(reply: str):
    for kw in ({"expect": "5"}, {"tests": "assert f(1) == 1\n"}, {},
               {"expect": "5", "finish": "length"}):  # a cut-off reply is read before its cut
        started = time.monotonic()
        verdict = verify_reply(reply, timeout_s=TIMEOUT, **kw)  # type: ignore[arg-type]
        assert time.monotonic() - started < 60, "a hang, not a speed requirement"
        assert verdict.verdict in ("fail", "no-answer", "error", "answered")
        assert verdict.verdict != "answered" or not kw  # found, with no key: only without one
        json.dumps(verdict.to_dict())


@pytest.mark.parametrize("answer", [
    r"9^{9^{9^9}}",                              # SymPy would compute ~370 million digits
    "+".join(["9^{9^9}"] * 400),                 # longer than SymPy is ever given
    r"\sqrt{" * 250 + "56" + "}" * 250,          # nesting deep enough to strain a parser
], ids=["power-tower", "long", "deep"])
def test_hostile_math_answers_end_in_bounded_time(answer: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    """Issue 25: the answer is compared by value (math-verify, SymPy) in a helper process
    with a deadline; a value SymPy cannot finish is an error verdict, never a pass or a
    hang, and the CLI still prints one JSON verdict."""
    from desktop_app.verify.equivalence import DEADLINE_S

    reply = tmp_path / "reply.md"
    reply.write_text(f"The answer is $\\boxed{{{answer}}}$.")
    started = time.monotonic()
    assert main([str(reply), "--expect", "56", "--json"]) == 0
    assert time.monotonic() - started < DEADLINE_S + 15, "a hang, not a speed requirement"
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] in ("error", "fail"), data["reason"]


# ------------------------------------- pathological lines: bounded in time (issue 25)


@pytest.mark.parametrize("line_expr", [
    # The red team's line: a 3 MB string that never ends, full of escaped quotes (each one
    # was a new start for a backtracking regex: quadratic, with the GIL held).
    r'''b'{"v": "' + b'\\"' * 1_500_000 + b'\n' ''',
    r'''b'{"v": "' + b'x' * 3_000_000 + b'\n' ''',
    r'''b'{"v": "' + b'\\"x' * 1_000_000 + b'"}\n' ''',
    r'''b'{"v": "' + b'\\"x' * 1_000_000 ''',  # no newline either: waits for more
    r'''b'"' * 3_000_000 + b'\n' ''',
    r'''b'\\' * 3_000_001 + b'\n' ''',
    r'''b'[' * 3_000_000 + b'\n' ''',
    r'''b'{"v": [' + b'"\\\\", ' * 500_000 + b']}\n' ''',
], ids=["unterminated-3MB", "unterminated-plain", "escaped-quotes-closed", "no-newline",
        "quotes", "backslashes", "brackets", "backslash-strings"])
def test_pathological_answer_lines_end_within_the_timeout(line_expr: str):
    with nothing_left_running():
        started = time.monotonic()
        verdict = _check(_answering(line_expr))
        elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + 5.0, f"not bounded: {elapsed:.1f} s"
    assert verdict.verdict in ("error", "timeout", "fail"), verdict.reason


def test_an_answer_line_that_trickles_in_byte_by_byte_is_bounded():
    # Appending each read to the whole line so far was quadratic in the line's length.
    code = FIND_ANSWER_FD + textwrap.dedent("""\
        def add(a, b):
            fd = _answer_fd()
            os.write(fd, b'{"v": "')
            while True:
                os.write(fd, b'x')
        """)
    with nothing_left_running():
        started = time.monotonic()
        verdict = _check(code)
        elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + 5.0, f"not bounded: {elapsed:.1f} s"
    assert verdict.verdict in ("error", "timeout"), verdict.reason


# ---------------------------- every exit path stops the sandbox, in its own words


def _forging(*lines: bytes) -> str:
    """A reply that writes *lines* to the answer pipe while it loads, ahead of the
    harness's own first message, so the parent reads them as the answers."""
    return FIND_ANSWER_FD + textwrap.dedent(f"""\
        os.write(_answer_fd(), {b"".join(lines)!r})
        def add(a, b):
            return a + b
        """)


SECRET = "PWNED-4c1e"
_LOADED = b'{"loaded": true, "error": null}\n'


@pytest.mark.parametrize("lines", [
    [b'{"loaded": true, "syntax": [5, 1]}\n'],
    [b'{"loaded": true, "syntax": {"PWNED-4c1e": 1}}\n'],
    [b'{"loaded": true, "syntax": ["PWNED-4c1e"]}\n'],
    [b'{"loaded": true, "error": [null, 5, "PWNED-4c1e"]}\n'],
    [b'{"loaded": true, "error": "PWNED-4c1e"}\n'],
    [_LOADED, b'{"names": {"add": {"err": ["ValueError", "ValueError", "PWNED-4c1e"]}}}\n'],
    [_LOADED, b'{"names": {"add": {"err": ["KeyError", "KeyError", "PWNED-4c1e"]}}}\n'],
    [_LOADED, b'{"names": {"add": {"err": [null, "PWNED-4c1e", "PWNED-4c1e"]}}}\n'],
    [_LOADED, b'{"names": {"add": {"h": 0, "t": ["PWNED-4c1e"], "c": true}}}\n'],
    [_LOADED, b'{"names": {"add": {"h": 0, "t": "f", "c": true}}}\n',
     b'{"v": 5, "nodes": "PWNED-4c1e"}\n'],
], ids=["syntax-int", "syntax-dict", "syntax-short", "error-type", "error-str",
        "name-ValueError", "name-KeyError", "name-unknown", "name-bad-type", "bad-nodes"])
def test_malformed_answers_end_cleanly_and_leave_nothing_running(lines: list[bytes]):
    with nothing_left_running():
        verdict = _check(_forging(*lines))
    assert verdict.verdict == "error", verdict.reason
    assert SECRET not in verdict.reason and "unexpectedly" not in verdict.reason
    assert "sandbox sent" in verdict.reason, verdict.reason
