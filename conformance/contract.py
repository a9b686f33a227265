"""Reading OpenAPI documents: the kit's ``openapi.yaml`` or a target's own (see ``target_contract``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import referencing.exceptions
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


class UnusableSchemaError(Exception):
    """The document's schema is not one a validator can apply (malformed, or a reference that leads nowhere)."""


def schema_errors(document: Mapping[str, Any], schema: Mapping[str, Any], instance: Any) -> list[str]:
    """JSON Schema errors of ``instance``; local ``#/components/...`` references resolve in ``document``.

    OpenAPI 3.0 schemas are read as 3.0 means them (``nullable``, boolean ``exclusiveMinimum``).
    """
    root: Any = {**schema, "components": document.get("components", {})}
    if str(document.get("openapi", "")).startswith("3.0"):
        root = _from_openapi30(root)
    try:
        jsonschema.Draft202012Validator.check_schema(root)
        validator = jsonschema.Draft202012Validator(root)
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '<body>'}: {error.message}"
            for error in validator.iter_errors(instance)
        ]
    except (jsonschema.SchemaError, referencing.exceptions.Unresolvable, re.error) as exc:
        raise UnusableSchemaError(str(exc).splitlines()[0]) from None


def _from_openapi30(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema 2020-12.

    ``nullable: true`` admits null; a boolean ``exclusiveMinimum``/``exclusiveMaximum`` moves its
    bound; and an optional member (not in ``required``) also admits null, since 3.0 generators
    (pydantic 1 among them) document ``Optional[str]`` as a plain ``string``.
    """
    if isinstance(node, list):
        return [_from_openapi30(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    schema = {key: _from_openapi30(value) for key, value in node.items()}
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if schema.get(flag) is True and bound in schema:
            schema[flag] = schema.pop(bound)
        elif isinstance(schema.get(flag), bool):
            schema.pop(flag)
    if schema.get("nullable") is True:
        schema.pop("nullable")
        schema = _admitting_null(schema)
    properties = schema.get("properties")
    if isinstance(properties, dict) and schema.get("type") in ("object", ["object"], None):
        required = schema.get("required", [])
        schema["properties"] = {
            name: member if name in required or not isinstance(member, dict) else _admitting_null(member)
            for name, member in properties.items()
        }
    return schema


def _admitting_null(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema and "$ref" not in schema:
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


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
