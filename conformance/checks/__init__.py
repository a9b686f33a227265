"""The check areas. Importing this package registers every check (one module per spec area)."""

from __future__ import annotations

import importlib
import pkgutil

AREAS = tuple(module.name for module in pkgutil.iter_modules(__path__) if not module.name.startswith("_"))

for _area in AREAS:
    importlib.import_module(f"{__name__}.{_area}")
