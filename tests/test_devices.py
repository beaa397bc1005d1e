"""The device probe (ggml's backend device list, in a child process) and the GPU offload
setting's one parser. This machine has no GPU and a CPU-only llama.cpp build: the probe must
say exactly that, and a probe that crashes or hangs must become "no GPU information"."""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import signal
import time

import pytest

from desktop_app.engine.llama import devices as gpu_probe
from desktop_app.engine.protocol import Finished, GenerationRequest, Loaded, Sampling
from desktop_app.engine.worker import ModelWorker, open_worker
from desktop_app.models import devices
from desktop_app.models.devices import Device, DeviceKind, DeviceReport


def _crash() -> DeviceReport:
    """A GPU driver that takes the process down while it initialises."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file from the test
    os.kill(os.getpid(), signal.SIGSEGV)
    raise AssertionError("unreachable")


def _hang() -> DeviceReport:
    """A GPU driver that never returns."""
    time.sleep(600)
    raise AssertionError("unreachable")


def _raise() -> DeviceReport:
    raise RuntimeError("driver said no")


def test_this_machine_has_the_cpu_and_no_gpu() -> None:
    report = gpu_probe.probe_in_child()
    assert report.problem is None
    cpus = [d for d in report.devices if d.kind == DeviceKind.CPU]
    assert len(cpus) == 1 and cpus[0].total > 0
    assert not report.gpu_offload  # this llama-cpp-python was built without a GPU backend
    assert report.gpus == ()
    assert report.describe() == devices.NO_OFFLOAD


def test_the_session_probes_once() -> None:
    first = gpu_probe.probe()
    assert gpu_probe.cached() is first
    assert gpu_probe.probe() is first


@pytest.mark.parametrize("target, words", [
    (_crash, "crashed"),
    (_raise, "driver said no"),
])
def test_a_probe_that_fails_is_no_gpu_information(target, words) -> None:
    report = gpu_probe.probe_in_child(target, timeout=60)
    assert report.problem is not None and words in report.problem
    assert report.devices == () and report.gpus == ()
    assert report.describe().startswith("No GPU information: ")


def test_a_probe_that_hangs_is_given_up() -> None:
    report = gpu_probe.probe_in_child(_hang, timeout=1.0)
    assert report.problem == "the GPU driver did not answer within 1 s."
    assert report.gpus == ()  # and the hung process is gone (the leak check fails otherwise)


def test_gpus_are_the_offload_targets_only() -> None:
    cpu = Device("CPU", "AMD EPYC", DeviceKind.CPU, 8 * 10**9, 8 * 10**9)
    card = Device("CUDA0", "NVIDIA GeForce RTX 4090", DeviceKind.GPU, 22 * 10**9, 24 * 10**9)
    blas = Device("BLAS", "OpenBLAS", DeviceKind.ACCELERATOR, 0, 0)
    assert DeviceReport((cpu, card, blas), gpu_offload=True).gpus == (card,)
    # a build that cannot offload puts nothing on a listed GPU
    assert DeviceReport((cpu, card), gpu_offload=False).gpus == ()
    assert card.describe() == "NVIDIA GeForce RTX 4090 (GPU, 22 GB free of 24 GB)"
    apple = Device("MTL0", "Apple M2", DeviceKind.GPU, 11 * 10**9, 11 * 10**9, unified=True)
    assert apple.describe() == "Apple M2 (unified memory, 11 GB free of 11 GB)"


@pytest.mark.parametrize("value, setting", [
    ("auto", None), (" Auto ", None), (0, 0), ("0", 0), (12, 12), ("33", 33),
])
def test_gpu_layers_parse(value, setting) -> None:
    assert devices.parse_gpu_layers(value) == setting


@pytest.mark.parametrize("value", ["all", "", 1.5, True, None, [1], "1e3"])
def test_bad_gpu_layers_are_refused(value) -> None:
    with pytest.raises(ValueError, match=f"^must be auto, 0 or a number of layers, not {re.escape(repr(value))}$"):
        devices.parse_gpu_layers(value)


@pytest.mark.parametrize("value", [-1, "-1", " -12 "])
def test_negative_gpu_layers_are_refused(value) -> None:
    with pytest.raises(ValueError, match="^cannot be negative$"):
        devices.parse_gpu_layers(value)


def test_gpu_layers_in_words_and_per_model() -> None:
    assert [devices.gpu_layers_label(s) for s in (None, 0, 1, 20)] == [
        "Auto", "CPU only", "1 layer", "20 layers"]
    assert [devices.gpu_layers_text(s) for s in (None, 0, 20)] == ["auto", "0", "20"]
    assert devices.offloaded_layers(None, 30) == 30
    assert devices.offloaded_layers(12, 30) == 12
    assert devices.offloaded_layers(99, 30) == 30
    assert devices.offloaded_layers(0, None) == 0
    assert devices.offloaded_layers(None, None) is None


# ------------------------------------------------------------- the setting reaches the worker


@pytest.mark.slow
@pytest.mark.parametrize("setting", [None, 0, 5])
def test_the_catalog_setting_reaches_a_real_worker(starter_models, setting) -> None:
    """A model's gpu_layers travels with its entry into the worker process; on this
    CPU-only build every setting falls back to the CPU and says so."""
    entry = dataclasses.replace(starter_models["instruct"], gpu_layers=setting)
    request = GenerationRequest("Hi", Sampling.for_entry(entry, temperature=0, max_tokens=2))
    with open_worker(entry, n_threads=1) as worker:
        assert worker.gpu_layers == setting
        events = list(worker.generate(request))
    loaded = next(e for e in events if isinstance(e, Loaded))
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert (loaded.placement, loaded.gpu_layers) == ("CPU · 1 thread", 0)
    assert finished.result.placement == "CPU · 1 thread"


def test_an_explicit_setting_wins_over_the_catalog(starter_models) -> None:
    entry = dataclasses.replace(starter_models["instruct"], gpu_layers=0)
    assert ModelWorker(entry).gpu_layers == 0  # never started: no process to close
    assert ModelWorker(entry, gpu_layers=None).gpu_layers is None  # --gpu-layers auto
    assert open_worker(entry, gpu_layers=12).gpu_layers == 12
