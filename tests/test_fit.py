"""Memory fit check: GGUF header reading, estimates, warnings with a smaller alternative."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from desktop_app.models import catalog as cat
from desktop_app.models import fit, gguf
from desktop_app.models.devices import Device, DeviceKind
from desktop_app.text.units import format_bytes
from tests.hub_fixtures import MiB, make_gguf


def _file_entry(model_id: str, path: Path, *, role: str = "instruct", family: str = "Tiny",
                quant: str = "Q8_0", size: int | None = None) -> cat.ModelEntry:
    table = {
        "id": model_id, "role": role, "family": family, "quantization": quant,
        "source": {"path": str(path), **({"size": size} if size else {})},
    }
    return cat.parse_entry(table, "test", 0)


def test_reads_gguf_header(tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "m.gguf", n_layers=3, n_embd=96, n_head=6, n_head_kv=2,
                     n_ctx=4096, pad_bytes=1024)
    meta = gguf.read_metadata(path)
    assert meta["general.architecture"] == "llama" and meta["llama.block_count"] == 3
    shape = fit.read_shape(path)
    assert (shape.n_layers, shape.n_embd, shape.n_head, shape.n_head_kv) == (3, 96, 6, 2)
    assert shape.key_length == shape.value_length == 16
    assert shape.context_length == 4096
    # 2 (K and V) * layers * ctx * kv heads * head dim * 2 bytes (f16)
    assert shape.kv_bytes(1000) == 2 * 3 * 1000 * 2 * 16 * 2


def test_reads_a_real_gguf(smollm2_gguf: Path) -> None:
    shape = fit.read_shape(smollm2_gguf)
    assert (shape.architecture, shape.n_layers, shape.n_head_kv) == ("llama", 30, 3)


@pytest.mark.parametrize("content", [b"", b"GGUF", b"NOPE" + b"\0" * 64, b"GGUF\x09\0\0\0" + b"\0" * 16])
def test_bad_headers_raise(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(gguf.GGUFError):
        fit.read_shape(path)


def test_estimate_exact_and_guessed(tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "m.gguf", pad_bytes=MiB)
    exact = fit.estimate(_file_entry("m", path), 2048)
    assert exact.exact and exact.file_bytes == path.stat().st_size
    assert exact.kv_bytes == fit.read_shape(path).kv_bytes(2048)
    assert exact.total == exact.file_bytes + exact.kv_bytes + fit.OVERHEAD_BYTES

    missing = _file_entry("gone", tmp_path / "gone.gguf", size=4 * 10**9)
    guessed = fit.estimate(missing, 4096)
    assert not guessed.exact and guessed.file_bytes == 4 * 10**9 and guessed.kv_bytes > 0

    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\xff" * 100)
    assert not fit.estimate(_file_entry("c", corrupt), 2048).exact


def test_fit_check_suggests_a_smaller_quantization(tmp_path: Path) -> None:
    big = _file_entry("tiny-q8", make_gguf(tmp_path / "q8.gguf", pad_bytes=8 * MiB), quant="Q8_0")
    small = _file_entry("tiny-q4", make_gguf(tmp_path / "q4.gguf", pad_bytes=2 * MiB), quant="Q4_K_M")
    base = _file_entry("base", make_gguf(tmp_path / "b.gguf", pad_bytes=MiB), role="base")
    other = _file_entry("other-small", make_gguf(tmp_path / "o.gguf", pad_bytes=MiB),
                        family="Other")
    chosen = [(base, 1024), (big, 1024)]
    needed = sum(fit.estimate(e, n).total for e, n in chosen)

    roomy = fit.fit_check(chosen, catalog=[big, small, base, other], available=needed * 2, devices=())
    assert roomy.fits and roomy.warning is None

    # Room for the Q4 but not the Q8: the same family's smaller quantization is named first.
    budget = needed - 5 * MiB
    tight = fit.fit_check(chosen, catalog=[big, small, base, other], available=int(budget / fit.HEADROOM), devices=())
    assert not tight.fits
    assert tight.suggestions[0].instead.id == "tiny-q4"
    warning = tight.warning
    assert warning is not None and "'tiny-q4'" in warning and "smaller quantization" in warning
    assert "instead of 'tiny-q8' in the instruct pane" in warning
    assert "\n" not in warning

    # Nothing fits: the warning still says what to do.
    hopeless = fit.fit_check(chosen, catalog=[big, small, base, other], available=MiB, devices=())
    assert hopeless.suggestions == [] and "smaller models" in (hopeless.warning or "")
    assert hopeless.to_dict()["fits"] is False


def test_unknown_memory_never_warns(tmp_path: Path) -> None:
    entry = _file_entry("m", make_gguf(tmp_path / "m.gguf", pad_bytes=1024))
    report = fit.fit_check([(entry, 512)], catalog=[entry], available=None, devices=())
    if report.available is not None:  # this machine reports memory: pretend it does not
        report.available = None
    assert report.fits and report.warning is None


def test_available_memory_on_this_machine() -> None:
    import psutil

    value = fit.available_memory()
    assert value is not None and 0 < value <= psutil.virtual_memory().total


def test_shape_reading_stops_before_the_vocabulary(smollm2_gguf: Path) -> None:
    """Skipping a vocabulary is pure-Python work that would hold the GIL against the window."""
    seen: list[str] = []

    def spy(found: dict, next_key: str) -> bool:
        seen.append(next_key)
        return fit._shape_found(found, next_key)

    meta = gguf.read_metadata(smollm2_gguf, enough=spy)
    assert "llama.block_count" in meta and "llama.attention.head_count" in meta
    assert seen[-1].startswith("tokenizer.") and "tokenizer.ggml.tokens" not in seen
    full = gguf.read_metadata(smollm2_gguf)
    assert "tokenizer.ggml.model" in full  # the unbounded walk still reads everything


def test_gguf_magic_check(tmp_path: Path) -> None:
    good = make_gguf(tmp_path / "good.gguf", pad_bytes=16)
    bad = tmp_path / "notes.gguf"
    bad.write_bytes(b"GGML" + b"\0" * 32)
    assert gguf.has_magic(good) and not gguf.has_magic(bad)
    assert not gguf.has_magic(tmp_path / "absent.gguf")
    gguf.check_magic(good)
    with pytest.raises(gguf.GGUFError, match=r"^notes.gguf is not a GGUF model file"):
        gguf.check_magic(bad)
    with pytest.raises(ValueError, match=r"^Cannot read the model file .*absent.gguf: .*\.$"):
        gguf.check_magic(tmp_path / "absent.gguf")


def test_wanted_keys_only_and_long_arrays_skipped(smollm2_gguf: Path) -> None:
    meta = gguf.read_metadata(smollm2_gguf, keys={"llama.block_count"})
    assert set(meta) == {"GGUF.version", "GGUF.tensor_count", "general.architecture",
                         "llama.block_count"}
    full = gguf.read_metadata(smollm2_gguf)
    assert "tokenizer.ggml.tokens" not in full  # 49k entries: skipped, never decoded


def test_warning_amounts_use_one_size_format(tmp_path: Path) -> None:
    entry = _file_entry("m", make_gguf(tmp_path / "m.gguf", pad_bytes=MiB))
    report = fit.fit_check([(entry, 512)], catalog=[entry], available=2 * 10**6, devices=())
    assert "but only 2.0 MB is available" in (report.warning or "")


# ------------------------------------------------------------------ GPU memory

GB = 10**9
CPU = Device("CPU", "AMD Ryzen 7", DeviceKind.CPU, 32 * GB, 32 * GB)
RTX_4090 = Device("CUDA0", "NVIDIA GeForce RTX 4090", DeviceKind.GPU, 24 * GB, 24 * GB)
RTX_4060 = Device("CUDA0", "NVIDIA GeForce RTX 4060", DeviceKind.GPU, 8 * GB, 8 * GB)
APPLE_M2 = Device("MTL0", "Apple M2", DeviceKind.GPU, 11 * GB, 11 * GB, unified=True)
IRIS = Device("Vulkan0", "Intel Iris Xe", DeviceKind.INTEGRATED, 8 * GB, 16 * GB, unified=True)


def _hub_entry(model_id: str, size: int, *, family: str = "Big", gpu_layers: int | None = None,
               quant: str = "Q8_0") -> cat.ModelEntry:
    """A model not downloaded: its size is the catalog's, its shape guessed."""
    table = {"id": model_id, "role": "instruct", "family": family, "quantization": quant,
             "source": {"repo": "org/repo", "filename": f"{model_id}.gguf", "size": size}}
    if gpu_layers is not None:
        table["gpu_layers"] = gpu_layers
    return cat.parse_entry(table, "test", 0)


def test_offloaded_layers_take_their_share_from_gpu_memory(tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "m.gguf", n_layers=4, pad_bytes=4 * MiB)
    entry = _file_entry("m", path)
    on_cpu = fit.estimate(entry, 1024)
    assert (on_cpu.gpu_layers, on_cpu.gpu_bytes, on_cpu.ram_bytes) == (0, 0, on_cpu.total)
    auto = fit.estimate(entry, 1024, gpu=True)
    assert (auto.n_layers, auto.gpu_layers) == (4, 4)
    weights_and_cache = auto.file_bytes + auto.kv_bytes
    assert auto.gpu_bytes == weights_and_cache + fit.GPU_OVERHEAD_BYTES
    assert auto.ram_bytes == fit.OVERHEAD_BYTES  # the process; the weights went to the GPU
    half = fit.estimate(dataclasses.replace(entry, gpu_layers=2), 1024, gpu=True)
    assert half.gpu_layers == 2
    assert half.gpu_bytes == round(weights_and_cache / 2) + fit.GPU_OVERHEAD_BYTES
    assert half.ram_bytes + half.gpu_bytes == half.total == auto.total
    cpu_only = fit.estimate(dataclasses.replace(entry, gpu_layers=0), 1024, gpu=True)
    assert cpu_only.gpu_bytes == 0 and cpu_only.total == on_cpu.total


def test_a_24_gb_gpu_holds_what_ram_cannot() -> None:
    big = _hub_entry("big", 12 * GB)
    in_ram = fit.fit_check([(big, 2048)], catalog=[big], available=4 * GB, devices=[CPU])
    assert in_ram.gpu is None and not in_ram.fits  # no GPU: exactly the RAM check of before
    assert in_ram.warning is not None and "of memory together" in in_ram.warning
    on_gpu = fit.fit_check([(big, 2048)], catalog=[big], available=4 * GB,
                           devices=[CPU, RTX_4090])
    assert on_gpu.gpu == fit.GpuMemory("NVIDIA GeForce RTX 4090", 24 * GB, unified=False)
    assert on_gpu.fits and on_gpu.warning is None
    assert on_gpu.needed == fit.OVERHEAD_BYTES  # RAM: the worker process only
    assert on_gpu.gpu_needed > 12 * GB
    shown = on_gpu.to_dict()
    assert shown["gpu"]["needed"] == on_gpu.gpu_needed and shown["models"][0]["gpu_layers"] is None


def test_an_8_gb_gpu_is_too_small_and_the_warning_says_gpu_memory() -> None:
    big = _hub_entry("big", 12 * GB)
    report = fit.fit_check([(big, 2048)], catalog=[big], available=64 * GB,
                           devices=[CPU, RTX_4060])
    assert report.ram_fits and not report.gpu_fits and not report.fits
    needed = format_bytes(report.gpu_needed)
    assert report.warning == (
        f"These models need about {needed} of GPU memory ('big' {needed}), but only 8.0 GB of "
        "it is free on NVIDIA GeForce RTX 4060, so a pane may fail to load. Choose smaller "
        "models, a shorter context, or fewer panes. Or put fewer layers on the GPU (GPU "
        "offload, in a pane's settings). Closing other applications also frees memory.")
    # the same model set to the CPU only needs no GPU memory, and RAM has room
    cpu_only = _hub_entry("big", 12 * GB, gpu_layers=0)
    assert fit.fit_check([(cpu_only, 2048)], catalog=[cpu_only], available=64 * GB,
                         devices=[CPU, RTX_4060]).fits


def test_a_smaller_quantization_that_fits_the_gpu_is_suggested() -> None:
    big = _hub_entry("big-q8", 12 * GB)
    small = _hub_entry("big-q4", 6 * GB, quant="Q4_K_M")
    report = fit.fit_check([(big, 2048)], catalog=[big, small], available=64 * GB,
                           devices=[CPU, RTX_4060])
    assert [s.instead.id for s in report.suggestions] == ["big-q4"]
    assert "To fit, use a smaller quantization, 'big-q4'" in (report.warning or "")


def test_unified_memory_counts_the_gpu_share_in_ram_too() -> None:
    big = _hub_entry("big", 8 * GB)
    roomy = fit.fit_check([(big, 2048)], catalog=[big], available=20 * GB,
                          devices=[CPU, APPLE_M2])
    assert roomy.gpu is not None and roomy.gpu.unified and roomy.fits
    assert roomy.needed == roomy.estimates[0].total  # all of it comes out of RAM
    assert roomy.gpu_needed == roomy.estimates[0].gpu_bytes > 8 * GB
    tight = fit.fit_check([(big, 2048)], catalog=[big], available=8 * GB,
                          devices=[CPU, APPLE_M2])
    assert not tight.ram_fits and tight.gpu_fits  # the GPU may use 11 GB; RAM has 8 free
    assert tight.warning is not None and "but only 8.0 GB is available" in tight.warning
    assert "GPU memory" not in tight.warning
    huge = _hub_entry("huge", 14 * GB)
    both = fit.fit_check([(huge, 2048)], catalog=[huge], available=8 * GB,
                         devices=[CPU, APPLE_M2])
    assert not both.ram_fits and not both.gpu_fits
    assert "of memory together" in (both.warning or "")
    assert "They need about" in (both.warning or "") and "free on Apple M2" in (both.warning or "")


def test_integrated_gpus_are_used_only_without_a_discrete_one() -> None:
    assert fit.GpuMemory.of([CPU, IRIS]) == fit.GpuMemory("Intel Iris Xe", 8 * GB, unified=True)
    assert fit.GpuMemory.of([CPU, IRIS, RTX_4060]) == fit.GpuMemory(
        "NVIDIA GeForce RTX 4060", 8 * GB, unified=False)
    assert fit.GpuMemory.of([CPU, RTX_4060, RTX_4090]) == fit.GpuMemory(
        "2 GPUs", 32 * GB, unified=False)
    assert fit.GpuMemory.of([CPU]) is None


def test_this_machine_is_checked_as_before(tmp_path: Path) -> None:
    """No GPU here: the probe's answer leaves the fit check exactly RAM-only."""
    entry = _file_entry("m", make_gguf(tmp_path / "m.gguf", pad_bytes=MiB))
    from desktop_app.engine.llama import devices as gpu_probe

    probed = fit.fit_check([(entry, 512)], catalog=[entry], available=2 * 10**6,
                           devices=gpu_probe.probe().gpus)
    plain = fit.fit_check([(entry, 512)], catalog=[entry], available=2 * 10**6, devices=[])
    assert probed.gpu is None and probed.to_dict() == plain.to_dict()
