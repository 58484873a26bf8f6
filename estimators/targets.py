"""Board targets: memory, clock, default budgets and the runtimes that can run a model on them.

A :class:`Target` is a frozen record in a small registry (``register_target`` /
``get_target`` / ``list_targets``), so a later board (or a host target) is one more
``register_target(Target(...))`` call and nothing else changes.

Budget convention (what ``default_flash_budget`` / ``default_ram_budget`` and a user's
``--flash`` / ``--ram`` mean): everything the *model deployment* adds to the firmware.

* flash budget >= model file (weights + graph metadata) + ``runtime.code_flash_bytes``
* RAM budget   >= activations (TFLM arena) + ``runtime.ram_bytes``

The rest of the chip (stack, heap, drivers, frame buffers, network stacks, the application
itself) lives outside the budget; that is why the defaults are well below the totals.

Every figure carries a source. Figures that are estimates say so and say how they were
derived. ``published_device_runs.csv`` means the calibration table shipped with the project
(ST model zoo rows on an STM32H747I-DISCO at 400 MHz, MLPerf Tiny, esp-tflite-micro).
Runtime overheads are rounded *up* (to a multiple of 16 KiB for code, 4 KiB for RAM): a budget
check must fail on the safe side (a build that overflows the linker is the worst outcome).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

KIB = 1024
MIB = 1024 * KIB


class TargetError(ValueError):
    """A bad target or runtime name or value; the message is one line naming the valid choices."""


@dataclass(frozen=True)
class Runtime:
    """An inference runtime as deployed on one target, with its fixed memory overheads."""

    name: str
    label: str
    code_flash_bytes: int
    ram_bytes: int
    source: str

    def __post_init__(self) -> None:
        # Zero is allowed for host runtimes, which load as shared libraries outside any budget.
        _require_positive(f"runtime {self.name!r} code_flash_bytes", self.code_flash_bytes,
                          minimum=0)
        _require_positive(f"runtime {self.name!r} ram_bytes", self.ram_bytes, minimum=0)
        if not self.source.strip():
            raise TargetError(f"runtime {self.name!r} has no source for its figures")


@dataclass(frozen=True)
class Target:
    """A board with its memory, clock, default model budgets and selectable runtimes."""

    name: str
    board: str
    core: str
    clock_mhz: int
    sram_bytes: int
    flash_bytes: int
    default_ram_budget: int
    default_flash_budget: int
    runtime: Runtime
    runtimes: tuple[Runtime, ...]
    budget_reasoning: str
    sources: tuple[str, ...]
    notes: str = ""
    # 8 on a 64-bit host: TFLM's persistent structures hold pointers, so its arena tail grows.
    pointer_bytes: int = 4
    # A user's latency calibration (``tinynas calibrate``), chosen as ``--target name@profile``.
    profile: str = ""

    def __post_init__(self) -> None:
        for field_name in ("clock_mhz", "sram_bytes", "flash_bytes",
                           "default_ram_budget", "default_flash_budget"):
            _require_positive(f"target {self.name!r} {field_name}", getattr(self, field_name))
        self._check_budgets()
        self._check_runtimes()
        if not self.sources or not all(s.strip() for s in self.sources):
            raise TargetError(f"target {self.name!r} needs non-empty sources")
        if not self.budget_reasoning.strip():
            raise TargetError(f"target {self.name!r} needs its budget reasoning")

    def _check_budgets(self) -> None:
        if self.default_ram_budget > self.sram_bytes:
            raise TargetError(f"target {self.name!r}: default RAM budget exceeds its SRAM")
        if self.default_flash_budget > self.flash_bytes:
            raise TargetError(f"target {self.name!r}: default flash budget exceeds its flash")

    def _check_runtimes(self) -> None:
        names = [r.name for r in self.runtimes]
        if len(set(names)) != len(names):
            raise TargetError(f"target {self.name!r}: duplicate runtime names {names}")
        # The default is always listed first, so "runtimes" reads as "default, then the others".
        if not self.runtimes or self.runtimes[0] != self.runtime:
            raise TargetError(f"target {self.name!r}: runtimes must start with the default runtime")

    @property
    def runtime_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.runtimes)

    def with_runtime(self, name: str) -> Target:
        """A copy of this target whose default runtime is ``name`` (one of ``runtimes``)."""
        wanted = name.strip().lower()
        for candidate in self.runtimes:
            if candidate.name == wanted:
                others = tuple(r for r in self.runtimes if r is not candidate)
                return replace(self, runtime=candidate, runtimes=(candidate, *others))
        raise TargetError(f"unknown runtime {name!r} for target {self.name!r}; "
                          f"valid runtimes: {', '.join(self.runtime_names)}")

    def with_clock(self, mhz: int) -> Target:
        """A copy of this target at another core clock (e.g. an STM32H743 at 480 MHz)."""
        if isinstance(mhz, bool) or not isinstance(mhz, int) or mhz <= 0:
            raise TargetError(f"invalid clock {mhz!r} for target {self.name!r}; "
                              "use a positive whole number of MHz, e.g. 480")
        if mhz == self.clock_mhz:
            return self
        note = f"clock set to {mhz} MHz by the user (sources give {self.clock_mhz} MHz)"
        return replace(self, clock_mhz=mhz, notes=f"{self.notes} {note}".strip())

    @property
    def label(self) -> str:
        return f"{self.name}@{self.profile}" if self.profile else self.name


def _require_positive(what: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise TargetError(f"{what} must be {kind}, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

_TARGETS: dict[str, Target] = {}


def register_target(target: Target, *, overwrite: bool = False) -> Target:
    """Add ``target`` to the registry under ``target.name`` and return it."""
    if target.name != target.name.strip().lower() or not target.name:
        raise TargetError(f"target name {target.name!r} must be lower case without spaces")
    if target.name in _TARGETS and not overwrite:
        raise TargetError(f"target {target.name!r} is already registered")
    _TARGETS[target.name] = target
    return target


def get_target(name: str) -> Target:
    """The registered target called ``name`` (case and surrounding spaces ignored);
    ``name@profile`` selects a saved latency calibration of it (checked when it is used)."""
    base, _, profile = str(name).strip().lower().partition("@")
    target = _TARGETS.get(base)
    if target is None:
        raise TargetError(f"unknown target {name!r}; valid targets: {', '.join(sorted(_TARGETS))}"
                          " (a calibrated profile is written target@profile)")
    if "@" in str(name) and not profile:
        raise TargetError(f"target {name!r} names no profile after '@', e.g. {base}@lab")
    return replace(target, profile=profile) if profile else target


def list_targets() -> list[Target]:
    """All registered targets, sorted by name."""
    return [_TARGETS[name] for name in sorted(_TARGETS)]


# ---------------------------------------------------------------------------------------------
# Runtime figures
# ---------------------------------------------------------------------------------------------

_CSV = "published_device_runs.csv"

# X-CUBE-AI / STEdgeAI. Its figures are measured by ST per model; we take the largest value
# among the two current releases for every model whose weights fit the board's 2 MB flash.
# Estimates do not use these two numbers: the X-CUBE-AI memory model (estimators.xcubeai)
# gives code flash and runtime RAM per network; these are the runtime's listed overhead.
XCUBEAI = Runtime(
    name="xcubeai",
    label="X-CUBE-AI / STEdgeAI",
    code_flash_bytes=112 * KIB,
    ram_bytes=32 * KIB,
    source=(
        f"{_CSV}, STM32H747I-DISCO rows with weights_flash_kib <= 2048 (models that fit): "
        "code_flash_kib is 68.00-108.40 for STM32Cube.AI 10.0.0 (max: mobilenet_v2 0.35) and "
        "36.03-65.68 for STEdgeAI Core 3.0.0; runtime_ram_kib is 16.33-30.19 for Cube.AI 10.0.0 "
        "(max: mobilenet_v2 rows) and 0.3-3.77 for STEdgeAI Core 3.0.0. Upper values rounded up: "
        "108.40 -> 112 KiB code, 30.19 -> 32 KiB RAM. Code grows with the model (191.16 KiB for "
        "mobilenet_v2 1.4, whose 6 MB of weights do not fit); the superseded STM32Cube.AI 7.3.0 "
        "rows are larger (74-123 KiB code, 20-37 KiB RAM)."
    ),
)

# TFLM outside its arena: the interpreter, op resolver and allocator objects plus the stack
# used by Invoke(). Everything else TFLM allocates (persistent tail included) is in the arena,
# which the RAM estimator measures with the host tflite_micro interpreter.
_TFLM_RAM = 4 * KIB
_TFLM_RAM_SOURCE = (
    "estimate: 4 KiB for TFLM objects outside the arena and the Invoke() stack. In espressif/"
    "esp-nn#38 (ESP32, TFLM 1.4.0) TFLM's linked DRAM was 63,432 B above a no-interpreter "
    "build whose arena was 64 KiB smaller, i.e. TFLM's own static RAM is within that noise"
)

# TFLM interpreter + reference kernels: measured .text of a small int8 network's build.
_TFLM_ARM_TEXT_SOURCE = (
    "tensorflow/tensorflow#48073: TFLM (TF 2.4.1) code of 164,818 B .text for a 12-layer int8 "
    "network (MCU target not named in the issue), the same with AllOpsResolver and a 5-op "
    "MicroMutableOpResolver"
)

TFLM_CMSIS_NN = Runtime(
    name="tflm-cmsis-nn",
    label="TensorFlow Lite Micro + CMSIS-NN",
    code_flash_bytes=192 * KIB,
    # CMSIS-NN asks the arena for im2col/scratch buffers that the host interpreter (reference
    # kernels) never allocates, so they are added here rather than missed.
    ram_bytes=16 * KIB,
    source=(
        f"estimate. Code: {_TFLM_ARM_TEXT_SOURCE}; CMSIS-NN adds 10-19 kB of flash over the "
        "reference kernels for the same model on STM32H743 (mit-han-lab/tinyengine README, "
        "Flash table, CMSIS-NN vs TF-Lite Micro columns): 164,818 B + 19 kB = ~180 KiB, "
        "rounded up to 192 KiB. Cross-check: in that table whole-firmware flash with CMSIS-NN "
        "exceeds X-CUBE-AI 7.3 by 183-260 kB for the same 8 models (incl. .tflite metadata). "
        "RAM: 4 KiB TFLM objects + CMSIS-NN scratch, which needs 0-9 kB more peak SRAM than "
        f"TFLM reference kernels in the tinyengine README's peak-memory table -> 16 KiB. "
        f"{_TFLM_RAM_SOURCE}"
    ),
)

TFLM_REF_ARM = Runtime(
    name="tflm-ref",
    label="TensorFlow Lite Micro, reference kernels",
    code_flash_bytes=176 * KIB,
    ram_bytes=_TFLM_RAM,
    source=(
        f"estimate. Code: {_TFLM_ARM_TEXT_SOURCE} (161 KiB), rounded up to 176 KiB. "
        f"RAM: {_TFLM_RAM_SOURCE}. About 10x slower than CMSIS-NN (TinyEngine table, STM32H743)."
    ),
)

# TFLM on Xtensa: measured as the difference between a TFLM + ESP-NN build and a build that
# calls the same ESP-NN kernels from generated C, for the same model on an ESP32.
_ESP_CODE_SOURCE = (
    "estimate. espressif/esp-nn#38 (ESP32, ESP-NN 1.2.6, esp-tflite-micro 1.4.0, MobileNetV2-"
    "0.25): TFLM + ESP-NN app binary 665,504 B vs 465,296 B calling ESP-NN directly, so TFLM "
    "costs 200,208 B (interpreter, kernel wrappers, fallback kernels, .tflite metadata); ESP-NN "
    "kernels were only 6,208 B bigger than portable C ones. 200,208 B + a 32 KiB allowance for "
    "the kernels themselves = ~228 KiB, rounded up to 240 KiB. Not measured on the ESP32-S3 "
    "(same component, LX7 assembly kernels)"
)

# ESP-NN on the ESP32-S3 asks the arena for scratch buffers that the host interpreter
# (reference kernels) does not allocate; the esp-tflite-micro example budgets 40 KiB for them.
_ESP_NN_S3_SCRATCH = 40 * KIB


def _tflm_esp_nn(scratch: int, scratch_source: str) -> Runtime:
    return Runtime(
        name="tflm-esp-nn",
        label="TensorFlow Lite Micro + ESP-NN",
        code_flash_bytes=240 * KIB,
        ram_bytes=_TFLM_RAM + scratch,
        source=f"Code: {_ESP_CODE_SOURCE}. RAM: {_TFLM_RAM_SOURCE}; {scratch_source}.",
    )


TFLM_ESP_NN_ESP32 = _tflm_esp_nn(
    0, "ESP-NN scratch: none, esp-tflite-micro examples/person_detection adds extra arena "
       "(scratchBufSize) only on the ESP32-S3",
)

TFLM_ESP_NN_ESP32S3 = _tflm_esp_nn(
    _ESP_NN_S3_SCRATCH,
    "plus 40 KiB of ESP-NN scratch: esp-tflite-micro examples/person_detection/main/"
    "main_functions.cc reserves scratchBufSize = 40 * 1024 of extra arena on the ESP32-S3 for a "
    "96x96x1 MobileNet v1 0.25; scratch grows with the largest conv layer, so check big models "
    "on the board",
)

TFLM_REF_ESP = Runtime(
    name="tflm-ref",
    label="TensorFlow Lite Micro, reference kernels",
    code_flash_bytes=240 * KIB,
    ram_bytes=_TFLM_RAM,
    source=(
        f"Code: same estimate as tflm-esp-nn; {_ESP_CODE_SOURCE}. RAM: {_TFLM_RAM_SOURCE}. "
        f"About 40x slower than ESP-NN on the ESP32-S3 ({_CSV}: person_detection 2300 ms vs 54 ms)"
    ),
)


# ---------------------------------------------------------------------------------------------
# Boards
# ---------------------------------------------------------------------------------------------

STM32H7 = register_target(Target(
    name="stm32h7",
    board="STM32H747I-DISCO / STM32H743 (Cortex-M7)",
    core="Arm Cortex-M7 (DSP extension, no vector unit), I/D caches",
    # ST's published model-zoo latencies (the calibration rows) are measured at 400 MHz.
    clock_mhz=400,
    sram_bytes=1 * MIB,
    flash_bytes=2 * MIB,
    default_ram_budget=384 * KIB,
    default_flash_budget=1 * MIB,
    runtime=XCUBEAI,
    runtimes=(XCUBEAI, TFLM_CMSIS_NN, TFLM_REF_ARM),
    budget_reasoning=(
        "RAM 384 KiB: the activation buffer (X-CUBE-AI) or TFLM arena must be one contiguous "
        "block, and the largest contiguous bank is the 512 KB AXI SRAM. 384 KiB (75%) leaves "
        "128 KiB of it for the runtime's own RAM, buffers that must sit next to the arena and "
        "linker slack; stack, heap, DMA and camera frame buffers go to the other banks. Planning "
        "to the last byte of the bank is what failed for users (ST model zoo: analysis said "
        "509 KiB, the linker overflowed). "
        "Flash 1 MiB: half of the 2 MB internal flash (one of its two 1 MB banks), leaving the "
        "other for HAL, middleware and the application. It holds weights + runtime code: with "
        "X-CUBE-AI (112 KiB) ~912 KiB of weights, enough for ST's mobilenet_v1 0.5 "
        "(812.61 KiB weights)."
    ),
    sources=(
        "targets.md: STM32H743/H747, Cortex-M7, 480 MHz max (H743); ST measures the H747 at "
        "400 MHz; 1 MB SRAM in banks, largest contiguous bank the 512 KB AXI SRAM; 2 MB flash",
        f"{_CSV}: ST model zoo rows, STM32H747I-DISCO (Cortex-M7, 1 core), clock_mhz 400",
        "STM32H743xI datasheet: up to 480 MHz, 'up to 1 Mbyte of RAM', 2 Mbytes of flash in "
        "two banks",
    ),
    notes=(
        "clock 400 MHz matches the calibration rows; an STM32H743 at its 480 MHz maximum is "
        "with_clock(480) (TinyEngine's table is at 480 MHz). sram_bytes is the datasheet's "
        "'1 Mbyte' headline: AXI SRAM 512 KB, SRAM1-3 288 KB, SRAM4 64 KB, DTCM 128 KB, "
        "ITCM 64 KB."
    ),
))

ESP32 = register_target(Target(
    name="esp32",
    board="ESP32 (e.g. ESP32-DevKitC / ESP32-WROOM-32)",
    core="Xtensa LX6, 2 cores",
    clock_mhz=240,
    sram_bytes=520 * KIB,
    flash_bytes=4 * MIB,
    default_ram_budget=128 * KIB,
    default_flash_budget=1 * MIB,
    runtime=TFLM_ESP_NN_ESP32,
    runtimes=(TFLM_ESP_NN_ESP32, TFLM_REF_ESP),
    budget_reasoning=(
        "RAM 128 KiB: Espressif's own esp-tflite-micro person_detection example, which runs on "
        "the ESP32 and the ESP32-S3, takes its tensor arena from internal RAM with "
        "heap_caps_malloc(135 * 1024, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT): a 135 KiB "
        "contiguous internal block is there in an ESP-IDF app without Wi-Fi. 128 KiB (arena + "
        "4 KiB runtime RAM) stays 11 KiB under that, for fragmentation and ESP-IDF version "
        "drift, and holds TFLM's person-detection model (~107 KiB by our estimate). The heap "
        "is split into regions, so the limit is the largest free block, not the free heap: "
        "with Wi-Fi up, heap dumps show a largest DRAM region of 113,840 B "
        "(SHA2017-badge/micropython-esp32#85) and a largest free block of 113,792 B "
        "(espressif/arduino-esp32#5346); such an app should pass --ram 100KiB. A static arena "
        "is capped by dram0_0_seg (a 200 KiB one overflowed, espressif/esp-tflite-micro#3). "
        "Flash 1 MiB: flash is external, commonly 4 MB, and the model and TFLM code share the "
        "app partition with ESP-IDF, the Wi-Fi stack and the application (esp-tflite-micro's "
        "person_detection uses a 1.5 MB factory partition; ESP-IDF's default single-app table "
        "has 1 MB). 1 MiB = ~784 KiB of weights + 240 KiB TFLM code, which fits a 2 MB app "
        "partition (or a separate data partition) next to the application in 4 MB."
    ),
    sources=(
        "targets.md: ESP32, Xtensa LX6, 2 cores, 240 MHz, 520 KB SRAM much of it taken by the "
        "system, fragmented heap; external flash, commonly 4 MB",
        "ESP32 datasheet: 240 MHz, 520 KB SRAM",
        "espressif/esp-tflite-micro examples/person_detection: partitions.csv (factory 0x180000) "
        "and main_functions.cc (arena from heap_caps_malloc, MALLOC_CAP_INTERNAL)",
    ),
    notes=(
        "PSRAM modules (e.g. WROVER) can hold a bigger arena at a large speed cost; give --ram "
        "explicitly for that. Heap figures shift with the ESP-IDF version and menuconfig."
    ),
))

ESP32S3 = register_target(Target(
    name="esp32s3",
    board="ESP32-S3 (e.g. ESP32-S3-DevKitC-1 / ESP32-S3-EYE)",
    core="Xtensa LX7, 2 cores, vector instructions (used by ESP-NN)",
    clock_mhz=240,
    sram_bytes=512 * KIB,
    flash_bytes=8 * MIB,
    default_ram_budget=160 * KIB,
    default_flash_budget=2 * MIB,
    runtime=TFLM_ESP_NN_ESP32S3,
    runtimes=(TFLM_ESP_NN_ESP32S3, TFLM_REF_ESP),
    budget_reasoning=(
        "RAM 160 KiB: the internal heap is far less split than on the ESP32. A camera app's "
        "heap dump on an ESP32-S3 shows its largest internal region at 267,552 B with "
        "197,676 B free in it at start (RomanLut/hx-esp32-cam-fpv#46). 160 KiB leaves "
        "~33 KiB of that for Wi-Fi and later allocations, and covers the arena + 44 KiB "
        "runtime RAM (incl. 40 KiB ESP-NN scratch): ~116 KiB for TFLM's own plan. "
        "Espressif's person_detection example takes a 135 KiB arena (scratch included) from "
        "internal RAM (heap_caps_malloc(135 * 1024, MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT)); "
        "160 KiB covers that plus the runtime's RAM outside the arena, and TFLM's "
        "person-detection model (~147 KiB by our estimate, which counts the 40 KiB scratch "
        "apart). "
        "Flash 2 MiB: flash is external, commonly 8-16 MB; we assume 8 MB. 2 MiB (weights + "
        "240 KiB TFLM code) fits a 4 MB app partition next to ESP-IDF, Wi-Fi and the "
        "application, which still allows two OTA slots in 8 MB."
    ),
    sources=(
        "targets.md: ESP32-S3, Xtensa LX7, 2 cores, vector instructions used by ESP-NN, "
        "240 MHz, 512 KB SRAM, external flash commonly 8-16 MB",
        "ESP32-S3 datasheet: 240 MHz, 512 KB SRAM",
        f"{_CSV}: esp-tflite-micro person_detection on ESP32-S3 at 240 MHz",
    ),
    notes="Octal PSRAM modules can hold a bigger arena; give --ram explicitly for that.",
))


# ---------------------------------------------------------------------------------------------
# Hosts: the two runtimes we can run here, so a prediction can be checked on any machine
# ---------------------------------------------------------------------------------------------

_HOST_MEMORY = 4 * 1024 * MIB
_HOST_REASONING = (
    "a host has no microcontroller limit: budgets are 4 GiB so that only a --flash / --ram the "
    "user gives can bind. Flash is the .tflite file; RAM is the TFLM arena plan with the "
    "64-bit persistent tail (what the host interpreter allocates)."
)
_HOST_SOURCES = (
    "the host runtimes of this package: ai-edge-litert (LiteRT) and tflite-micro (TFLM's "
    "Python interpreter); latency coefficients fitted on real runs recorded in "
    "estimators/data/latency_host_runs.csv, with the CPU they ran on",
)
_HOST_NOTES = (
    "latency predicted for the machine the shipped coefficients were measured on (see "
    "`tinynas targets --json`, latency.environment); run `tinynas calibrate --measure host` "
    "on yours and use --target host-...@local. clock_mhz is that machine's reported clock and "
    "is not used for scaling."
)


def _host_runtime(name: str, label: str) -> Runtime:
    return Runtime(name=name, label=label, code_flash_bytes=0, ram_bytes=0,
                   source="host: a shared library loaded by Python, outside any budget")


def _host_target(name: str, runtime: Runtime) -> Target:
    return Target(
        name=name, board=f"this computer ({runtime.label})", core="host CPU, one thread",
        clock_mhz=2445, sram_bytes=_HOST_MEMORY, flash_bytes=_HOST_MEMORY,
        default_ram_budget=_HOST_MEMORY, default_flash_budget=_HOST_MEMORY,
        runtime=runtime, runtimes=(runtime,), budget_reasoning=_HOST_REASONING,
        sources=_HOST_SOURCES, notes=_HOST_NOTES, pointer_bytes=8,
    )


HOST_LITERT = register_target(_host_target(
    "host-litert", _host_runtime("litert", "LiteRT, XNNPACK, 1 thread")))
HOST_TFLM = register_target(_host_target(
    "host-tflm", _host_runtime("tflm", "TensorFlow Lite Micro, reference kernels")))
