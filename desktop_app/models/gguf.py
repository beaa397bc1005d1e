"""GGUF files: the magic check and a small reader for the header's key/value metadata.

The reader is hand-written on purpose. ``gguf.GGUFReader`` (the llama.cpp project's
Python package) memory-maps the file and builds numpy views of every field and tensor:
on a model with a 262k-token vocabulary that takes about 9.7 s, against about 0.8 ms
here, where only the wanted keys are decoded, big arrays are skipped with ``seek`` and
the walk can stop before the vocabulary. The fit check runs before every comparison, so
that difference is the difference between a responsive window and a frozen one.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from desktop_app.text.i18n import N_, _

MAGIC = b"GGUF"


class GGUFError(ValueError):
    """The file is not a GGUF this reader understands (the message is one sentence)."""


def has_magic(path: str | Path) -> bool:
    """True if the file starts with the GGUF magic (False if it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


UNREADABLE = N_("Cannot read the model file {path}: {error}.")
NOT_GGUF = N_("{file} is not a GGUF model file (it does not start with 'GGUF').")
SENTENCES = (UNREADABLE, NOT_GGUF)


def check_magic(path: str | Path) -> None:
    """Raise :class:`GGUFError` with a sentence for the user unless *path* is a GGUF file."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(MAGIC))
    except OSError as exc:
        raise GGUFError(_(UNREADABLE).format(path=path, error=exc.strerror or exc)) from None
    if magic != MAGIC:
        raise GGUFError(_(NOT_GGUF).format(file=path.name))


# --------------------------------------------------------------------- header

_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 64 * 1024 * 1024
_MAX_KEPT_ARRAY = 4096  # longer arrays (vocabularies, merges) are skipped, never decoded


class _Reader:
    def __init__(self, handle: BinaryIO):
        self.handle = handle

    def preamble(self) -> tuple[int, int, int]:
        """Check the magic and version; the version, tensor count and key/value count."""
        if self.read(len(MAGIC)) != MAGIC:
            raise GGUFError("not a GGUF file (bad magic)")
        version = self.unpack("<I")
        if version not in (2, 3):
            raise GGUFError(f"unsupported GGUF version {version}")
        tensor_count = self.unpack("<Q")
        kv_count = self.unpack("<Q")
        if kv_count > 1_000_000 or tensor_count > 10_000_000:
            raise GGUFError("the header counts are not plausible")
        return version, tensor_count, kv_count

    def read(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise GGUFError("the file ends inside its header")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def _string_length(self) -> int:
        length = self.unpack("<Q")
        if length > _MAX_STRING:
            raise GGUFError("a header string is impossibly long")
        return int(length)

    def string(self) -> str:
        return self.read(self._string_length()).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        self.handle.seek(self._string_length(), io.SEEK_CUR)

    def value(self, kind: int, keep: bool) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            if keep:
                return self.string()
            self.skip_string()
            return None
        if kind == _ARRAY:
            item_kind = self.unpack("<I")
            count = self.unpack("<Q")
            keep_items = keep and count <= _MAX_KEPT_ARRAY
            if item_kind in _SCALARS and not keep_items:
                self.handle.seek(struct.calcsize(_SCALARS[item_kind]) * count, io.SEEK_CUR)
                return None
            if item_kind in _SCALARS:
                fmt = _SCALARS[item_kind]
                data = self.read(struct.calcsize(fmt) * count)
                return list(struct.unpack("<" + fmt[1:] * count, data))
            items = [self.value(item_kind, keep_items) for _ in range(count)]
            return items if keep_items else None
        raise GGUFError(f"unknown metadata type {kind}")


def read_metadata(path: str | Path, keys: Iterable[str] | None = None,
                  enough: Callable[[dict[str, Any], str], bool] | None = None,
                  ) -> dict[str, Any]:
    """The key/value metadata of a GGUF file (large arrays such as the vocabulary skipped).

    ``keys`` limits which values are decoded (others are skipped cheaply;
    ``general.architecture`` is always kept). ``enough(found, next_key)`` may end the walk
    early: even skipping a 262k-entry vocabulary is pure-Python work that would hold the
    GIL for a quarter of a second. Also returned: ``GGUF.version`` and
    ``GGUF.tensor_count``. Raises :class:`GGUFError` if the file is not GGUF v2/v3 or its
    header is truncated.
    """
    wanted = set(keys) if keys is not None else None
    with open(path, "rb", buffering=1024 * 1024) as handle:
        reader = _Reader(handle)
        version, tensor_count, kv_count = reader.preamble()
        out: dict[str, Any] = {"GGUF.version": version, "GGUF.tensor_count": tensor_count}
        for _ in range(kv_count):
            key = reader.string()
            if enough is not None and enough(out, key):
                break
            kind = reader.unpack("<I")
            keep = wanted is None or key in wanted or key == "general.architecture"
            value = reader.value(kind, keep)
            if keep and value is not None:
                out[key] = value
        return out


TOKENS_KEY = "tokenizer.ggml.tokens"


def token_texts(path: str | Path, ids: Iterable[int]) -> dict[int, str]:
    """The vocabulary strings of a few token ids (the BOS and EOS texts, say).

    :func:`read_metadata` skips the vocabulary (it can hold 262k strings); this walks to
    it once and decodes only the wanted entries. Ids past the vocabulary are left out;
    a file whose vocabulary is not a list of strings gives ``{}``. Raises
    :class:`GGUFError` like :func:`read_metadata`.
    """
    wanted = set(ids)
    found: dict[int, str] = {}
    if not wanted:
        return found
    with open(path, "rb", buffering=1024 * 1024) as handle:
        reader = _Reader(handle)
        _, _, kv_count = reader.preamble()
        for _ in range(kv_count):
            key = reader.string()
            kind = reader.unpack("<I")
            if key != TOKENS_KEY:
                reader.value(kind, False)
                continue
            if kind != _ARRAY or reader.unpack("<I") != _STRING:
                break  # not a list of strings: no texts to give
            count = reader.unpack("<Q")
            for index in range(min(count, max(wanted) + 1)):
                if index in wanted:
                    found[index] = reader.string()
                else:
                    reader.skip_string()
            break
    return found
