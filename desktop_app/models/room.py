"""A Triptych room: one laptop (the teacher's) serves its models to the others on the local
network (``triptych serve``, the serving side is :mod:`desktop_app.engine.room`).

What both sides share lives here: the short key and how it is compared, the address a
student types (and the link a QR code holds: the address with ``#key=``), the laptop's
address on the local network, and finding a room there by itself (mDNS, through the
``zeroconf`` library) where the network lets multicast through. A student's laptop
uses a room as any OpenAI-compatible server (:mod:`desktop_app.models.servers`) and,
for model files, as the Hugging Face Hub (``HF_ENDPOINT``).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from desktop_app.text.i18n import _, ngettext

# Read off a projector and typed on a laptop: no 0/O, no 1/I/L. Six of 31 symbols are
# 887 million keys; with the room's limit on refused keys per laptop, guessing is hopeless.
KEY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
KEY_LENGTH = 6
MIN_KEY_LENGTH = 6
SERVICE_TYPE = "_triptych._tcp.local."  # the mDNS service a room announces
DISCOVER_S = 3.0  # how long a student's laptop listens for rooms
LINK_KEY = "#key="


class RoomError(Exception):
    """Something about serving or finding a room, phrased as one sentence."""


# ---------------------------------------------------------------------------- keys


def new_key() -> str:
    """A fresh short key, e.g. ``K7M2QX``."""
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


def check_key(text: str) -> str:
    """A key the teacher chose, stripped; RoomError (one sentence) if it is too weak or
    cannot travel in an HTTP header."""
    key = text.strip()
    if len(key) < MIN_KEY_LENGTH:
        raise RoomError(ngettext("The key must be at least {count} character long.",
                                 "The key must be at least {count} characters long.",
                                 MIN_KEY_LENGTH).format(count=MIN_KEY_LENGTH))
    if not all(33 <= ord(char) < 127 for char in key):
        raise RoomError(_("The key may hold only letters, digits and punctuation (no "
                          "spaces)."))
    return key


def same_key(given: str | None, key: str) -> bool:
    """Whether a student typed the room's key. Case does not count (it is read off a
    screen); the comparison takes the same time whatever matches."""
    return hmac.compare_digest((given or "").strip().upper().encode(),
                               key.strip().upper().encode())


def bearer(header: str | None) -> str | None:
    """The key in an ``Authorization: Bearer KEY`` header (None if there is none)."""
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


# ------------------------------------------------------------------------ addresses


def is_loopback(host: str) -> bool:
    """Whether binding to *host* keeps the room on this computer."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def endpoint_for(host: str, port: int) -> str:
    """The address a client types for a room at *host*: ``http://HOST:PORT/v1``."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def link(endpoint: str, key: str | None) -> str:
    """What a QR code holds: the address, and the key after ``#key=`` (a fragment, so a
    browser never sends it), which ``models add-server`` understands as given."""
    return f"{endpoint}{LINK_KEY}{key}" if key else endpoint


def split_link(text: str) -> tuple[str, str | None]:
    """``http://host:8000/v1#key=K7M2QX`` -> (``http://host:8000/v1``, ``K7M2QX``)."""
    address, sep, key = text.strip().partition(LINK_KEY)
    return address, (key.strip() or None) if sep else None


def lan_addresses() -> list[str]:
    """This computer's IPv4 addresses on its networks, the one with the default route
    first (what another laptop in the room most likely reaches)."""
    import ifaddr  # zeroconf's own dependency

    found: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            found.append(probe.getsockname()[0])
    except OSError:
        pass
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_loopback \
                    and not ipaddress.ip_address(ip.ip).is_link_local:
                found.append(ip.ip)
    return [address for address in dict.fromkeys(found) if not is_loopback(address)]


def reachable_hosts(host: str) -> list[str]:
    """The addresses students type for a room bound to *host* (``0.0.0.0``: every LAN
    address, the likeliest first)."""
    if host in ("0.0.0.0", "::", ""):
        return lan_addresses() or ["127.0.0.1"]
    if host.strip().lower() == "localhost":
        return ["127.0.0.1"]
    return [host]


# -------------------------------------------------------------------------- QR code


def qr_png(text: str, scale: int = 6) -> bytes:
    """A QR code of *text* as PNG bytes (segno: pure Python)."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="png", scale=scale, border=2)
    return out.getvalue()


def qr_terminal(text: str) -> str:
    """A QR code of *text* drawn with block characters, for a terminal."""
    import io

    import segno

    out = io.StringIO()
    segno.make(text, error="m").terminal(out=out, compact=True, border=1)
    return out.getvalue()


# --------------------------------------------------------------------- mDNS (zeroconf)


@dataclass(frozen=True)
class FoundRoom:
    """A room that answered on the local network."""

    name: str
    endpoint: str
    key_required: bool
    models: tuple[str, ...]

    def describe(self) -> str:
        models = ", ".join(self.models) or _("no models")
        return _("{room} at {endpoint} ({models})").format(
            room=self.name, endpoint=self.endpoint, models=models)


def _interfaces(host: str) -> Any:
    from zeroconf import InterfaceChoice

    if is_loopback(host):
        return ["127.0.0.1"]
    if host in ("0.0.0.0", "::", ""):
        return InterfaceChoice.All
    return [host]


class Announcement:
    """A room's mDNS announcement, from :meth:`start` until :meth:`close` (both block for
    a moment: the library probes and says goodbye on the network)."""

    def __init__(self, host: str, port: int, *, key_required: bool, models: list[str]):
        self.host, self.port = host, port
        self.key_required, self.models = key_required, models
        self._zeroconf: Any = None
        self._info: Any = None

    def start(self) -> None:
        """Announce; RoomError (one sentence) where the network does not allow it."""
        from zeroconf import IPVersion, ServiceInfo, Zeroconf

        addresses = ["127.0.0.1"] if is_loopback(self.host) else reachable_hosts(self.host)
        name = f"Triptych room on {socket.gethostname()}"[:60].replace(".", "-")
        properties = {"path": "/v1", "key": "required" if self.key_required else "none",
                      "models": ",".join(self.models)[:200]}
        try:
            self._zeroconf = Zeroconf(interfaces=_interfaces(self.host),
                                      ip_version=IPVersion.V4Only)
            self._info = ServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}",
                                     addresses=[socket.inet_aton(a) for a in addresses],
                                     port=self.port, properties=properties)
            self._zeroconf.register_service(self._info, allow_name_change=True)
        except (OSError, ValueError, RuntimeError) as exc:  # zeroconf's errors subclass these
            self.close()
            raise RoomError(_("The room could not be announced on the local network "
                              "({error}); students can still type its address.").format(
                error=exc)) from None

    def close(self) -> None:
        zeroconf, self._zeroconf = self._zeroconf, None
        if zeroconf is None:
            return
        try:
            if self._info is not None:
                zeroconf.unregister_service(self._info)
        except (OSError, ValueError, RuntimeError):
            pass  # the goodbye is a courtesy; closing is what matters
        finally:
            zeroconf.close()


def discover(timeout: float = DISCOVER_S, host: str = "0.0.0.0") -> list[FoundRoom]:
    """The rooms that answer on the local network within *timeout* seconds (blocking:
    never on the GUI thread). RoomError (one sentence) if mDNS cannot run here."""
    from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

    names: list[str] = []
    lock = threading.Lock()

    def changed(zeroconf: Any, service_type: str, name: str,
                state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added:
            with lock:
                names.append(name)

    try:
        zeroconf = Zeroconf(interfaces=_interfaces(host), ip_version=IPVersion.V4Only)
    except (OSError, ValueError, RuntimeError) as exc:
        raise RoomError(_("Cannot look for rooms on this network ({error}); type the "
                          "address the teacher shows.").format(error=exc)) from None
    rooms: list[FoundRoom] = []
    try:
        browser = ServiceBrowser(zeroconf, SERVICE_TYPE, handlers=[changed])
        time.sleep(timeout)
        browser.cancel()
        with lock:
            found = list(dict.fromkeys(names))
        for name in found:
            info = zeroconf.get_service_info(SERVICE_TYPE, name, timeout=1500)
            if info is None or not info.parsed_addresses() or not info.port:
                continue
            props = {k.decode(): (v or b"").decode("utf-8", "replace")
                     for k, v in info.properties.items() if isinstance(k, bytes)}
            address = info.parsed_addresses()[0]
            endpoint = endpoint_for(address, info.port).removesuffix("/v1") \
                + (props.get("path") or "/v1")
            rooms.append(FoundRoom(
                name=name.removesuffix("." + SERVICE_TYPE), endpoint=endpoint,
                key_required=props.get("key") != "none",
                models=tuple(m for m in props.get("models", "").split(",") if m)))
    finally:
        zeroconf.close()
    return rooms


# ----------------------------------------------------------- pulling from a room


def hub_root(endpoint: str) -> str:
    """The Hub address of a room (what ``HF_ENDPOINT`` is set to): its address without
    the ``/v1`` students type for questions."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def file_missing(endpoint: str, repo: str, revision: str, filename: str,
                 key: str | None) -> str | None:
    """Why the room at *endpoint* cannot hand out this file (the room's own sentence),
    or None when it can. Blocking: a HEAD request."""
    import httpx2

    from desktop_app.models.servers import auth_headers, transport_error

    url = f"{hub_root(endpoint)}/{repo}/resolve/{revision}/{filename}"
    try:
        answer = httpx2.head(url, headers=auth_headers(key), timeout=10.0)
    except httpx2.HTTPError as exc:
        return str(transport_error(exc, endpoint))
    if answer.status_code in (200, 206):
        return None
    said = answer.headers.get("x-error-message") or f"HTTP {answer.status_code}"
    return _("The room at {host} cannot hand it out: {error}.").format(
        host=urlsplit(endpoint).netloc, error=said.rstrip("."))
