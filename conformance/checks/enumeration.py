"""ENUM-*, TLS-*: what failed logins reveal about accounts, and the transport credentials travel on.

References: RFC 6749 §3.2 and §5.2 <https://www.rfc-editor.org/rfc/rfc6749>; RFC 6750 §5.3
<https://www.rfc-editor.org/rfc/rfc6750#section-5.3>; RFC 6797 (HSTS)
<https://www.rfc-editor.org/rfc/rfc6797>; OWASP ASVS 6.3.8 (no user enumeration).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from ..client import Response, TransportError
from ..context import Context, Login
from ..model import Failure, Info, Level, Skip, throttled
from ..registry import check
from ..stats import mann_whitney
from ._expect import describe, is_success, oauth_error_code

# Header fields whose values differ between any two answers (clock, framing, per-request ids).
_VOLATILE_FIELDS = frozenset(
    {"date", "content-length", "age", "expires", "last-modified", "x-runtime", "x-response-time", "server-timing"}
)
_VOLATILE_PATTERN = re.compile(r"request[-_]?id|correlation|trace|cf-ray|x-amz-cf-id|x-served-by|x-timer")
_HSTS_MAX_AGE = re.compile(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


# -- ENUM-001 ------------------------------------------------------------------------------------

Comparable = tuple[int, dict[str, list[str]], str]  # status, header fields, body


def _unknown_username(username: str) -> str:
    """A username shaped like ``username`` (an e-mail stays an e-mail) that no account holds."""
    marker = secrets.token_hex(4)
    local, at, domain = username.partition("@")
    return f"{local}{marker}@{domain}" if at else f"{username}{marker}"


def comparable(response: Response, username: str) -> Comparable:
    """Status, header fields (volatile ones dropped, cookies by name) and body, the username masked."""
    fields: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        name = name.lower()
        if name in _VOLATILE_FIELDS or _VOLATILE_PATTERN.search(name):
            continue
        if name == "set-cookie":
            value = value.split("=", 1)[0].strip()
        fields.setdefault(name, []).append(value)
    body = response.text
    if len(username) >= 3:
        body = body.replace(username, "<username>")
    return response.status, {name: sorted(values) for name, values in fields.items()}, body


def differences(reference: Comparable, other: Comparable, redact: Callable[[str], str] = str) -> list[str]:
    """What tells ``other`` apart from ``reference`` (see ``comparable``); bodies pass ``redact`` before excerpting."""
    found = []
    if reference[0] != other[0]:
        found.append(f"status {other[0]} vs {reference[0]}")
    names = sorted(set(reference[1]) | set(other[1]))
    for name in names:
        if reference[1].get(name) != other[1].get(name):
            found.append(f"{name}: {other[1].get(name) or '(absent)'} vs {reference[1].get(name) or '(absent)'}")
    if reference[2] != other[2]:
        found.append(f"body {redact(other[2])[:120]!r} vs {redact(reference[2])[:120]!r}")
    return found


@check("ENUM-001", level=Level.SHOULD, spec=["ASVS 6.3.8", "RFC 6749 §5.2", "contract: POST /token 400"])
def failed_logins_look_alike(ctx: Context) -> str | None:
    """An unknown user, a wrong password and a disabled user get identical answers from the token endpoint."""
    primary = ctx.credentials()
    wrong_password = "wrong-" + secrets.token_urlsafe(12)
    unknown = _unknown_username(primary.username)
    wrong = ctx.login("primary", password=wrong_password)
    cases: list[tuple[str, Login, str]] = [
        ("an unknown user", ctx.login("primary", username=unknown, password=wrong_password), unknown),
    ]
    disabled = ctx.state.credentials("disabled")
    if disabled is not None:
        cases.append(("the disabled user (right password)", ctx.login("disabled"), disabled.username))
    if wrong.token is not None:
        raise Failure(
            "a WRONG password got an access token",
            expected="400 invalid_grant",
            actual=describe(wrong.response),
            hint="Verify the password before issuing a token.",
            level=Level.MUST,
        )
    reference = comparable(wrong.response, primary.username)
    found = []
    for label, login, username in cases:
        diff = differences(reference, comparable(login.response, username), ctx.state.client.redact)
        if diff:
            found.append(f"{label}: " + "; ".join(diff))
    if found:
        raise Failure(
            "the token endpoint tells accounts apart: " + " | ".join(found),
            expected="one identical answer (status, header fields, body) for every refused login",
            actual=f"wrong password: {describe(wrong.response)}",
            hint="Answer an unknown user, a wrong password and a disabled user with the same 400 invalid_grant "
            "body and header fields.",
        )
    compared = " and ".join(label for label, _, _ in cases)
    skipped = "" if disabled else " (add users.disabled to the config file to compare a disabled user too)"
    return f"a wrong password, {compared} get identical answers{skipped}"


# -- ENUM-003 ------------------------------------------------------------------------------------


TIMING_SAMPLES = 30  # per case, interleaved
TIMING_P_VALUE = 0.01
TIMING_GAP_S = 0.025


@check("ENUM-002", level=Level.SHOULD, spec=["ASVS 6.3.8"], cost="standard")
def failed_logins_take_the_same_time(ctx: Context) -> str | None:
    """A wrong password and an unknown user take the same time to refuse (no timing oracle)."""
    username = ctx.credentials().username
    unknown, known = [], []
    started = time.monotonic()
    for done in range(TIMING_SAMPLES):  # interleaved, so that drift in the target's load hits both alike
        left = (time.monotonic() - started) / done * (TIMING_SAMPLES - done) if done else None
        about = f", about {left:.0f} s left" if left is not None else ""
        ctx.progress(f"timed failed logins {2 * done}/{2 * TIMING_SAMPLES}{about} (unknown user vs wrong password)")
        unknown.append(ctx.login(username=_unknown_username(username), password=secrets.token_urlsafe(12)).response)
        known.append(ctx.login(password="wrong-" + secrets.token_urlsafe(12)).response)
    ctx.exchanges[:] = ctx.exchanges[-2:]  # evidence: one of each, not 60 logins
    if any(is_success(r) for r in unknown + known):
        raise Skip("a wrong credential was accepted (see TOKEN-006/007); timing was not judged")
    limited = [r for r in unknown + known if r.status == 429]
    if limited:
        raise throttled(limited[-1].header("retry-after"))
    result = mann_whitney([r.elapsed_s for r in unknown], [r.elapsed_s for r in known])
    figures = (
        f"median unknown user {result.median_a * 1000:.1f} ms vs wrong password {result.median_b * 1000:.1f} ms "
        f"(gap {result.median_gap * 1000:.1f} ms, Mann-Whitney p={result.p_value:.2g}, {TIMING_SAMPLES} samples each)"
    )
    if result.p_value < TIMING_P_VALUE and result.median_gap > TIMING_GAP_S:
        raise Failure(
            "refusals take measurably different times: an attacker can tell existing accounts apart",
            expected=f"no significant difference (p >= {TIMING_P_VALUE} or a gap under {TIMING_GAP_S * 1000:.0f} ms)",
            actual=figures,
            hint="Verify the password against a dummy hash for unknown (and disabled) users (FastAPI's DUMMY_HASH).",
        )
    return figures


def username_variants(username: str) -> list[tuple[str, str]]:
    """(what changed, variant) for a case change, a leading space and a trailing space."""
    variants = []
    cased = username.capitalize() if username.capitalize() != username else username.swapcase()
    if cased != username:
        variants.append(("case changed", cased))
    variants += [("leading space", f" {username}"), ("trailing space", f"{username} ")]
    return variants


@check("ENUM-003", level=Level.MAY, spec=["contract: POST /token"])
def username_variants_are_treated_consistently(ctx: Context) -> str | None:
    """Usernames differing in case or surrounding spaces are treated consistently (observation)."""
    username = ctx.credentials().username
    outcomes = []
    for change, variant in username_variants(username):
        login = ctx.login("primary", username=variant)
        if login.token is not None:
            outcome = "logs in"
        else:
            code = oauth_error_code(login.response)
            outcome = f"refused {login.response.status}" + (f" {code}" if code else "")
        outcomes.append((change, variant, outcome))
    listed = "; ".join(f"{variant!r} ({change}): {outcome}" for change, variant, outcome in outcomes)
    if any(outcome == "logs in" for _, _, outcome in outcomes):
        raise Info(
            f"the token endpoint normalises usernames: {listed}. Document it in the contract, and make sure "
            "registration normalises the same way (else two accounts can collide)"
        )
    if len({outcome for _, _, outcome in outcomes}) > 1:
        raise Info(f"username variants are refused in different ways: {listed}")
    return f"usernames are exact: {listed}"


# -- TLS-* ---------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """``localhost`` (RFC 6761) or a loopback address."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cleartext_exposure(base_url: str) -> str | None:
    """Why credentials sent to ``base_url`` cross a network in clear text, or ``None`` when they do not."""
    parts = urlsplit(base_url)
    if parts.scheme.lower() == "https":
        return None
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    return f"{base_url} is plain http to {host}, which is not a loopback host"


def cleartext_twin(base_url: str) -> str | None:
    """The http:// URL of an https base URL's host (port 80 unless the https port is explicit), else ``None``."""
    parts = urlsplit(base_url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if parts.port in (None, 443) else f"{host}:{parts.port}"
    return urlunsplit(("http", netloc, parts.path, "", ""))


def _needs_https(ctx: Context, check_id: str) -> str:
    twin = cleartext_twin(ctx.config.base_url)
    if twin is None:
        raise Skip(
            f"the target is not https ({ctx.config.base_url}): {check_id} runs when --base-url (or base_url in "
            "the config file) is the https URL of the server"
        )
    return twin


@check("TLS-001", level=Level.MUST, spec=["RFC 6749 §3.2", "RFC 6750 §5.3"])
def target_is_served_over_tls(ctx: Context) -> str | None:
    """The target is reached over https, unless it is on a loopback address.

    Impact: Credentials and tokens over cleartext can be read by anyone on the path.
    """
    # RFC 6749 §3.2: "Since requests to the token endpoint result in the transmission of clear-text
    # credentials (in the HTTP request and response), the authorization server MUST require the use
    # of TLS as described in Section 1.6 when sending requests to the token endpoint."
    # RFC 6750 §5.3: "Clients MUST always use TLS [RFC5246] (https) or equivalent transport security
    # when making requests with bearer tokens."
    exposure = cleartext_exposure(ctx.config.base_url)
    if exposure is not None:
        raise Failure(
            f"{exposure}: passwords and bearer tokens cross the network in clear text",
            expected="an https:// base URL (or a loopback host)",
            actual=ctx.config.base_url,
            hint="Serve the API over https only (terminate TLS in front of it). On a closed test network, "
            "--skip TLS-001.",
        )
    if urlsplit(ctx.config.base_url).scheme.lower() != "https":
        return "plain http, but on a loopback host: nothing crosses a network"
    return None


@check("TLS-002", level=Level.MUST, spec=["RFC 6749 §3.2"])
def token_endpoint_refuses_cleartext(ctx: Context) -> str | None:
    """The token endpoint does not process credentials sent over plain http to the same host.

    The probe carries the primary username with a random wrong password, so the real password
    never travels in clear text: a server that checks that password over http (answers
    invalid_grant, or exactly what https answers) would process the real one too.

    Impact: A server that processes a password sent over http has already leaked it.
    """
    url = _needs_https(ctx, "TLS-002") + ctx.config.paths.token
    decoy = ctx.login_form("primary", password="decoy-" + secrets.token_urlsafe(12))
    try:
        response = ctx.request("POST", url, data=decoy)
    except TransportError as exc:
        return f"nothing answers plain http at {url} ({exc})"
    if 300 <= response.status < 400:
        return f"plain http is redirected ({response.status} to {response.header('location') or 'nowhere'})"
    body = response.json()
    issued = is_success(response) and isinstance(body, dict) and "access_token" in body
    processed = issued or oauth_error_code(response) == "invalid_grant"
    if not processed and 400 <= response.status < 500:
        # Not an RFC 6749 answer: compare with what https answers to the same wrong password.
        over_tls = ctx.login("primary", password=dict(decoy)["password"]).response
        processed = over_tls.status == response.status and over_tls.content == response.content
    if processed:
        raise Failure(
            f"the token endpoint processes credentials sent over plain http ({url})"
            + (": it even issued a token for a WRONG password" if issued else ""),
            expected="no processing over cleartext: a refused connection, a redirect to https, or a refusal",
            actual=describe(response),
            hint="Do not serve the token endpoint over plain http: close port 80 or redirect it to https "
            "without reading the request.",
        )
    return f"plain http is refused: {describe(response)}"


@check("TLS-003", level=Level.MAY, spec=["RFC 6797"])
def https_answers_carry_hsts(ctx: Context) -> str | None:
    """https answers carry Strict-Transport-Security with a positive max-age."""
    _needs_https(ctx, "TLS-003")
    response = ctx.get(ctx.me_path)
    value = response.header("strict-transport-security")
    if value is None:
        raise Info(
            "no Strict-Transport-Security on https answers: clients may be downgraded to plain http; "
            'send e.g. "Strict-Transport-Security: max-age=31536000"'
        )
    match = _HSTS_MAX_AGE.search(value)
    if match is None or int(match.group(1)) == 0:
        raise Info(f"Strict-Transport-Security without a positive max-age: {value!r}")
    return f"Strict-Transport-Security: {value}"
