"""What a search study was created with: :class:`SearchConfig`, stored as the study's user
attr ``"tinynas"``.

A rerun continues a study only with the same config: trials scored against another budget,
proxy or dataset would not be comparable, and the Pareto front would mix them. How long to
run (trials, timeout, workers) and what to do afterwards (top-k training, export) may change.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from artefacts.tags import check_format
from estimators.budgets import format_bytes
from estimators.estimate import Budgets
from estimators.targets import Target, get_target
from nas.errors import UsageError
from objectives.data import DetectionDataset, has_split, open_dataset
from search_space.space import FULL_SPACE, SearchSpace

CONFIG_ATTR = "tinynas"
CONFIG_FORMAT = "tinynas-search/1"
OBJECTIVES = ("proxy", "latency", "flash", "ram")
METRIC_NAMES = {"proxy": "proxy", "latency": "latency_ms", "flash": "flash_bytes",
                "ram": "ram_bytes"}
SAMPLERS = ("nsga2", "tpe", "gp")
# The built-in demo dataset is recorded by name, not by its cache path, so the same command
# continues the study on another machine (another home directory).
DEMO_DATA = "demo"


@dataclass(frozen=True)
class SearchConfig:
    target: str                      # label, e.g. "stm32h7" or "stm32h7@lab"
    runtime: str
    clock_mhz: int
    flash_budget: int
    ram_budget: int
    latency_budget_ms: float | None
    proxy: str
    objectives: tuple[str, ...]      # ("proxy", "latency"[, "flash"][, "ram"])
    data: str                        # a dataset directory (absolute) or "demo"
    data_format: str | None
    on_error: str                    # broken annotation entries: "fail" or "skip"
    num_classes: int
    class_names: tuple[str, ...]
    seed: int
    sampler: str
    population: int                  # NSGA-II generation size (kept for the study's life)
    trial_budget_s: float | None = None  # a training proxy's time per trial, then PRUNED
    drop_empty: bool = False         # training images without objects left out
    # The space the sampler draws from (SearchSpace.to_dict(), fitted to the budget when the
    # study was created); None, in a study from before it was recorded, is FULL_SPACE.
    space: dict[str, Any] | None = None
    format: str = CONFIG_FORMAT

    @property
    def directions(self) -> list[str]:
        return ["maximize" if o == "proxy" else "minimize" for o in self.objectives]

    @property
    def metric_names(self) -> list[str]:
        return [METRIC_NAMES[o] for o in self.objectives]

    def target_and_budgets(self) -> tuple[Target, Budgets]:
        """The board and budgets the study was created for (any worker, any machine)."""
        target = get_target(self.target).with_runtime(self.runtime).with_clock(self.clock_mhz)
        return target, Budgets(self.flash_budget, self.ram_budget)

    def search_space(self) -> SearchSpace:
        return FULL_SPACE if self.space is None else SearchSpace.from_dict(self.space)

    def data_root(self) -> Path:
        if self.data == DEMO_DATA:
            from objectives.data.demo import demo_dataset

            return demo_dataset()
        return Path(self.data)

    def open_splits(self) -> tuple[DetectionDataset, DetectionDataset | None]:
        """The study's dataset: train, and val when the directory has that split. The study's
        classes are a subset of the data's (all of them without --classes): other classes'
        objects are left out."""
        root = self.data_root()
        opened = {"format": self.data_format, "subset": list(self.class_names),
                  "require_subset": False, "on_error": self.on_error}
        train = open_dataset(root, "train", **opened, drop_empty=self.drop_empty)
        val = open_dataset(root, "val", **opened) if has_split(root, "val",
                                                               self.data_format) else None
        return train, val

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["objectives"] = list(self.objectives)
        data["class_names"] = list(self.class_names)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        check_format(data, CONFIG_FORMAT, lambda found: UsageError(
            f"study config format {found!r} is not {CONFIG_FORMAT!r}: it was written by "
            "another tinynas version; use a new --study"))
        names = {f.name for f in fields(cls)}
        # Keys added later have defaults: a study from before them still opens.
        required = {f.name for f in fields(cls) if f.default is MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise UsageError(f"study config lacks {', '.join(missing)}; use a new --study")
        values = {k: data[k] for k in names if k in data}
        values["objectives"] = tuple(values["objectives"])
        values["class_names"] = tuple(values["class_names"])
        return cls(**values)

    def differences(self, other: SearchConfig) -> list[tuple[str, Any, Any]]:
        """(key, this value, other value) for every key that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [(k, mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]]


def check_same(study_name: str, stored: SearchConfig, asked: SearchConfig) -> None:
    """Refuse to continue ``study_name`` with another config; name the first differing key."""
    diffs = stored.differences(asked)
    if not diffs:
        return
    key, old, new = diffs[0]
    more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
    raise UsageError(f"study {study_name!r} was created with {key} {_show(key, old)}, this run "
                     f"asks for {_show(key, new)}{more}; rerun with the study's settings or "
                     "start a new study with --study NEW_NAME")


def _show(key: str, value: Any) -> str:
    if key.endswith("_budget") and isinstance(value, int):
        return format_bytes(value)
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "[]"
    return repr(value)


def parse_objectives(text: str) -> tuple[str, ...]:
    """``proxy,latency[,flash][,ram]`` in any order -> the canonical order."""
    asked = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = [t for t in asked if t not in OBJECTIVES]
    if unknown or len(set(asked)) != len(asked) or not {"proxy", "latency"} <= set(asked):
        raise UsageError(f"--objectives {text!r}: give proxy,latency plus optionally flash "
                         "and/or ram, e.g. proxy,latency,flash")
    return tuple(o for o in OBJECTIVES if o in asked)


def population_for(n_trials: int | None) -> int:
    """NSGA-II's generation size when not given: a quarter of the trials, at least 4 (fewer
    barely recombine) and at most 50 (Optuna's default: enough diversity for long runs).
    A time-limited run (no trial count) uses 20."""
    if n_trials is None:
        return 20
    return min(50, max(4, n_trials // 4))
