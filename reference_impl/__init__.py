"""The reference server of the kit: a FastAPI app that implements ``openapi.yaml`` exactly."""

from __future__ import annotations

from .main import create_app
from .settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
