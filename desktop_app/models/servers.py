"""OpenAI-compatible servers Triptych is a client of: addresses, keys, and whether each answers.

A remote catalog entry (``[model.source] endpoint = ..., model = ...``) is ready when its
server answers ``GET /models`` with that model in the list. Asking takes a network round
trip, so :func:`cached_answer` never waits: it returns the last answer (or None) and, when
there is none or it has grown old, starts one check on a background thread; listeners hear
when it arrives, so the window can refresh. The command line, which may wait, calls
:func:`check` directly.

Keys come from the environment variable an entry names (``api_key_env``), else from the OS
keychain (:mod:`keyring`) under the endpoint's address; never from ``models.toml``.

Every failure is a :class:`ServerError`: a :class:`ServerProblem` and one sentence. The
remote backend uses the same sentences for its requests. Imports nothing of ours but
``text.escape`` (a server's own words are shown with their control characters escaped).
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

import httpx2

from desktop_app.text.escape import visible_controls

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
        raise ValueError("Give the server's address, e.g. http://localhost:8080/v1.")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{url.strip()}' is not an http:// or https:// address.")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"'{url.strip()}' has a port that is not a number.") from None
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def host_of(endpoint: str) -> str:
    """``host:port`` of an endpoint, for sentences and the pane's placement."""
    return urlsplit(endpoint).netloc or endpoint


# ------------------------------------------------------------------------------ keys


NO_KEYCHAIN = ("No OS keychain is available here (keyring found no backend); put the key in "
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
        raise ValueError(NO_KEYCHAIN) from None
    try:
        keyring.set_password(KEYRING_SERVICE, endpoint, key)
    except NoKeyringError:
        raise ValueError(NO_KEYCHAIN) from None
    except (KeyringError, RuntimeError, OSError) as exc:
        raise ValueError(f"The OS keychain refused to store the key ({exc}).") from None


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
            hint = f"check the key in the environment variable {key_env}"
        elif had_key:
            hint = "check the key saved for this server (add the server again to replace it)"
        else:
            hint = ("it needs a key: set one in an environment variable named by api_key_env, "
                    "or add the server again with its key")
        return ServerError(ServerProblem.AUTH, f"The server at {host} refused the request "
                                               f"(HTTP {code}); {hint}.")
    if code == 404:
        what = f"the model '{model}'" if model else "this address"
        return ServerError(ServerProblem.NOT_FOUND,
                           f"The server at {host} does not know {what} (HTTP 404{said}); check "
                           f"the model name against the server's list of models.")
    if code == 429:
        return ServerError(ServerProblem.RATE_LIMITED,
                           f"The server at {host} is busy (HTTP 429{said}); try again later.",
                           retry_after=_retry_after(response))
    if code >= 500:
        return ServerError(ServerProblem.SERVER_ERROR,
                           f"The server at {host} failed (HTTP {code}{said}).")
    return ServerError(ServerProblem.REJECTED,
                       f"The server at {host} rejected the request (HTTP {code}{said}).")


def _is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
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
        return ServerError(ServerProblem.TLS,
                           f"The secure connection to {host} failed ({_short(exc)}); check that "
                           f"the address should be https and that its certificate is valid.")
    if streaming:
        return ServerError(ServerProblem.CUT,
                           f"The server at {host} broke off the answer ({_short(exc)}); the "
                           f"partial answer is kept.")
    if isinstance(exc, httpx2.TimeoutException):
        return ServerError(ServerProblem.UNREACHABLE,
                           f"The server at {host} did not answer in time; is it running?")
    return ServerError(ServerProblem.UNREACHABLE,
                       f"Cannot reach the server at {host} ({_short(exc)}); is it running, "
                       f"and is the address right?")


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
        raise ServerError(ServerProblem.BAD_REPLY,
                          f"{host_of(endpoint)} answered, but not with an OpenAI-compatible "
                          f"list of models; is the address right (it usually ends in /v1)?") from None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ServerError(ServerProblem.BAD_REPLY,
                          f"{host_of(endpoint)} answered, but not with an OpenAI-compatible "
                          f"list of models; is the address right (it usually ends in /v1)?")
    return [str(item["id"]) for item in items if isinstance(item, dict) and item.get("id")]


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


_answers: dict[tuple[str, str | None], ServerAnswer] = {}
_checking: dict[tuple[str, str | None], threading.Thread] = {}
_listeners: list[Callable[[str], None]] = []
_lock = threading.Lock()


def check(endpoint: str, key_env: str | None = None) -> ServerAnswer:
    """Ask the server now (blocking), remember and return its answer, tell the listeners."""
    try:
        answer = ServerAnswer(models=tuple(list_models(endpoint, api_key(endpoint, key_env),
                                                       key_env=key_env)))
    except ServerError as exc:
        answer = ServerAnswer(error=exc)
    with _lock:
        _answers[(endpoint, key_env)] = answer
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(endpoint)
        except Exception:  # noqa: BLE001, S112 - a listener's bug must not stop the others
            continue
    return answer


def cached_answer(endpoint: str, key_env: str | None = None) -> ServerAnswer | None:
    """The last answer (None if never asked); starts a background check when it is stale.
    Never waits on the network: safe on the GUI thread."""
    key = (endpoint, key_env)
    with _lock:
        answer = _answers.get(key)
        if (answer is None or not answer.fresh()) and key not in _checking:
            thread = threading.Thread(target=_check_in_background, args=key,
                                      name=f"server-check-{host_of(endpoint)}", daemon=True)
            _checking[key] = thread
            thread.start()
    return answer


def _check_in_background(endpoint: str, key_env: str | None) -> None:
    try:
        check(endpoint, key_env)
    finally:
        with _lock:
            _checking.pop((endpoint, key_env), None)


def forget(endpoint: str | None = None) -> None:
    """Drop cached answers (for one endpoint, or all), e.g. after a key was saved."""
    with _lock:
        for key in [k for k in _answers if endpoint is None or k[0] == endpoint]:
            del _answers[key]


def wait_for_checks(timeout: float = CHECK_TIMEOUT_S + 1) -> bool:
    """Wait for the background checks under way; False if some still run after *timeout*."""
    deadline = time.monotonic() + timeout
    while True:
        with _lock:
            threads = list(_checking.values())
        if not threads:
            return True
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if time.monotonic() >= deadline:
            with _lock:
                return not _checking


def add_listener(listener: Callable[[str], None]) -> None:
    """Call ``listener(endpoint)`` (on the checking thread) whenever an answer arrives."""
    with _lock:
        _listeners.append(listener)


def remove_listener(listener: Callable[[str], None]) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)
