"""Parsing ``WWW-Authenticate`` (RFC 9110 §11.6.1) into challenges: scheme plus auth-params."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})\s*")
_SCHEME = re.compile(rf"\s*({_TOKEN})(?=\s|,|$)")


@dataclass(frozen=True)
class Challenge:
    scheme: str
    params: list[tuple[str, str]] = field(default_factory=list)
    quoted: dict[str, bool] = field(default_factory=dict)
    token68: str | None = None

    def get(self, name: str) -> str | None:
        for key, value in self.params:
            if key.lower() == name.lower():
                return value
        return None

    def count(self, name: str) -> int:
        return sum(1 for key, _ in self.params if key.lower() == name.lower())


class ChallengeSyntaxError(ValueError):
    """Raised when a WWW-Authenticate value does not follow RFC 9110 §11.6.1."""


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith('"') else value


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges in one header value; raises ``ChallengeSyntaxError`` on malformed input."""
    challenges: list[Challenge] = []
    pos = 0
    text = header.strip()
    while pos < len(text):
        if text[pos] in ", ":
            pos += 1
            continue
        match = _SCHEME.match(text, pos)
        if not match:
            raise ChallengeSyntaxError(f"expected an auth-scheme at {text[pos : pos + 20]!r}")
        scheme = match.group(1)
        pos = match.end()
        params: list[tuple[str, str]] = []
        quoted: dict[str, bool] = {}
        while pos < len(text):
            param = _PARAM.match(text, pos)
            if not param:
                break  # a token not followed by "=" starts the next challenge
            name, value = param.group(1), param.group(2)
            params.append((name, _unquote(value)))
            quoted[name.lower()] = value.startswith('"')
            pos = param.end()
            if pos < len(text) and text[pos] == ",":
                pos += 1
            elif pos < len(text):
                raise ChallengeSyntaxError(f"expected ',' after {name}= in {header!r}")
        challenges.append(Challenge(scheme, params, quoted))
    return challenges


def bearer_challenge(header: str | None) -> Challenge | None:
    """The first ``Bearer`` challenge of the header (scheme compared case-insensitively), if any."""
    if not header:
        return None
    try:
        challenges = parse_challenges(header)
    except ChallengeSyntaxError:
        return None
    return next((c for c in challenges if c.scheme.lower() == "bearer"), None)
