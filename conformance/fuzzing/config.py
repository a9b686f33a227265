"""``FuzzConfig``: the run's target (a ``RunConfig``) and how much fuzzing to do; built once, passed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RunConfig, build_config
from ..errors import ConfigError

DEFAULT_MAX_EXAMPLES = 100
FUZZ_FLAGS = ("max_examples", "seed", "max_time", "report_dir", "workers", "exclude_paths")


@dataclass(frozen=True)
class FuzzConfig:
    target: RunConfig  # base URL, the primary account or the token run's source, the paths, timeouts, the contract
    max_examples: int = DEFAULT_MAX_EXAMPLES  # Hypothesis examples per operation in the fuzzing phase
    seed: int | None = None  # None: a random seed, reported so that the run can be repeated
    max_time_s: float | None = None  # stop after this long, reporting what was tested
    report_dir: Path | None = None
    workers: int = 1
    exclude_paths: tuple[str, ...] = ()  # contract paths left out (the target does not implement them)


def _number(value: Any, name: str, low: float, high: float, integer: bool) -> Any:
    kind = int if integer else (int, float)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        unit = "a whole number" if integer else "a number"
        raise ConfigError(f"--{name.replace('_', '-')} must be {unit} from {low:g} to {high:g}, got {value!r}")
    return value


def build_fuzz_config(
    flags: Mapping[str, Any], env: Mapping[str, str] | None = None, config_file: Path | None = None
) -> FuzzConfig:
    """Flags (``None`` = not given) and the shared config file into a ``FuzzConfig``.

    The token sources are those of ``jwt-conformance run``, read by the same code: ``--token`` (or its
    environment variable), ``--token-command``, issuer mode (``--issuer-keys`` or the ``issuer:`` section),
    ``users.primary.token`` / ``token_command``; else the password grant.
    """
    target = build_config({k: v for k, v in flags.items() if k not in FUZZ_FLAGS}, env=env, config_file=config_file)
    if target.issuer_mode is None and (flags.get("issuer") or flags.get("audience")):
        raise ConfigError("--issuer and --audience name the tokens issuer mode mints: add --issuer-keys DIR")
    max_examples = _number(flags.get("max_examples"), "max_examples", 1, 100_000, True)
    return FuzzConfig(
        target=target,
        max_examples=DEFAULT_MAX_EXAMPLES if max_examples is None else max_examples,
        seed=_number(flags.get("seed"), "seed", 0, 2**63 - 1, True),
        max_time_s=_number(flags.get("max_time"), "max_time", 1, 86_400, False),
        report_dir=flags.get("report_dir"),
        workers=_number(flags.get("workers"), "workers", 1, 16, True) or 1,
        exclude_paths=tuple(flags.get("exclude_paths") or ()),
    )
