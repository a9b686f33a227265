"""``jwt-conformance``: flags → RunConfig → runner → reporters → exit code. Nothing else lives here."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import click

from .config import PASSWORD_ENV, TOKEN_ENV, RunConfig, build_config
from .errors import ConfigError, ConformanceError, NoChecksSelectedError
from .model import Result, Status, Summary
from .progress import NO_PROGRESS, CheckProgress, Progress, terminal_status
from .registry import Check, all_checks, select
from .reporters import Reporter, RunInfo
from .reporters.console import ConsoleReporter
from .reporters.html_report import HtmlReporter
from .reporters.json_report import JsonReporter
from .reporters.junit import JunitReporter
from .reporters.markdown import MarkdownReporter
from .reporters.sarif import SarifReporter
from .reporters.saved import load_report
from .runner import run
from .target_contract import TargetContract, current_kit_version, kit_contract_path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def tool_version() -> str:
    try:
        return metadata.version("jwt-auth-kit")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def plan_for(config: RunConfig) -> list[Check]:
    plan = select(all_checks(), config.select, config.skip, config.level)
    if not plan:
        raise NoChecksSelectedError(
            f"no check matches --select {' '.join(config.select) or '(all)'} --skip {' '.join(config.skip) or '-'}: "
            "see `jwt-conformance list` for the IDs"
        )
    return plan


def execute_run(
    config: RunConfig,
    reporters: Sequence[Reporter],
    results: Iterator[Result] | None = None,
    plan: Sequence[Check] | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Stream results from the runner through the reporters; return the summary.

    ``progress``: told which check the run waits for; by default a status line on stderr when it is a
    terminal (``terminal_progress``), else nothing.
    """
    if results is None and progress is None:
        line = terminal_progress()
        if line is not None:
            try:
                return execute_run(config, reporters, plan=plan, progress=line)
            finally:
                line.close()
    plan = plan if plan is not None else plan_for(config)
    info = RunInfo(config, tool_version(), datetime.now(UTC).isoformat(timespec="seconds"))
    started = time.perf_counter()
    # The target's contract: built once (a bad --contract is a usage error before any request).
    contract = None if results is not None else TargetContract.for_config(config.contract, config.contract_kit_version)
    stream = results if results is not None else run(config, plan, contract=contract, progress=progress or NO_PROGRESS)
    summary = Summary()
    first = True
    low_confidence = 0
    for result in stream:
        if first:  # the runner logs in before the first result: only then is the target known to answer
            for reporter in reporters:
                reporter.start(info, plan)
            first = False
        summary.add(result)
        low_confidence += result.low_confidence
        for reporter in reporters:
            reporter.record(result)
    if first:
        for reporter in reporters:
            reporter.start(info, plan)
    if contract is not None:
        summary.notes.append(contract.note())
    mode = config.issuer_mode
    if mode is not None:
        summary.notes.append(
            f"issuer mode: every token was minted as the issuer {mode.url} for sub {mode.subject!r}, "
            f"audience {mode.audience!r}" + (f", scope {mode.scope!r}" if mode.scope else "")
        )
    if low_confidence:
        summary.notes.append(f"{low_confidence} results are low-confidence: the baseline token stopped working mid-run")
    summary.duration_s = time.perf_counter() - started
    for reporter in reporters:
        reporter.finish(summary)
    return summary


def terminal_progress() -> CheckProgress | None:
    """The status line of a run on stderr when it is a terminal (not in CI logs), else ``None``."""
    line = terminal_status()
    return CheckProgress(line) if line is not None else None


def exit_code(summary: Summary) -> int:
    return EXIT_FAILED if summary.counts[Status.FAIL] else EXIT_OK


def make_reporters(
    json_report: Path | None,
    junit_report: Path | None,
    markdown_report: Path | None,
    verbose: bool = False,
    html_report: Path | None = None,
    sarif_report: Path | None = None,
) -> list[Reporter]:
    reporters: list[Reporter] = [ConsoleReporter(verbose=verbose)]
    if json_report:
        reporters.append(JsonReporter(json_report))
    if junit_report:
        reporters.append(JunitReporter(junit_report))
    if markdown_report:
        reporters.append(MarkdownReporter(markdown_report))
    if html_report:
        reporters.append(HtmlReporter(html_report))
    if sarif_report:
        reporters.append(SarifReporter(sarif_report))
    return reporters


def _fail_usage(exc: ConformanceError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_USAGE)


_path = click.Path(dir_okay=False, path_type=Path)
F = TypeVar("F", bound=Callable[..., Any])


def _stacked(*options: Callable[[F], F]) -> Callable[[F], F]:
    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


# The report flags shared by ``run`` and ``demo``.
report_options = _stacked(
    click.option("--json-report", type=_path, help="Write the JSON report here."),
    click.option("--junit-report", type=_path, help="Write a JUnit XML report here."),
    click.option("--markdown-report", type=_path, help="Write a Markdown report here."),
    click.option("--html-report", type=_path, help="Write a self-contained HTML report here."),
    click.option("--sarif-report", type=_path, help="Write a SARIF 2.1.0 report here (GitHub code scanning)."),
    click.option("-v", "--verbose", is_flag=True, help="Show every non-pass message while running."),
)
# The target flags shared by ``run`` and ``fuzz``.
target_options = _stacked(
    click.option("--base-url", help="The target, e.g. http://127.0.0.1:8000."),
    click.option("--username", help="A valid account on the target."),
    click.option("--password", help=f"Its password (better: the {PASSWORD_ENV} environment variable)."),
    click.option(
        "--config",
        "config_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="YAML config file (flags override it).",
    ),
)


def token_options(without_password: str) -> Callable[[F], F]:
    """``--token`` and ``--token-command`` of ``run`` and ``fuzz``; ``without_password``: what such a run leaves out."""
    return _stacked(
        click.option(
            "--token",
            help=f"Run with this access token instead of logging in (better: the {TOKEN_ENV} environment variable); "
            f"{without_password}.",
        ),
        click.option(
            "--token-command",
            metavar="CMD",
            help="Run with the access token this command prints on stdout (run without a shell, again once the token "
            "expires), e.g. a client-credentials request to the identity provider.",
        ),
    )


# Issuer mode's flags of ``run`` and ``fuzz`` (``run`` has --second-subject between --subject and --scope).
issuer_keys_option = click.option(
    "--issuer-keys",
    metavar="DIR",
    help="Issuer mode: the keys directory of `jwt-conformance issuer`, which the API trusts; the run mints every "
    "token (no token endpoint, no password).",
)
subject_option = click.option("--subject", help="Issuer mode: the sub of the user the API knows (default: --username).")
scope_option = click.option("--scope", help="Issuer mode: the scope the minted tokens carry (space-separated).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(tool_version(), prog_name="jwt-conformance")
def cli() -> None:
    """Check an OAuth2 password-flow / JWT bearer API against its contract, the RFCs and JWT practice."""


@cli.command("run")
@target_options
@click.option("--profile", type=click.Choice(["rfc", "fastapi"]), help="rfc (default) or fastapi (tutorial dialect).")
@click.option("--strict", is_flag=True, default=None, help="Turn warnings into failures.")
@click.option(
    "--allow-destructive",
    is_flag=True,
    default=None,
    help="Run the checks that lock an account (RATE-*; they use users.throwaway from the config file).",
)
@click.option(
    "--level",
    type=click.Choice(["quick", "standard", "thorough"]),
    help="How much work the run may cost the server (default standard; see `list`).",
)
@click.option("--select", multiple=True, help="Run only checks whose ID starts with this (repeatable).")
@click.option("--skip", multiple=True, help="Skip checks whose ID starts with this (repeatable).")
@token_options("checks that need a password-grant token endpoint are skipped")
@click.option("--token-path", help="Token endpoint path (default /token).")
@click.option(
    "--me-path", help="Current-user endpoint path (default /users/me); in a token run, any protected GET operation."
)
@click.option(
    "--protected-path",
    "protected_paths",
    multiple=True,
    help="Another protected path (repeatable; default /protected-resource).",
)
@click.option("--hs-secret", help="The target's HMAC signing secret, if known (unlocks key-assisted checks).")
@click.option(
    "--private-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The target's PEM private key (RS256/ES256/EdDSA servers): unlocks the claim checks.",
)
@click.option(
    "--jwks-url", help="The target's JWK Set (default: discovered on common paths such as /.well-known/jwks.json)."
)
@click.option("--timeout", type=float, help="Per-request timeout in seconds (default 10).")
@click.option(
    "--max-wait", type=float, help="Longest wait, in seconds, for a real token to expire (JWT-CLM-001; default 120)."
)
@click.option(
    "--contract",
    metavar="PATH|kit:VERSION",
    help="The target's OpenAPI contract: a file, or kit:VERSION when it implements the kit's contract at that "
    "version, or kit:resource-server when it implements the contract's protected operations without a token "
    "endpoint (default: the document it serves at /openapi.json, else none: only the core rules apply).",
)
@click.option(
    "--identity",
    metavar="MEMBER",
    help="The me answer's member holding the login name (default: username, email, preferred_username, sub, login).",
)
@click.option(
    "--issuer", help="The iss its access tokens carry (JWT-FMT-011 then requires it); in issuer mode, the iss to mint."
)
@click.option(
    "--audience", help="The aud its access tokens carry (JWT-FMT-011 then requires it); in issuer mode, the API's aud."
)
@issuer_keys_option
@subject_option
@click.option("--second-subject", help="Issuer mode: the sub of a second user the API knows (cross-user checks).")
@scope_option
@report_options
def run_command(
    config_file: Path | None,
    json_report: Path | None,
    junit_report: Path | None,
    markdown_report: Path | None,
    html_report: Path | None,
    sarif_report: Path | None,
    verbose: bool,
    **flags: Any,
) -> None:
    """Run the conformance checks against a deployed server."""
    try:
        config = build_config(flags, config_file=config_file)
        reporters = make_reporters(json_report, junit_report, markdown_report, verbose, html_report, sarif_report)
        summary = execute_run(config, reporters)
    except ConformanceError as exc:
        _fail_usage(exc)
        return
    sys.exit(exit_code(summary))


@cli.command("list")
@click.option("--select", "include", multiple=True, help="Only checks whose ID starts with this.")
@click.option("--skip", multiple=True, help="Leave out checks whose ID starts with this.")
def list_command(include: tuple[str, ...], skip: tuple[str, ...]) -> None:
    """List the checks: ID, level, spec references, needs, requirement."""
    checks = select(all_checks(), include, skip)
    if not checks:
        click.echo("error: no check matches the selection", err=True)
        sys.exit(EXIT_USAGE)
    for item in checks:
        needs = ",".join(str(n) for n in item.needs) or "-"
        spec = "; ".join(item.spec)
        click.echo(f"{item.id:<13} {item.level!s:<6} {item.cost:<9} {spec:<34} {needs:<6} {item.title}")


@cli.command("demo")
@report_options
@click.option(
    "--hash-profile",
    type=click.Choice(["default", "fast"]),
    default="default",
    show_default=True,
    help="Password-hash cost of the embedded server.",
)
@click.option("--select", "include", multiple=True, help="Run only checks whose ID starts with this (repeatable).")
@click.option("--skip", multiple=True, help="Skip checks whose ID starts with this (repeatable).")
def demo_command(
    json_report: Path | None,
    junit_report: Path | None,
    markdown_report: Path | None,
    html_report: Path | None,
    sarif_report: Path | None,
    hash_profile: str,
    include: tuple[str, ...],
    skip: tuple[str, ...],
    verbose: bool,
) -> None:
    """Start the reference server on 127.0.0.1 with demo users and run the checks against it."""
    from .demo import demo_server

    try:
        with demo_server(hash_profile) as demo:
            version = current_kit_version()  # the reference server implements the kit's current contract
            config = replace(
                demo.config,
                select=include,
                skip=skip,
                contract=kit_contract_path(version),
                contract_kit_version=version,
            )
            click.echo(f"reference server started at {config.base_url} (temporary database, demo users)", err=True)
            reporters = make_reporters(json_report, junit_report, markdown_report, verbose, html_report, sarif_report)
            summary = execute_run(config, reporters)
    except ConformanceError as exc:
        _fail_usage(exc)
        return
    sys.exit(exit_code(summary))


RENDERERS = {"html": HtmlReporter, "sarif": SarifReporter, "junit": JunitReporter, "markdown": MarkdownReporter}


@cli.command("report")
@click.argument("report_file", metavar="REPORT.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--html", type=_path, help="Write the HTML report here.")
@click.option("--sarif", type=_path, help="Write the SARIF 2.1.0 report here.")
@click.option("--junit", type=_path, help="Write the JUnit XML report here.")
@click.option("--markdown", type=_path, help="Write the Markdown report here.")
def report_command(report_file: Path, **outputs: Path | None) -> None:
    """Render a saved JSON report (--json-report) as HTML, SARIF, JUnit XML or Markdown."""
    wanted = {name: path for name, path in outputs.items() if path is not None}
    if not wanted:
        click.echo("error: nothing to write: give --html, --sarif, --junit or --markdown with a file name", err=True)
        sys.exit(EXIT_USAGE)
    try:
        saved = load_report(report_file, tool_version())
        for name, path in wanted.items():
            try:
                RENDERERS[name](path).write(saved)
            except OSError as exc:
                raise ConfigError(f"cannot write --{name} {path}: {exc.strerror or exc}") from None
    except ConformanceError as exc:
        _fail_usage(exc)
        return
    for name, path in wanted.items():
        click.echo(f"{name}: {path}", err=True)


@cli.command("fuzz")
@target_options
@click.option(
    "--contract",
    metavar="PATH|kit:VERSION",
    help=(
        "OpenAPI contract to fuzz against, all of it: a file, or kit:VERSION for the kit's contract at that version "
        "(kit:resource-server: its protected operations only) (default: the one the target serves at "
        "/openapi.json, else the kit's core operations)."
    ),
)
@token_options("only the operations that take a bearer token are fuzzed (not the token endpoint)")
@issuer_keys_option
@click.option("--audience", help="Issuer mode: the aud of the minted tokens, the API's audience (required).")
@subject_option
@scope_option
@click.option("--issuer", help="Issuer mode: the iss of the minted tokens (default: the URL the issuer publishes).")
@click.option("--token-path", help="Token endpoint path (default /token).")
@click.option(
    "--me-path",
    help="Current-user endpoint path, fuzzed without --contract (default /users/me); in a token run, the protected "
    "GET operation the token must reach before fuzzing starts.",
)
@click.option(
    "--protected-path",
    "protected_paths",
    multiple=True,
    help="Another protected path, fuzzed without --contract (repeatable; default /protected-resource).",
)
@click.option(
    "--exclude-path",
    "exclude_paths",
    multiple=True,
    help="Leave out the contract's operations on this path (repeatable), e.g. one the target does not have.",
)
@click.option(
    "--max-examples",
    type=click.IntRange(1, 100_000),
    help="Generated examples per operation in the fuzzing phase (default 100).",
)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Repeat a run: the seed it printed.")
@click.option("--max-time", type=click.FloatRange(1, 86_400), help="Stop after this many seconds.")
@click.option("--workers", type=click.IntRange(1, 16), help="Concurrent requests (default 1).")
@click.option("--timeout", type=float, help="Per-request timeout in seconds (default 10).")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write fuzz-report.json, fuzz-report.md and fuzz-junit.xml here.",
)
def fuzz_command(config_file: Path | None, report_dir: Path | None, **flags: Any) -> None:
    """Fuzz the target with schemathesis against its contract, with real tokens.

    The tokens come from the password flow, or, for an API that verifies the tokens of an identity
    provider, from --token, --token-command or issuer mode (--issuer-keys): then the operations that
    take a bearer token are fuzzed, and the token endpoint is not.
    """
    from .fuzzing import FuzzFinished, build_fuzz_config, run_fuzz
    from .fuzzing.progress import terminal_fuzz_progress
    from .fuzzing.reporters import ConsoleFuzzReporter, FuzzReporter, ReportDirReporter

    progress = terminal_fuzz_progress()  # first: it clears its line before the others print
    try:
        config = build_fuzz_config({**flags, "report_dir": report_dir}, config_file=config_file)
        reporters: list[FuzzReporter] = [*filter(None, [progress]), ConsoleFuzzReporter(tool_version=tool_version())]
        if report_dir is not None:
            try:
                report_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create --report-dir {report_dir}: {exc.strerror or exc}") from None
            reporters.append(ReportDirReporter(report_dir, tool_version()))
        failed = False
        try:
            for event in run_fuzz(config):
                for reporter in reporters:
                    reporter.handle(event)
                if isinstance(event, FuzzFinished):
                    failed = event.summary.failed
        finally:  # before any error message
            if progress is not None:
                progress.close()
    except ConformanceError as exc:
        _fail_usage(exc)
        return
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


_keys_dir = click.Path(file_okay=True, dir_okay=True, path_type=Path)


@cli.group("issuer", invoke_without_command=True)
@click.option("--keys-dir", type=_keys_dir, help="Where the issuer keeps its keys (created with new keys if empty).")
@click.option("--port", type=click.IntRange(0, 65535), default=9999, show_default=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--issuer", "issuer_url", help="The issuer URL to publish (default http://HOST:PORT).")
@click.pass_context
def issuer_command(ctx: click.Context, keys_dir: Path | None, port: int, host: str, issuer_url: str | None) -> None:
    """Serve a test issuer: OpenID discovery and a JWK Set of keys kept in --keys-dir (RS256, ES256, EdDSA)."""
    if ctx.invoked_subcommand is not None:
        return
    from .issuer.serve import serve, start

    if keys_dir is None:
        click.echo("error: --keys-dir is required: the directory where the issuer keeps its keys", err=True)
        sys.exit(EXIT_USAGE)
    try:
        server = start(keys_dir, host, port, issuer_url)
    except ConformanceError as exc:
        _fail_usage(exc)
        return
    serve(server)


@issuer_command.command("rotate")
@click.option("--keys-dir", type=_keys_dir, required=True, help="The issuer's keys directory.")
@click.option(
    "--alg", type=click.Choice(["RS256", "ES256", "EdDSA"]), help="Algorithm of the new key (default: the signer's)."
)
@click.option(
    "--grace",
    type=click.FloatRange(0),
    default=86_400.0,
    show_default=True,
    help="Seconds the replaced key stays in the JWK Set.",
)
@click.option(
    "--retire", is_flag=True, help="Remove the replaced key, and every key rotated out before, from the JWK Set now."
)
def issuer_rotate_command(keys_dir: Path, alg: str | None, grace: float, retire: bool) -> None:
    """Add a key, make it the signer; the key it replaces stays published for --grace seconds or until --retire."""
    from .issuer import rotate

    try:
        _state, new, replaced = rotate(keys_dir, alg, grace_s=grace, retire=retire)
    except ConformanceError as exc:
        _fail_usage(exc)
        return
    click.echo(f"signer: {new.alg} {new.kid}")
    for key in replaced:
        click.echo(f"{key.status}: {key.alg} {key.kid}")


def main() -> None:
    cli(prog_name="jwt-conformance")
