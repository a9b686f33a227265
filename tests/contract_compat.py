"""Breaking changes between two versions of an OpenAPI contract, judged from its implementers' and clients' side.

Two parties rely on a released contract: servers that implement it, and clients that call them.
A later minor version must keep both working:

- a server that conformed stays conforming: no operation, status code or response media type it
  served is removed, no response member becomes required, no response value it may send is
  refused (a narrower type, enum, pattern, bound, or ``additionalProperties: false``), no response
  header becomes required;
- a client that conformed stays served: no operation it calls is removed, no request member,
  parameter or body becomes required, no request value it may send is refused, no request media
  type is removed, and no operation that needed no credentials comes to need them.

So on both sides a schema may only widen (new optional members, new enum values, looser bounds).
Adding an operation, an optional member or a status code is not breaking: capabilities are parts
a server claims.

A ``pattern`` is judged by example: strings the old rule admits (generated from its pattern,
deterministically) must match the new one. A conforming client sends form parameters in the
syntax of RFC 6749 Appendix A, so a new pattern that only refuses what that syntax never allowed
(a NUL in a password, a quote in a scope) breaks no client. Changes this cannot judge (a rewritten
``not``, ``format``) count as breaking: a minor version has no business making them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from hypothesis import HealthCheck, find, settings, strategies
from hypothesis.errors import NoSuchExample, Unsatisfiable

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
UNJUDGED = ("format", "not", "multipleOf", "contentMediaType", "contentEncoding", "propertyNames")
MAX_DEPTH = 24
FORM = "application/x-www-form-urlencoded"
# RFC 6749 Appendix A: the syntax of the parameters a conforming client sends.
_UNICODECHARNOCRLF = "[\\x09\\x20-\\x7e\\x80-\\ud7ff\\ue000-\\ufffd\\U00010000-\\U0010ffff]"
_NQCHAR = "[\\x21\\x23-\\x5b\\x5d-\\x7e]"
FORM_SYNTAX = {
    "username": f"{_UNICODECHARNOCRLF}*",  # A.15
    "password": f"{_UNICODECHARNOCRLF}*",  # A.16
    "scope": f"{_NQCHAR}+( {_NQCHAR}+)*",  # A.4
    "refresh_token": "[\\x20-\\x7e]+",  # A.17
}
EXAMPLES = settings(
    derandomize=True, database=None, max_examples=200, suppress_health_check=list(HealthCheck), deadline=None
)


def refused_example(old: Mapping[str, Any], new_pattern: str, syntax: str | None) -> str | None:
    """A string the old schema admits (in ``syntax``, if given) that ``new_pattern`` refuses, if one is found."""
    return _refused_example(old.get("pattern"), old.get("minLength", 0), old.get("maxLength"), new_pattern, syntax)


@cache
def _refused_example(
    old_pattern: str | None, low: int, high: int | None, new_pattern: str, syntax: str | None
) -> str | None:

    def admitted(text: str) -> bool:
        return (
            len(text) >= low
            and (high is None or len(text) <= high)
            and (old_pattern is None or re.search(old_pattern, text) is not None)
            and (syntax is None or re.fullmatch(syntax, text) is not None)
        )

    if old_pattern is not None:
        source = strategies.from_regex(old_pattern)
    elif syntax is not None:
        source = strategies.from_regex(syntax, fullmatch=True)
    else:
        source = strategies.text(min_size=low)
    try:
        example: str = find(
            source.filter(admitted), lambda text: re.search(new_pattern, text) is None, settings=EXAMPLES
        )
    except (NoSuchExample, Unsatisfiable):
        return None
    return example


def major(version: str) -> int:
    return int(version.split(".", 1)[0])


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, Mapping) and "$ref" in node and seen < MAX_DEPTH:
        target: Any = document
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        node, seen = target, seen + 1
    return node


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    kinds = {kind} if isinstance(kind, str) else set(kind)
    return kinds | {"integer"} if "number" in kinds else kinds


def _values(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _branches(document: Mapping[str, Any], schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list):
            return [_resolve(document, branch) for branch in schema[key]]
    return [schema]


class SchemaPair:
    """Compares an old schema with a new one; ``narrowings`` says where the new one admits less."""

    def __init__(self, old_document: Mapping[str, Any], new_document: Mapping[str, Any]) -> None:
        self.old_document = old_document
        self.new_document = new_document

    def narrowings(
        self,
        old: Any,
        new: Any,
        where: str,
        depth: int = 0,
        members: Mapping[str, str] | None = None,
        syntax: str | None = None,
    ) -> list[str]:
        """``members``: the syntax a client's values follow, by member name; ``syntax``: that of this value."""
        old, new = _resolve(self.old_document, old), _resolve(self.new_document, new)
        if depth > MAX_DEPTH or not isinstance(new, Mapping) or not new or new is True:
            return []  # the new schema admits anything
        if not isinstance(old, Mapping) or not old:
            old = {}
        old_branches = _branches(self.old_document, old)
        new_branches = _branches(self.new_document, new)
        if len(old_branches) > 1 or len(new_branches) > 1:
            found: list[str] = []
            for index, branch in enumerate(old_branches):
                attempts = [self._plain(branch, candidate, where, depth, members, syntax) for candidate in new_branches]
                if all(attempts):
                    label = f"{where} (alternative {index + 1})" if len(old_branches) > 1 else where
                    found += [f"{label}: no alternative of the new schema admits what it admitted"] + min(
                        attempts, key=len
                    )
            return found
        return self._plain(old, new, where, depth, members, syntax)

    def _plain(
        self,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        where: str,
        depth: int,
        members: Mapping[str, str] | None,
        syntax: str | None,
    ) -> list[str]:
        found: list[str] = []
        old_types, new_types = _types(old), _types(new)
        if new_types is not None and (old_types is None or not old_types <= new_types):
            found.append(f"{where}: type {sorted(old_types or {'any'})} narrowed to {sorted(new_types)}")
        old_values, new_values = _values(old), _values(new)
        if new_values is not None and (old_values is None or any(v not in new_values for v in old_values)):
            found.append(f"{where}: values {old_values or 'any'} narrowed to {new_values}")
        for bound in LOWER_BOUNDS:
            if bound in new and (bound not in old or new[bound] > old[bound]):
                found.append(f"{where}: {bound} {old.get(bound, 'none')} raised to {new[bound]}")
        for bound in UPPER_BOUNDS:
            if bound in new and (bound not in old or new[bound] < old[bound]):
                found.append(f"{where}: {bound} {old.get(bound, 'none')} lowered to {new[bound]}")
        for keyword in UNJUDGED:
            if keyword in new and json.dumps(new[keyword], sort_keys=True) != json.dumps(
                old.get(keyword), sort_keys=True
            ):
                found.append(f"{where}: {keyword} {json.dumps(old.get(keyword))} changed to {json.dumps(new[keyword])}")
        if "pattern" in new and new["pattern"] != old.get("pattern"):
            example = refused_example(old, new["pattern"], syntax)
            if example is not None:
                found.append(f"{where}: pattern {new['pattern']!r} refuses {example!r}, which the old rule admitted")
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            found.append(f"{where}: uniqueItems added")
        found += self._object(old, new, where, depth, members or {})
        if "items" in new:
            found += self.narrowings(old.get("items", {}), new["items"], f"{where}[]", depth + 1)
        return found

    def _object(
        self, old: Mapping[str, Any], new: Mapping[str, Any], where: str, depth: int, members: Mapping[str, str]
    ) -> list[str]:
        found: list[str] = []
        added = sorted(set(new.get("required", [])) - set(old.get("required", [])))
        found += [f"{where}: member {name!r} became required" for name in added]
        old_properties: Mapping[str, Any] = old.get("properties", {})
        new_properties: Mapping[str, Any] = new.get("properties", {})
        if new.get("additionalProperties") is False:
            if old.get("additionalProperties") is not False:
                found.append(f"{where}: additionalProperties: false added")
            gone = sorted(set(old_properties) - set(new_properties))
            found += [f"{where}: member {name!r} no longer admitted" for name in gone]
        for name in sorted(set(old_properties) & set(new_properties)):
            found += self.narrowings(
                old_properties[name], new_properties[name], f"{where}.{name}", depth + 1, syntax=members.get(name)
            )
        extra = new.get("additionalProperties")
        if isinstance(extra, Mapping):
            found += self.narrowings(old.get("additionalProperties", {}), extra, f"{where}.*", depth + 1)
        return found


def _operations(document: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        item = _resolve(document, item)
        if isinstance(item, Mapping):
            for method in HTTP_METHODS:
                if isinstance(item.get(method), Mapping):
                    yield f"{method.upper()} {path}", item, item[method]


def _parameters(
    document: Mapping[str, Any], item: Mapping[str, Any], operation: Mapping[str, Any]
) -> dict[tuple[str, str], Mapping[str, Any]]:
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]:
        parameter = _resolve(document, parameter)
        if isinstance(parameter, Mapping):
            found[(str(parameter.get("in")), str(parameter.get("name")).lower())] = parameter
    return found


def _secured(document: Mapping[str, Any], operation: Mapping[str, Any]) -> bool:
    requirements = operation.get("security", document.get("security", []))
    return bool(requirements) and all(requirement for requirement in requirements)  # {} = anonymous allowed


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Every change from ``old`` to ``new`` that breaks a server or a client that conformed to ``old``."""
    schemas = SchemaPair(old, new)
    found: list[str] = []
    new_operations = {name: (item, operation) for name, item, operation in _operations(new)}
    for name, old_item, old_operation in _operations(old):
        if name not in new_operations:
            found.append(f"{name}: operation removed")
            continue
        new_item, new_operation = new_operations[name]
        if _secured(new, new_operation) and not _secured(old, old_operation):
            found.append(f"{name}: now requires credentials")
        found += _request_changes(schemas, name, (old_item, old_operation), (new_item, new_operation))
        found += _response_changes(schemas, name, old_operation, new_operation)
    return found


def _request_changes(
    schemas: SchemaPair,
    name: str,
    old: tuple[Mapping[str, Any], Mapping[str, Any]],
    new: tuple[Mapping[str, Any], Mapping[str, Any]],
) -> list[str]:
    found: list[str] = []
    old_parameters = _parameters(schemas.old_document, *old)
    for key, parameter in _parameters(schemas.new_document, *new).items():
        label = f"{name}: {key[0]} parameter {key[1]!r}"
        before = old_parameters.get(key)
        if parameter.get("required") and not (before and before.get("required")):
            found.append(f"{label} became required" if before else f"{label} added as required")
        if before is not None:
            found += schemas.narrowings(before.get("schema", {}), parameter.get("schema", {}), label)
    old_body = _resolve(schemas.old_document, old[1].get("requestBody", {}))
    new_body = _resolve(schemas.new_document, new[1].get("requestBody", {}))
    if new_body.get("required") and not old_body.get("required"):
        found.append(f"{name}: request body became required")
    old_media: Mapping[str, Any] = old_body.get("content", {})
    new_media: Mapping[str, Any] = new_body.get("content", {})
    for media, content in old_media.items():
        if new_media and media not in new_media:
            found.append(f"{name}: request media type {media} removed")
        elif media in new_media:
            found += schemas.narrowings(
                content.get("schema", {}),
                new_media[media].get("schema", {}),
                f"{name} request {media}",
                members=FORM_SYNTAX if media == FORM else None,
            )
    return found


def _response_changes(
    schemas: SchemaPair, name: str, old_operation: Mapping[str, Any], new_operation: Mapping[str, Any]
) -> list[str]:
    found: list[str] = []
    new_responses: Mapping[str, Any] = new_operation.get("responses", {})
    for status, old_response in old_operation.get("responses", {}).items():
        if status not in new_responses:
            found.append(f"{name}: response {status} removed")
            continue
        old_response = _resolve(schemas.old_document, old_response)
        new_response = _resolve(schemas.new_document, new_responses[status])
        where = f"{name} {status}"
        old_headers = {k.lower(): _resolve(schemas.old_document, v) for k, v in old_response.get("headers", {}).items()}
        for header, spec in new_response.get("headers", {}).items():
            spec = _resolve(schemas.new_document, spec)
            before = old_headers.get(header.lower(), {})
            if spec.get("required") and not before.get("required"):
                found.append(f"{where}: header {header} became required")
            found += schemas.narrowings(before.get("schema", {}), spec.get("schema", {}), f"{where} header {header}")
        old_media: Mapping[str, Any] = old_response.get("content", {})
        new_media: Mapping[str, Any] = new_response.get("content", {})
        for media, content in old_media.items():
            if media not in new_media:
                found.append(f"{where}: response media type {media} removed")
            else:
                found += schemas.narrowings(
                    content.get("schema", {}), new_media[media].get("schema", {}), f"{where} {media}"
                )
    return found


def violations(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The breaking changes from ``old`` to ``new`` that its version does not allow (a new major allows all)."""
    if major(str(new["info"]["version"])) > major(str(old["info"]["version"])):
        return []
    return breaking_changes(old, new)
