"""The contract the target is checked against: the kit's ``openapi.yaml`` unless ``--contract`` names another."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def default_contract_path() -> Path:
    """The kit's contract: packaged with the reference server in the wheel, or the repository's file."""
    from reference_impl.contract import contract_path

    return contract_path()


def load_contract(path: Path | None = None) -> dict[str, Any]:
    path = path or default_contract_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the contract {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        raise ConfigError(f"the contract {path} is not valid YAML or JSON") from None
    if not isinstance(document, dict) or "paths" not in document:
        raise ConfigError(f"the contract {path} is not an OpenAPI document (no 'paths')")
    return document


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_errors(document: Mapping[str, Any], schema: Mapping[str, Any], instance: Any) -> list[str]:
    """JSON Schema errors of ``instance``; local ``#/components/...`` references resolve in ``document``."""
    root = {**schema, "components": document.get("components", {})}
    validator = jsonschema.Draft202012Validator(root)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<body>'}: {error.message}"
        for error in validator.iter_errors(instance)
    ]


def response_schema(document: Mapping[str, Any], path: str, method: str, status: int) -> Mapping[str, Any] | None:
    """The JSON schema the contract gives for this answer, if any."""
    operation = document.get("paths", {}).get(path, {}).get(method.lower())
    if not isinstance(operation, Mapping):
        return None
    responses = operation.get("responses", {})
    spec = resolve(document, responses.get(str(status)) or responses.get(f"{str(status)[0]}XX"))
    if not isinstance(spec, Mapping):
        return None
    content = spec.get("content", {}).get("application/json", {})
    schema = content.get("schema")
    return schema if isinstance(schema, Mapping) else None


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(METHOD, path, operation object) of every operation of the document."""
    for path, item in document.get("paths", {}).items():
        if isinstance(item, Mapping):
            for method in HTTP_METHODS:
                operation = item.get(method)
                if isinstance(operation, Mapping):
                    yield method.upper(), str(path), operation


def security_of(document: Mapping[str, Any], operation: Mapping[str, Any]) -> list[Any]:
    """The operation's security requirements: its own ``security``, else the document's."""
    requirements = operation.get("security", document.get("security", []))
    return requirements if isinstance(requirements, list) else []


def secured_operations(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of every operation that declares a security requirement."""
    return [
        (method, path)
        for method, path, operation in operations(document)
        if security_of(document, operation) and "{" not in path
    ]
