"""The check registry: ``@check`` registers a function under a stable ID; a duplicate ID is an error."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .model import Level, Need

if TYPE_CHECKING:
    from .context import Context

CheckFunction = Callable[["Context"], "str | None"]
ID_PATTERN = re.compile(r"^[A-Z]+(-[A-Z]+)?-\d{3}$")


@dataclass(frozen=True)
class Check:
    id: str
    level: Level
    spec: tuple[str, ...]
    func: CheckFunction
    needs: tuple[Need, ...] = ()
    dialect: bool = False  # MUST*: relaxed to warn in the fastapi profile
    group: str = ""
    cost: str = "quick"  # the lowest --level that runs it: quick, standard or thorough

    @property
    def name(self) -> str:
        return self.func.__name__

    @property
    def title(self) -> str:
        return (self.func.__doc__ or "").strip().splitlines()[0] if self.func.__doc__ else self.name


REGISTRY: dict[str, Check] = {}
# --level: quick runs the cheap checks, standard adds those that cost the server some work
# (timing samples, large bodies), thorough adds the slow and noisy ones.
RUN_LEVELS = ("quick", "standard", "thorough")

# Areas in the order they run and are listed: the baseline first, then the token endpoint, then
# what is sent to protected operations.
GROUP_ORDER = (
    "baseline",
    "token_endpoint",
    "scopes",
    "token_format",
    "signatures",
    "algorithms",
    "key_headers",
    "jwks",
    "issuer_keys",
    "claims",
    "bearer",
    "protected",
    "refresh",
    "revocation",
    "enumeration",
    "rate",
)


class DuplicateCheckError(ValueError):
    """Raised when two checks claim the same ID."""


def check(
    id: str,
    *,
    level: Level,
    spec: Sequence[str],
    needs: Iterable[Need] = (),
    dialect: bool = False,
    cost: str = "quick",
) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as check ``id``; its docstring's first line is the requirement."""

    def register(func: CheckFunction) -> CheckFunction:
        if id in REGISTRY:
            raise DuplicateCheckError(f"check ID {id} is registered twice ({REGISTRY[id].name} and {func.__name__})")
        if not ID_PATTERN.match(id):
            raise ValueError(f"check ID {id!r} is not of the form AREA-NNN or AREA-SUB-NNN")
        if cost not in RUN_LEVELS:
            raise ValueError(f"check {id}: cost {cost!r} is not one of {', '.join(RUN_LEVELS)}")
        group = func.__module__.rsplit(".", 1)[-1]
        REGISTRY[id] = Check(id, level, tuple(spec), func, tuple(needs), dialect, group, cost)
        return func

    return register


def all_checks() -> list[Check]:
    """Every registered check, in run order: by area (``GROUP_ORDER``), then as registered."""
    from . import checks  # noqa: F401 - importing the package registers every area

    order = {group: index for index, group in enumerate(GROUP_ORDER)}
    return sorted(REGISTRY.values(), key=lambda c: order.get(c.group, len(order)))


def _matches(check_id: str, patterns: Sequence[str]) -> bool:
    return any(check_id.upper().startswith(pattern.upper()) for pattern in patterns)


def select(
    checks: Sequence[Check], include: Sequence[str] = (), exclude: Sequence[str] = (), level: str = "thorough"
) -> list[Check]:
    """Checks up to ``level`` whose ID starts with one of ``include`` (all if empty) and with none of ``exclude``."""
    ceiling = RUN_LEVELS.index(level)
    chosen = [c for c in checks if (not include or _matches(c.id, include)) and RUN_LEVELS.index(c.cost) <= ceiling]
    return [c for c in chosen if not _matches(c.id, exclude)]
