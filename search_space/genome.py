"""The genome: one frozen, validated description of a searchable detector.

A genome that exists is buildable: every rule a builder would trip over is checked in
``__post_init__`` and reported as a :class:`GenomeError` naming the field, the bad value and what
would be valid. Genomes round-trip through plain dicts (and so JSON) without loss.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from search_space.priors import count_priors

BLOCK_TYPES = ("lb", "dlb", "dlb_skip")
HEAD_TYPES = ("ssd", "ssdlite")
KERNELS = (3, 5)
CHANNEL_DIVISORS = (1, 4, 8)
# 64 and 80 reach the ESP32's RAM (TFLM's person detection runs at 96); multiples of 16 keep
# the stage-1..3 maps exact (stage 4 and the extras round up, as a padded stride-2 conv does).
RESOLUTION_RANGE = (64, 320)
RESOLUTION_STEP = 16
# 1 = grayscale (TFLM's person detection, many MCU cameras): a third of the input tensor.
INPUT_CHANNELS = (1, 3)
WIDTH_RANGE = (0.1, 2.0)
DEPTH_RANGE = (1, 8)
MAX_RATIO = 4.0
NUM_STAGES = 4
# Base channels of EtinyNet-1.0 per stage; the last block of stage 4 widens to 512.
STAGE_CHANNELS = (32, 128, 192, 256)
LAST_CHANNELS = 512
# Output stride of every block of a stage (stem: conv s2 + max-pool s2).
STAGE_STRIDES = (4, 8, 16, 32)
# What a genome's JSON object must hold (channel_divisor, input_channels and version have
# defaults).
GENOME_KEYS = ("resolution", "stages", "taps", "head")
GENOME_OPTIONAL_KEYS = ("channel_divisor", "input_channels", "version")
GENOME_VERSION = 1


class GenomeError(ValueError):
    """A genome that cannot be built; the message names the field and the valid values."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise GenomeError(message)


def map_size(resolution: int, stride: int) -> int:
    """Side of the map at ``stride``: every stride-2 layer is padded, so sides round up."""
    return math.ceil(resolution / stride)


def scaled_channels(base: int, width: float, divisor: int) -> int:
    """``int(base * width)`` for divisor 1 (the seed's truncation), else the nearest multiple."""
    if divisor == 1:
        return max(1, int(base * width))
    return max(divisor, int(base * width / divisor + 0.5) * divisor)


@dataclass(frozen=True)
class StageGene:
    width: float
    depth: int
    block: str = "lb"
    kernel: int = 3

    def validate(self, where: str) -> None:
        lo, hi = WIDTH_RANGE
        _require(isinstance(self.width, (int, float)) and lo <= self.width <= hi,
                 f"{where}.width={self.width!r}: must be a number in [{lo}, {hi}]")
        lo, hi = DEPTH_RANGE
        _require(isinstance(self.depth, int) and lo <= self.depth <= hi,
                 f"{where}.depth={self.depth!r}: must be an integer in [{lo}, {hi}]")
        _require(self.block in BLOCK_TYPES,
                 f"{where}.block={self.block!r}: valid block types are {', '.join(BLOCK_TYPES)}")
        _require(self.kernel in KERNELS,
                 f"{where}.kernel={self.kernel!r}: valid depthwise kernels are 3 and 5")


@dataclass(frozen=True)
class AnchorGene:
    """Priors of one feature map, as fractions of the image side."""

    min_scale: float
    max_scale: float
    ratios: tuple[float, ...] = (2.0,)

    def __post_init__(self) -> None:
        try:
            ratios = tuple(float(r) for r in self.ratios)
        except (TypeError, ValueError):
            # Named here: float("wide") would otherwise escape as a bare ValueError.
            shown = list(self.ratios) if isinstance(self.ratios, list | tuple) else self.ratios
            raise GenomeError(f"anchor ratios={shown!r}: must be a list of numbers in "
                              f"(1, {MAX_RATIO}]") from None
        object.__setattr__(self, "ratios", ratios)

    @property
    def boxes_per_cell(self) -> int:
        # A min-size square, a sqrt(min*max) square, and two boxes per ratio.
        return 2 + 2 * len(self.ratios)

    def cell_boxes(self) -> list[tuple[float, float]]:
        """(w, h) of each box at one cell, in the order the head's channels are laid out.

        Sides are capped at 1: the seed clamps its (cx, cy, w, h) priors to [0, 1], and a
        centre always lies inside the image, so only w and h can be clamped.
        """
        small, large = self.min_scale, math.sqrt(self.min_scale * self.max_scale)
        boxes = [(small, small), (large, large)]
        for r in self.ratios:
            root = math.sqrt(r)
            boxes += [(small * root, small / root), (small / root, small * root)]
        return [(min(w, 1.0), min(h, 1.0)) for w, h in boxes]

    def validate(self, where: str) -> None:
        scales = (self.min_scale, self.max_scale)
        _require(all(isinstance(v, int | float) and not isinstance(v, bool) for v in scales),
                 f"{where}: scales min={self.min_scale!r} max={self.max_scale!r} must be "
                 "numbers with 0 < min < max <= 1")
        _require(0.0 < self.min_scale < self.max_scale <= 1.0,
                 f"{where}: scales min={self.min_scale!r} max={self.max_scale!r} must satisfy "
                 "0 < min < max <= 1")
        _require(all(1.0 < r <= MAX_RATIO for r in self.ratios),
                 f"{where}.ratios={list(self.ratios)}: each ratio must be in (1, {MAX_RATIO}] "
                 "(the reciprocal box is added automatically)")
        _require(len(set(self.ratios)) == len(self.ratios),
                 f"{where}.ratios={list(self.ratios)}: ratios must be distinct")


@dataclass(frozen=True)
class HeadGene:
    """Extra layers after the backbone, the predictor type and one anchor set per map."""

    kind: str
    extras: tuple[int, ...]
    anchors: tuple[AnchorGene, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "extras", tuple(self.extras))
        object.__setattr__(self, "anchors", tuple(self.anchors))

    def validate(self) -> None:
        _require(self.kind in HEAD_TYPES,
                 f"head.kind={self.kind!r}: valid head types are {', '.join(HEAD_TYPES)}")
        for i, ch in enumerate(self.extras):
            _require(isinstance(ch, int) and 2 <= ch <= 1024 and ch % 2 == 0,
                     f"head.extras[{i}]={ch!r}: must be an even channel count in [2, 1024]")
        for i, anchor in enumerate(self.anchors):
            anchor.validate(f"head.anchors[{i}]")


@dataclass(frozen=True)
class Genome:
    """An EtinyNet backbone with an SSD / SSDLite head at a square input resolution.

    ``taps`` lists the backbone outputs that feed the head as (stage, block), 1-based, one
    per stage at most, in stage order, ending at the backbone output (4, depth of stage 4).
    """

    resolution: int
    stages: tuple[StageGene, ...]
    taps: tuple[tuple[int, int], ...]
    head: HeadGene
    channel_divisor: int = 8
    input_channels: int = 3
    version: int = field(default=GENOME_VERSION)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "taps", tuple(tuple(t) for t in self.taps))
        self._validate()

    # -- validation ---------------------------------------------------------------
    def _validate(self) -> None:
        lo, hi = RESOLUTION_RANGE
        _require(isinstance(self.resolution, int) and lo <= self.resolution <= hi
                 and self.resolution % RESOLUTION_STEP == 0,
                 f"resolution={self.resolution!r}: must be a multiple of {RESOLUTION_STEP} "
                 f"in [{lo}, {hi}]")
        _require(self.input_channels in INPUT_CHANNELS,
                 f"input_channels={self.input_channels!r}: valid values are 1 (grayscale) "
                 "and 3 (RGB)")
        _require(self.channel_divisor in CHANNEL_DIVISORS,
                 f"channel_divisor={self.channel_divisor!r}: valid values are "
                 f"{', '.join(map(str, CHANNEL_DIVISORS))}")
        _require(len(self.stages) == NUM_STAGES,
                 f"stages: need exactly {NUM_STAGES} stages, got {len(self.stages)}")
        for i, stage in enumerate(self.stages):
            stage.validate(f"stages[{i}]")
        self._validate_taps()
        self.head.validate()
        self._validate_maps()

    def _validate_taps(self) -> None:
        _require(len(self.taps) >= 1, "taps: at least the backbone output must feed the head")
        for tap in self.taps:
            _require(len(tap) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                           for v in tap),
                     f"taps: {list(tap)} is not a (stage, block) pair of integers, e.g. [4, 3]")
        stages_seen = [t[0] for t in self.taps]
        _require(stages_seen == sorted(set(stages_seen)),
                 f"taps={list(self.taps)}: at most one tap per stage, in increasing stage order")
        for stage, block in self.taps:
            _require(1 <= stage <= NUM_STAGES,
                     f"taps: stage {stage} does not exist (valid: 1..{NUM_STAGES})")
            depth = self.stages[stage - 1].depth
            _require(1 <= block <= depth,
                     f"taps: block {block} of stage {stage} does not exist (valid: 1..{depth})")
        last = (NUM_STAGES, self.stages[-1].depth)
        _require(self.taps[-1] == last,
                 f"taps={list(self.taps)}: the last tap must be the backbone output {last}")

    def _validate_maps(self) -> None:
        size = map_size(self.resolution, STAGE_STRIDES[-1])
        for i in range(len(self.head.extras)):
            _require(size > 1, f"head.extras: extra layer {i} would shrink a 1x1 map at "
                     f"resolution {self.resolution}; at most {i} extra layers fit")
            size = math.ceil(size / 2)
        _require(len(self.head.anchors) == self.num_maps,
                 f"head.anchors: need one anchor set per feature map ({self.num_maps} = "
                 f"{len(self.taps)} taps + {len(self.head.extras)} extras), "
                 f"got {len(self.head.anchors)}")

    # -- derived ------------------------------------------------------------------
    @property
    def num_maps(self) -> int:
        return len(self.taps) + len(self.head.extras)

    def stage_channels(self) -> tuple[int, ...]:
        return tuple(scaled_channels(c, s.width, self.channel_divisor)
                     for c, s in zip(STAGE_CHANNELS, self.stages, strict=True))

    def last_channels(self) -> int:
        return scaled_channels(LAST_CHANNELS, self.stages[-1].width, self.channel_divisor)

    def map_sizes(self) -> tuple[int, ...]:
        sizes = [map_size(self.resolution, STAGE_STRIDES[stage - 1]) for stage, _ in self.taps]
        size = sizes[-1]
        for _ in self.head.extras:
            size = math.ceil(size / 2)
            sizes.append(size)
        return tuple(sizes)

    def num_priors(self) -> int:
        return count_priors(self.map_sizes(), self.head.anchors)

    # -- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (dicts, lists, numbers, strings)."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genome:
        """A genome from plain JSON types; every structural fault (a missing or unknown key,
        a wrong type) is a :class:`GenomeError` naming where it is."""
        data = _fields(data, "genome", GENOME_KEYS, GENOME_OPTIONAL_KEYS)
        version = data.get("version", GENOME_VERSION)
        _require(version == GENOME_VERSION, f"version={version!r}: this tinynas reads genome "
                 f"version {GENOME_VERSION}")
        head = _fields(data["head"], "head", ("kind", "extras", "anchors"))
        stages = [_fields(s, f"stages[{i}]", ("width", "depth"), ("block", "kernel"))
                  for i, s in enumerate(_list(data["stages"], "stages"))]
        anchors = [_fields(a, f"head.anchors[{i}]", ("min_scale", "max_scale", "ratios"))
                   for i, a in enumerate(_list(head["anchors"], "head.anchors"))]
        try:
            return cls(
                resolution=data["resolution"],
                stages=tuple(StageGene(**s) for s in stages),
                taps=tuple(tuple(_list(t, f"taps[{i}]"))
                           for i, t in enumerate(_list(data["taps"], "taps"))),
                head=HeadGene(kind=head["kind"], extras=tuple(_list(head["extras"],
                                                                    "head.extras")),
                              anchors=tuple(AnchorGene(a["min_scale"], a["max_scale"],
                                                       tuple(_list(a["ratios"],
                                                                   f"head.anchors[{i}].ratios")))
                                            for i, a in enumerate(anchors))),
                channel_divisor=data.get("channel_divisor", 8),
                input_channels=data.get("input_channels", 3),
                version=version,
            )
        except TypeError as exc:  # a value of the wrong type that validation compared
            raise GenomeError(f"genome dict is malformed ({exc}); see Genome.to_dict() for "
                              "the layout") from exc

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Genome:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenomeError(f"genome is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise GenomeError("genome JSON must be an object with keys "
                              f"{', '.join(GENOME_KEYS)}")
        return cls.from_dict(data)


def _fields(value: Any, where: str, required: tuple[str, ...],
            optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """``value`` as a JSON object holding ``required`` and nothing but ``optional`` besides."""
    expected = ", ".join(required + optional)
    if not isinstance(value, dict):
        raise GenomeError(f"{where}: expected an object with keys {expected}, got "
                          f"{type(value).__name__} {value!r:.40}")
    missing = [k for k in required if k not in value]
    unknown = [k for k in value if k not in required + optional]
    faults = ([f"lacks {', '.join(missing)}"] if missing else []) + (
        [f"has unknown key{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}"]
        if unknown else [])
    if faults:
        raise GenomeError(f"{where} is malformed: {'; '.join(faults)}; expected keys {expected}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise GenomeError(f"{where}: expected a list, got {type(value).__name__} {value!r:.40}")
    return list(value)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def linear_anchors(num_maps: int, smin: float, smax: float,
                   ratios: tuple[tuple[float, ...], ...]) -> tuple[AnchorGene, ...]:
    """SSD's linear scale schedule: map k gets min s_k and max s_{k+1}; the last max is 1."""
    if num_maps == 1:
        return (AnchorGene(smin, 1.0, ratios[0]),)
    scales = [smin + (smax - smin) * k / (num_maps - 1) for k in range(num_maps)]
    scales = [round(s, 6) for s in scales] + [1.0]
    return tuple(AnchorGene(scales[k], scales[k + 1], ratios[k]) for k in range(num_maps))


def genome_at_resolution(genome: Genome, resolution: int) -> Genome:
    """``genome`` with a square input of ``resolution`` (training at another input size).

    Anchor scales are fractions of the image side, so they carry over. A smaller input has
    smaller maps: extra layers that would have to shrink a 1x1 map are dropped from the end,
    with the anchor sets of their maps (the coarsest ones). The seed ``etn-w0.35-ssdlite`` at
    128 thus keeps two of its three extras: maps 16/8/4/2/1 and the seed's first five anchor
    sets. Raises :class:`GenomeError` for an invalid resolution.
    """
    size = resolution // STAGE_STRIDES[-1]
    fit = 0
    while fit < len(genome.head.extras) and size > 1:
        size = math.ceil(size / 2)
        fit += 1
    head = HeadGene(genome.head.kind, genome.head.extras[:fit],
                    genome.head.anchors[: len(genome.taps) + fit])
    return replace(genome, resolution=resolution, head=head)
