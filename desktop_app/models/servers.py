"""OpenAI-compatible servers Triptych is a client of: addresses, keys, and whether each answers.

A remote catalog entry (``[model.source] endpoint = ..., model = ...``) is ready when its
server answers ``GET /models`` with that model in the list. Asking takes a network round
trip, so :func:`cached_answer` is a pure read: it returns the last answer (or None) and
notes that the server is wanted. Whoever may do work asks the wanted servers whose answer
is missing or old (:func:`due`): the window through its one background-job helper, the
command line by waiting on :func:`check_due` (or :func:`check` for one server).

Keys come from the environment variable an entry names (``api_key_env``), else from the OS
keychain (:mod:`keyring`) under the endpoint's address; never from ``models.toml``.

Every failure is a :class:`ServerError`: a :class:`ServerProblem` and one sentence, in the
window's language (the command line's stays English); a server's own words are quoted as
they came. The remote backend uses the same sentences for its requests. Imports nothing of
ours but ``text.escape`` (a server's own words are shown with their control characters
escaped) and ``text.i18n``.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

import httpx2

from desktop_app.text.escape import visible_controls
from desktop_app.text.i18n import N_, _

KEYRING_SERVICE = "triptych"
CHECK_TIMEOUT_S = 5.0
# An answer is reused this long before the next look asks again (failures sooner).
FRESH_OK_S = 120.0
FRESH_FAILED_S = 15.0
DETAIL_CHARS = 200


class ServerProblem(StrEnum):
    """What went wrong talking to a server."""

    UNREACHABLE = "unreachable"
    TLS = "tls"
    AUTH = "auth"  # 401 / 403
    NOT_FOUND = "not-found"  # 404, or the model is not in the server's list
    RATE_LIMITED = "rate-limited"  # 429
    SERVER_ERROR = "server-error"  # 5xx
    REJECTED = "rejected"  # another 4xx
    BAD_REPLY = "bad-reply"  # not the JSON or stream an OpenAI-compatible server sends
    CUT = "cut"  # the stream ended before the answer did


class ServerError(Exception):
    """A server problem, phrased as one sentence for the user."""

    def __init__(self, problem: ServerProblem, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.problem = problem
        self.retry_after = retry_after


# ------------------------------------------------------------------------- addresses


def normalize_endpoint(url: str) -> str:
    """``host:8000`` -> ``http://host:8000/v1``; a path other than ``/`` is kept as given.

    Raises ValueError with one sentence for something that is not an http(s) address.
    """
    text = url.strip()
    if not text:
        raise ValueError(_("Give the server's address, e.g. http://localhost:8080/v1."))
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(_("'{address}' is not an http:// or https:// address.").format(
            address=url.strip()))
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(_("'{address}' has a port that is not a number.").format(
            address=url.strip())) from None
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def host_of(endpoint: str) -> str:
    """``host:port`` of an endpoint, for sentences and the pane's placement."""
    return urlsplit(endpoint).netloc or endpoint


# ------------------------------------------------------------------------------ keys


NO_KEYCHAIN = N_("No OS keychain is available here (keyring found no backend); put the key in "
                  "an environment variable and give its name as the key variable instead.")


def stored_key(endpoint: str) -> str | None:
    """The key saved in the OS keychain for this endpoint, or None (also with no keychain)."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, endpoint)
    except (KeyringError, RuntimeError, OSError):
        return None


def store_key(endpoint: str, key: str) -> None:
    """Save a key typed in the window in the OS keychain; ValueError(one sentence) if none."""
    try:
        import keyring
        from keyring.errors import KeyringError, NoKeyringError
    except ImportError:
        raise ValueError(_(NO_KEYCHAIN)) from None
    try:
        keyring.set_password(KEYRING_SERVICE, endpoint, key)
    except NoKeyringError:
        raise ValueError(_(NO_KEYCHAIN)) from None
    except (KeyringError, RuntimeError, OSError) as exc:
        raise ValueError(_("The OS keychain refused to store the key ({error}).").format(
            error=exc)) from None


def api_key(endpoint: str, key_env: str | None) -> str | None:
    """The key for a request: the named environment variable, else the keychain."""
    if key_env:
        value = os.environ.get(key_env, "").strip()
        if value:
            return value
    return stored_key(endpoint)


def auth_headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


# ---------------------------------------------------------------------------- errors


def _detail(response: httpx2.Response) -> str:
    """The server's own words about an error (its JSON ``error.message``, or the body)."""
    try:
        body = response.read().decode("utf-8", "replace")
    except httpx2.HTTPError:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error:
            body = error if isinstance(error, str) else json.dumps(error)
    text = visible_controls(" ".join(body.split()))
    return text[:DETAIL_CHARS] + ("…" if len(text) > DETAIL_CHARS else "")


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def status_error(response: httpx2.Response, endpoint: str, *, model: str | None = None,
                 key_env: str | None = None, had_key: bool = False) -> ServerError:
    """The sentence for an HTTP error status from this server."""
    code, host = response.status_code, host_of(endpoint)
    detail = _detail(response)
    said = f": {detail}" if detail else ""
    if code in (401, 403):
        if key_env:
            hint = _("check the key in the environment variable {variable}").format(
                variable=key_env)
        elif had_key:
            hint = _("check the key saved for this server (add the server again to replace "
                     "it)")
        else:
            hint = _("it needs a key: set one in an environment variable named by "
                     "api_key_env, or add the server again with its key")
        return ServerError(ServerProblem.AUTH, _(
            "The server at {host} refused the request (HTTP {code}); {hint}.").format(
            host=host, code=code, hint=hint))
    if code == 404:
        if model:
            sentence = _("The server at {host} does not know the model '{model}' (HTTP "
                         "404{detail}); check the model name against the server's list of "
                         "models.")
        else:
            sentence = _("The server at {host} does not know this address (HTTP 404{detail}); "
                         "check the model name against the server's list of models.")
        return ServerError(ServerProblem.NOT_FOUND,
                           sentence.format(host=host, model=model, detail=said))
    if code == 429:
        return ServerError(ServerProblem.RATE_LIMITED,
                           _("The server at {host} is busy (HTTP 429{detail}); try again "
                             "later.").format(host=host, detail=said),
                           retry_after=_retry_after(response))
    if code >= 500:
        return ServerError(ServerProblem.SERVER_ERROR,
                           _("The server at {host} failed (HTTP {code}{detail}).").format(
                               host=host, code=code, detail=said))
    return ServerError(ServerProblem.REJECTED,
                       _("The server at {host} rejected the request (HTTP {code}{detail})."
                         ).format(host=host, code=code, detail=said))


def _is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _step in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY" in str(seen) or "SSL" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def transport_error(exc: httpx2.HTTPError, endpoint: str, *, streaming: bool = False) -> ServerError:
    """The sentence for a network failure; ``streaming``: it happened mid-answer."""
    host = host_of(endpoint)
    if _is_tls(exc):
        return ServerError(ServerProblem.TLS, _(
            "The secure connection to {host} failed ({error}); check that the address should "
            "be https and that its certificate is valid.").format(host=host, error=_short(exc)))
    if streaming:
        return ServerError(ServerProblem.CUT, _(
            "The server at {host} broke off the answer ({error}); the partial answer is "
            "kept.").format(host=host, error=_short(exc)))
    if isinstance(exc, httpx2.TimeoutException):
        return ServerError(ServerProblem.UNREACHABLE, _(
            "The server at {host} did not answer in time; is it running?").format(host=host))
    return ServerError(ServerProblem.UNREACHABLE, _(
        "Cannot reach the server at {host} ({error}); is it running, and is the address "
        "right?").format(host=host, error=_short(exc)))


def _short(exc: BaseException) -> str:
    text = visible_controls(" ".join(str(exc).split())) or type(exc).__name__
    return text[:DETAIL_CHARS]


# --------------------------------------------------------------------------- listing


def list_models(endpoint: str, key: str | None = None, *, key_env: str | None = None,
                timeout: float = CHECK_TIMEOUT_S) -> list[str]:
    """The model names the server serves (``GET /models``). Blocking: off the GUI thread."""
    try:
        with httpx2.Client(timeout=timeout) as client:
            response = client.get(endpoint + "/models", headers=auth_headers(key))
            if response.status_code != 200:
                raise status_error(response, endpoint, key_env=key_env, had_key=bool(key))
            data = response.json()
    except httpx2.HTTPError as exc:
        raise transport_error(exc, endpoint) from None
    except ValueError:
        raise _not_a_list(endpoint) from None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise _not_a_list(endpoint)
    return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]


def _not_a_list(endpoint: str) -> ServerError:
    return ServerError(ServerProblem.BAD_REPLY, _(
        "{host} answered, but not with an OpenAI-compatible list of models; is the address "
        "right (it usually ends in /v1)?").format(host=host_of(endpoint)))


# -------------------------------------------------------------------- reachability


@dataclass(frozen=True)
class ServerAnswer:
    """What a server said the last time it was asked."""

    models: tuple[str, ...] = ()
    error: ServerError | None = None
    checked_at: float = field(default_factory=time.monotonic)

    @property
    def answered(self) -> bool:
        return self.error is None

    def fresh(self) -> bool:
        limit = FRESH_OK_S if self.answered else FRESH_FAILED_S
        return time.monotonic() - self.checked_at < limit


ServerKey = tuple[str, str | None]  # (endpoint, the environment variable naming its key)

_answers: dict[ServerKey, ServerAnswer] = {}
_wanted: set[ServerKey] = set()
_in_flight: set[ServerKey] = set()
_lock = threading.Lock()


def check(endpoint: str, key_env: str | None = None) -> ServerAnswer:
    """Ask the server now (blocking: never on the GUI thread), remember and return its
    answer."""
    try:
        answer = ServerAnswer(models=tuple(list_models(endpoint, api_key(endpoint, key_env),
                                                       key_env=key_env)))
    except ServerError as exc:
        answer = ServerAnswer(error=exc)
    with _lock:
        _answers[(endpoint, key_env)] = answer
        _wanted.add((endpoint, key_env))
    return answer


def cached_answer(endpoint: str, key_env: str | None = None) -> ServerAnswer | None:
    """The last answer (None if never asked). A pure read, safe on the GUI thread: it only
    notes that this server is wanted, so the next :func:`due` includes it when stale."""
    with _lock:
        _wanted.add((endpoint, key_env))
        return _answers.get((endpoint, key_env))


def due() -> list[ServerKey]:
    """The wanted servers to ask now: never answered, or answered too long ago, and not
    being asked already."""
    with _lock:
        return sorted((key for key in _wanted if key not in _in_flight
                       and ((answer := _answers.get(key)) is None or not answer.fresh())),
                      key=str)


def claim(key: ServerKey) -> bool:
    """Mark a check of ``key`` as under way; False if one already is (ask it once)."""
    with _lock:
        if key in _in_flight:
            return False
        _in_flight.add(key)
        return True


def check_claimed(key: ServerKey) -> ServerAnswer:
    """Run a check :func:`claim` reserved, and release the claim (blocking)."""
    try:
        return check(*key)
    finally:
        with _lock:
            _in_flight.discard(key)


def check_due(timeout: float | None = CHECK_TIMEOUT_S + 1) -> bool:
    """Ask every due server at once and wait for the answers (tests, and whoever may
    wait); False if some were still unanswered after ``timeout``."""
    return check_all(due(), timeout)


def check_all(keys: list[ServerKey], timeout: float | None = None) -> bool:
    """Ask these servers now, all at once, and wait (``timeout``: at most this long)."""
    keys = [key for key in dict.fromkeys(keys) if claim(key)]
    threads = [threading.Thread(target=check_claimed, args=(key,), daemon=True,
                                name=f"server-check-{host_of(key[0])}") for key in keys]
    for thread in threads:
        thread.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def forget(endpoint: str | None = None) -> None:
    """Drop cached answers (for one endpoint, or all), e.g. after a key was saved; with no
    endpoint, forget which servers were wanted too."""
    with _lock:
        for key in [k for k in _answers if endpoint is None or k[0] == endpoint]:
            del _answers[key]
        if endpoint is None:
            _wanted.clear()
