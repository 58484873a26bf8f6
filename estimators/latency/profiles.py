"""Named latency profiles: a user's own calibration of a target, kept between commands.

``tinynas calibrate`` saves one as ``<target>@<name>.json`` under the profile folder
(``$TINYNAS_CONFIG/profiles``, default ``~/.config/tinynas/profiles``); ``--target
stm32h7@lab`` then predicts with it instead of the shipped coefficients. A profile holds a
:class:`LatencyModel` per runtime it was calibrated for and, for host targets measured with
``tinynas calibrate --measure host``, the :class:`HostModel` fitted on this machine.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artefacts.atomic import atomic_write_json
from estimators.latency.predictor import HostModel, LatencyModel, LatencyModelError

PROFILE_SCHEMA = "tinynas-latency-profile/1"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def profile_dir() -> Path:
    root = os.environ.get("TINYNAS_CONFIG")
    base = Path(root) if root else Path.home() / ".config" / "tinynas"
    return base / "profiles"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise LatencyModelError(f"profile name {name!r}: use 1-64 lower-case letters, digits, "
                                "'.', '_' or '-', starting with a letter or digit")
    return name


def profile_path(target: str, name: str) -> Path:
    return profile_dir() / f"{target}@{check_name(name)}.json"


@dataclass(frozen=True)
class Profile:
    target: str
    name: str
    models: dict[str, LatencyModel]
    hosts: dict[str, HostModel] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": PROFILE_SCHEMA, "target": self.target, "name": self.name,
                "created": datetime.date.today().isoformat(),
                "models": {r: m.to_dict() for r, m in self.models.items()},
                "hosts": {r: h.to_dict() for r, h in self.hosts.items()},
                "notes": self.notes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        if data.get("schema") != PROFILE_SCHEMA:
            raise LatencyModelError(f"profile schema {data.get('schema')!r}, expected "
                                    f"{PROFILE_SCHEMA!r}")
        return cls(target=data["target"], name=data["name"],
                   models={r: LatencyModel.from_dict(m) for r, m in data["models"].items()},
                   hosts={r: HostModel.from_dict(h) for r, h in data.get("hosts", {}).items()},
                   notes=data.get("notes", {}))


def saved_profiles(target: str) -> list[str]:
    folder = profile_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem.split("@", 1)[1] for p in folder.glob(f"{target}@*.json"))


def load_profile(target: str, name: str) -> Profile:
    path = profile_path(target, name)
    if not path.is_file():
        found = ", ".join(saved_profiles(target)) or "none"
        raise LatencyModelError(f"no latency profile {name!r} for target {target!r} in "
                                f"{path.parent} (saved: {found}); make one with "
                                "`tinynas calibrate`")
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, found {type(data).__name__}")
        return Profile.from_dict(data)
    except LatencyModelError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LatencyModelError(f"latency profile {path} is unreadable: {exc}") from None


def save_profile(profile: Profile, merge: bool = True) -> Path:
    """Write atomically (:func:`artefacts.atomic.atomic_write_json`); with ``merge``,
    runtimes already in the saved profile are kept."""
    path = profile_path(profile.target, profile.name)
    if merge and path.is_file():
        old = load_profile(profile.target, profile.name)
        profile = Profile(profile.target, profile.name, {**old.models, **profile.models},
                          {**old.hosts, **profile.hosts}, {**old.notes, **profile.notes})
    return atomic_write_json(path, profile.to_dict(), indent=2)


def matching_host_profile(target: str, runtime: str) -> str | None:
    """The name of a saved profile of host ``target`` measured on this machine, if any."""
    from estimators.latency.environment import check

    for name in saved_profiles(target):
        try:
            host = load_profile(target, name).hosts.get(runtime)
        except LatencyModelError:
            continue  # an unreadable profile is reported when it is used, not here
        if host is not None and check(host.environment, runtime).match:
            return name
    return None
