"""The target's own contract: the OpenAPI document its answers are held to, and where it came from.

Body shapes are checked against a schema only when the target's contract is known:

1. ``--contract PATH`` (``contract: PATH`` in the config file): the team's own document;
2. ``--contract kit:VERSION``: the target claims to implement the kit's contract at that version
   (``kit:resource-server``: only its resource-server part, for APIs without a token endpoint);
3. else the OpenAPI document the target serves at ``/openapi.json`` (as FastAPI apps do).

Otherwise there is no schema, and only the core rules apply (identity in the me answer, no secret
members, RFC status codes, headers and error members). The kit's contract is never applied to a
target that did not claim it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .client import Client, TransportError
from .contract import default_contract_path, load_contract
from .errors import ConfigError

SERVED_CONTRACT_PATH = "/openapi.json"
KIT_PREFIX = "kit:"
RELEASED_DIR = ("data", "contracts")
# The resource-server part of the kit's current contract (protected operations, challenges, error bodies),
# for APIs whose tokens an identity provider issues: ``kit:resource-server``.
RESOURCE_SERVER = "resource-server"
RESOURCE_SERVER_FILE = ("data", "resource-server.yaml")
# Members of the kit's schemas that belong to a capability: required only of servers that claim it.
KIT_CAPABILITY_MEMBERS: Mapping[str, tuple[tuple[str, str], ...]] = {"scopes": (("User", "scopes"),)}


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


@cache
def kit_contracts() -> dict[str, Path]:
    """Every version of the kit's contract this install knows: the released ones and the current one."""
    found: dict[str, Path] = {}
    folder = resources.files("conformance").joinpath(*RELEASED_DIR)
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            found[entry.name.removesuffix(".yaml")] = Path(str(entry))
    current = default_contract_path()
    found[str(load_contract(current)["info"]["version"])] = current
    return dict(sorted(found.items(), key=lambda item: _version_key(item[0])))


def current_kit_version() -> str:
    return next(reversed(kit_contracts()))


def resource_server_contract_path() -> Path:
    """The resource-server part of the kit's current contract (``kit:resource-server``)."""
    return Path(str(resources.files("conformance").joinpath(*RESOURCE_SERVER_FILE)))


def kit_contract_path(version: str) -> Path:
    """The file of the kit's contract at ``version`` (or its resource-server part); a ``ConfigError`` otherwise."""
    if version == RESOURCE_SERVER:
        return resource_server_contract_path()
    known = kit_contracts()
    if version not in known:
        raise ConfigError(
            f"unknown version of the kit's contract {KIT_PREFIX}{version}: known versions are "
            + ", ".join(known)
            + f"; {KIT_PREFIX}{RESOURCE_SERVER} is the resource-server part of the current one"
        )
    return known[version]


def served_document(client: Client) -> Mapping[str, Any] | None:
    """The OpenAPI document the target serves at ``/openapi.json``, if it serves one."""
    try:
        response = client.request("GET", SERVED_CONTRACT_PATH)
    except TransportError:
        return None
    document = response.json()
    if response.status == 200 and isinstance(document, dict) and isinstance(document.get("paths"), dict):
        return document
    return None


class TargetContract(Mapping[str, Any]):
    """The target's contract, built once per run; reads as its OpenAPI document (empty when unknown).

    ``describes_target`` says whether the document is evidence of what the target implements (its own
    file, or the one it serves). The kit's contract is not: it declares every capability, so what a
    target claiming it implements is still read from the document it serves, or the config file.
    """

    def __init__(
        self,
        document: Mapping[str, Any] | None,
        source: str,
        *,
        kit_version: str | None = None,
        describes_target: bool = True,
        discover: bool = False,
    ) -> None:
        self._document = document
        self._source = source
        self.kit_version = kit_version
        self.describes_target = describes_target and kit_version is None
        self._discover = discover  # the document is the one the target serves, fetched on first need
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._served: Mapping[str, Any] | None = None
        self._fetched = False

    # -- how a run gets one ------------------------------------------------------------------------
    @classmethod
    def kit(cls, version: str | None = None) -> TargetContract:
        """The kit's contract at ``version`` (default: the current one), claimed by the target."""
        version = version or current_kit_version()
        document = load_contract(kit_contract_path(version))
        if version == RESOURCE_SERVER:
            source = f"the kit's resource-server contract {document['info']['version']} ({KIT_PREFIX}{version})"
        else:
            source = f"the kit's contract {version} ({KIT_PREFIX}{version})"
        return cls(document, source, kit_version=version)

    @classmethod
    def from_file(cls, path: Path) -> TargetContract:
        return cls(load_contract(path), f"the contract {path}")

    @classmethod
    def given(cls, document: Mapping[str, Any]) -> TargetContract:
        """A document handed to the runner: the target's contract is this document.

        Its capabilities are still read from what the target serves, or the config file.
        """
        return cls(document, "the contract given to the run", describes_target=False)

    @classmethod
    def of(cls, contract: TargetContract | Mapping[str, Any]) -> TargetContract:
        """``contract`` itself, or a document handed over: then the target's contract is that document."""
        return contract if isinstance(contract, TargetContract) else cls.given(contract)

    @classmethod
    def served(cls) -> TargetContract:
        """The document the target serves at ``/openapi.json``, else none: only the core rules."""
        return cls(None, f"the target's {SERVED_CONTRACT_PATH}", discover=True)

    @classmethod
    def for_config(cls, contract: Path | None, kit_version: str | None) -> TargetContract:
        if kit_version is not None:
            return cls.kit(kit_version)
        if contract is not None:
            return cls.from_file(contract)
        return cls.served()

    def attach(self, client: Client) -> None:
        """The client the served document is fetched with (at most once per run)."""
        with self._lock:
            self._client = self._client or client

    # -- what the checks read ----------------------------------------------------------------------
    def served_document(self) -> Mapping[str, Any] | None:
        """The target's ``/openapi.json``, fetched at most once (also the source of its capabilities)."""
        with self._lock:
            if not self._fetched and self._client is not None:
                self._served = served_document(self._client)
                self._fetched = True
            return self._served

    @property
    def document(self) -> Mapping[str, Any] | None:
        return self.served_document() if self._discover else self._document

    def resolve(self) -> Mapping[str, Any] | None:
        """The document, fetched now if it is the one the target serves."""
        return self.document

    @property
    def known(self) -> bool:
        return self.document is not None

    @property
    def source(self) -> str:
        if self._discover and self._fetched and self._served is None:
            return f"none (no --contract, and the target serves no OpenAPI document at {SERVED_CONTRACT_PATH})"
        return self._source

    def note(self) -> str:
        """One line for the run's summary: where the schemas came from."""
        if self._discover and not self._fetched:
            return "contract: not read (no selected check needed it)"
        if not self.known:
            return (
                f"contract: {self.source}: only the core rules apply to body shapes; give --contract PATH, "
                "or --contract kit:VERSION if the server implements the kit's contract"
            )
        return f"contract: {self.source}: body shapes are checked against its schemas"

    def path_for(self, path: str, kit_path: str) -> str | None:
        """The document's path of the operation the target serves at ``path``.

        That path itself; in the kit's contract, also the kit's own path of the operation
        (``kit_path``), which a target implementing it may serve elsewhere (``--me-path``).
        """
        paths = (self.document or {}).get("paths", {})
        if not isinstance(paths, Mapping):
            return None
        if path in paths:
            return path
        return kit_path if self.kit_version is not None and kit_path in paths else None

    def for_capabilities(self, claimed: frozenset[str]) -> Mapping[str, Any]:
        """The document, with the kit's capability members required exactly of servers that claim them.

        Any other document is returned as it is: a team's own contract means what it says.
        """
        document = self.document or {}
        if self.kit_version is None:
            return document
        adjusted = copy.deepcopy(dict(document))
        schemas = adjusted.get("components", {}).get("schemas", {})
        for capability, members in KIT_CAPABILITY_MEMBERS.items():
            for schema_name, member in members:
                schema = schemas.get(schema_name)
                if not isinstance(schema, dict) or member not in schema.get("properties", {}):
                    continue
                required = [name for name in schema.get("required", []) if name != member]
                schema["required"] = [*required, member] if capability in claimed else required
        return adjusted

    # -- Mapping -----------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return (self.document or {})[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.document or {})

    def __len__(self) -> int:
        return len(self.document or {})

    def __repr__(self) -> str:
        return f"TargetContract({self.source!r})"
