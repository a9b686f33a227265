"""Validates HTTP responses against ``openapi.yaml``: status, required headers and body schema."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx2 as httpx

from conformance.contract import resolve, schema_errors
from reference_impl.contract import load_contract

_PATH_PARAM = re.compile(r"\{[^}/]+\}")


class ContractViolation(AssertionError):
    """A response the contract does not allow."""


class ContractValidator:
    def __init__(self, document: dict[str, Any] | None = None) -> None:
        self.document = document if document is not None else load_contract()

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = resolve(self.document, node)
        return resolved

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        for template, item in self.document["paths"].items():
            pattern = "^" + _PATH_PARAM.sub("[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
            if re.match(pattern, path):
                return item.get(method.lower())  # type: ignore[no-any-return]
        return None

    def _schema_errors(self, schema: dict[str, Any], instance: Any) -> list[str]:
        return schema_errors(self.document, schema, instance)

    def validate(self, method: str, path: str, status: int, headers: httpx.Headers, body: bytes) -> None:
        where = f"{method} {path} -> {status}"
        operation = self.operation(method, path)
        if operation is None:
            raise ContractViolation(f"{where}: the contract has no such operation")
        responses = operation["responses"]
        spec = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        if spec is None:
            raise ContractViolation(f"{where}: status not documented (documented: {sorted(responses)})")
        spec = self._resolve(spec)
        problems: list[str] = []
        for name, header in spec.get("headers", {}).items():
            header = self._resolve(header)
            value = headers.get(name)
            if value is None:
                if header.get("required"):
                    problems.append(f"header {name} is required but missing")
                continue
            problems += [f"header {name}: {e}" for e in self._schema_errors(header.get("schema", {}), value)]
        content = spec.get("content")
        if content:
            media_type = headers.get("content-type", "").split(";")[0].strip()
            if media_type not in content:
                problems.append(f"content type {media_type!r} not documented ({sorted(content)})")
            elif media_type == "application/json":
                try:
                    instance = json.loads(body)
                except ValueError:
                    problems.append(f"body is not JSON: {body[:200]!r}")
                else:
                    problems += self._schema_errors(content[media_type].get("schema", {}), instance)
        elif body:
            problems.append(f"documented without a body, got {body[:200]!r}")
        if problems:
            raise ContractViolation(f"{where}:\n  " + "\n  ".join(problems))

    def validate_response(self, response: httpx.Response) -> None:
        response.read()
        request = response.request
        self.validate(request.method, request.url.path, response.status_code, response.headers, response.content)
