"""Which machine a host latency model describes, and whether this one is it.

A host model (``host-litert``, ``host-tflm``) is a set of costs measured on one computer: the
CPU, its clock, the core count and the runtime's version decide them, and on another machine
the same model runs at another speed (a 2-core Intel Xeon ran the shipped genomes 1.84-2.13x
faster than the AMD EPYC they were fitted on). Every measured run records where it ran
(:class:`Environment`, the same fields in ``latency_host_runs.csv`` and in a saved profile);
:func:`check` compares that record with this machine.

What has to agree: CPU model, core count, architecture, the clock within
:data:`CLOCK_TOLERANCE`, and the version of the runtime being predicted (LiteRT for
``host-litert``, tflite-micro for ``host-tflm``). Python, TensorFlow and onnx2tf shape the
conversion, not the timed kernels, so they are recorded but not compared.
"""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import os
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The reported clock of one machine type is steady on a VM (the hypervisor's TSC rate) and
# read from cpufreq's maximum on bare metal; a few percent apart is another host CPU behind
# the same masked model name (this package's own VMs report 2445 and 2596 MHz).
CLOCK_TOLERANCE = 0.03
RUNTIME_VERSION = {"litert": "litert", "tflm": "tflite_micro"}
_DIST = {"litert": "ai-edge-litert", "tflite_micro": "tflite-micro",
         "tensorflow": "tensorflow-cpu", "onnx2tf": "onnx2tf"}
_COMPARED = ("cpu", "cores", "machine")


@dataclass(frozen=True)
class Environment:
    """Where a run was measured: a predictor fitted here says so, and a user's machine differs."""

    cpu: str
    clock_mhz: int
    cores: int
    machine: str
    python: str
    litert: str
    tflite_micro: str
    tensorflow: str
    onnx2tf: str
    date: str

    @classmethod
    def current(cls) -> Environment:
        return cls(cpu=_cpu_model(), clock_mhz=_cpu_mhz(), cores=os.cpu_count() or 1,
                   machine=platform.machine(), python=platform.python_version(),
                   date=datetime.date.today().isoformat(),
                   **{field: _version(dist) for field, dist in _DIST.items()})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.cache
def this_machine() -> dict[str, Any]:
    """This machine's record (read once per process; tests replace it with a fake)."""
    return Environment.current().to_dict()


@dataclass(frozen=True)
class Check:
    """A host model's machine against this one: ``differences`` lists what disagrees."""

    fitted: dict[str, Any]
    here: dict[str, Any]
    differences: tuple[str, ...]

    @property
    def match(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"fitted": self.fitted, "this_machine": self.here,
                "differences": list(self.differences)}


def check(fitted: Mapping[str, Any], runtime: str,
          here: Mapping[str, Any] | None = None) -> Check:
    """Does the machine ``fitted`` records (a host model's ``environment``) match this one
    (or ``here``) for predicting ``runtime``? A record lacking a field counts as a mismatch."""
    here = dict(this_machine() if here is None else here)
    found = [f"{key} {fitted.get(key)!r} vs {here.get(key)!r}" for key in _COMPARED
             if fitted.get(key) != here.get(key)]
    clock, now = _number(fitted.get("clock_mhz")), _number(here.get("clock_mhz"))
    if not clock or not now or abs(now - clock) > CLOCK_TOLERANCE * clock:
        found.append(f"clock {fitted.get('clock_mhz')} vs {here.get('clock_mhz')} MHz")
    version = RUNTIME_VERSION.get(runtime)
    if version and fitted.get(version) != here.get(version):
        found.append(f"{_DIST[version]} {fitted.get(version)} vs {here.get(version)}")
    return Check(dict(fitted), here, tuple(found))


def describe(env: Mapping[str, Any], runtime: str | None = None) -> str:
    """One machine in a few words: 'AMD EPYC, 2445 MHz, 2 cores, tflite-micro 0.dev...'."""
    words = [str(env.get("cpu", "unknown CPU")), f"{env.get('clock_mhz', '?')} MHz",
             f"{env.get('cores', '?')} cores"]
    version = RUNTIME_VERSION.get(runtime or "")
    if version:
        words.append(f"{_DIST[version]} {env.get(version, '?')}")
    return ", ".join(words)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_info(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_mhz() -> int:
    """cpufreq's maximum where the OS has it (steady, unlike the current clock a laptop
    reports), else /proc/cpuinfo's clock, else 0; recorded and compared, never used to scale."""
    try:
        khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()
        return round(int(khz) / 1000)
    except (OSError, ValueError):
        pass
    value = _cpu_info("cpu MHz")
    return round(float(value)) if value else 0


def _cpu_model() -> str:
    return _cpu_info("model name") or platform.processor() or platform.machine()
