"""`aura-sicd sandbox ...`: check a directory, run one command, build the images.

Exit codes: 0 success, 1 the checks or the command failed, 2 configuration or availability error.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

from sandbox.config import SandboxSettings
from sandbox.errors import RepoConfigError, SandboxError, SandboxUnavailable, SetupError
from sandbox.reports import CheckReport, CheckStatus

DOCKERFILE = Path(__file__).with_name("Dockerfile")
IMAGE_LABEL = "aura-sicd.check-image"  # prefix of the labels recording what the check image is built from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sandbox", help="run a repository's checks in the sandbox")
    commands = parser.add_subparsers(dest="sandbox_command", metavar="SANDBOX_COMMAND", required=True)

    check = commands.add_parser("check", help="run the check plan on a directory and print the report")
    check.add_argument("path", type=Path)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    _backend_option(check)
    check.set_defaults(func=cmd_check)

    run = commands.add_parser("run", help="run one command in the sandbox; exits with its exit code")
    run.add_argument("path", type=Path)
    run.add_argument("--timeout", type=float, default=None, metavar="S", help="wall-clock limit in seconds")
    _backend_option(run)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...", help="the command, after `--`")
    run.set_defaults(func=cmd_run)

    build = commands.add_parser(
        "build", help="build the default check image (Docker), unless one built from the same inputs exists",
        description="Build sandbox/Dockerfile into the check image. An existing image whose recorded inputs "
                    "(Dockerfile hash, base image, uid, tools) match is reused; --force rebuilds it anyway. "
                    "Without Docker Hub, use a local base image with python3: --base-image or "
                    "AURA_SANDBOX_BASE_IMAGE (`docker images` lists the local ones).")
    build.add_argument("--base-image", default=None,
                       help="base image (default: AURA_SANDBOX_BASE_IMAGE, else "
                            f"{SandboxSettings.model_fields['base_image'].default})")
    build.add_argument("--tag", default=None, help="image tag (default: AURA_SANDBOX_IMAGE)")
    build.add_argument("--force", action="store_true", help="rebuild even when an up-to-date image exists")
    build.add_argument("--language", choices=LANGUAGES, default=None,
                       help="build the image of one language (Python, the tools and that toolchain only), tagged "
                            "IMAGE:LANGUAGE, as AURA_SANDBOX_LANGUAGE_IMAGES=true does on first use")
    build.set_defaults(func=cmd_build)


def _backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["auto", "docker", "bwrap", "local"], default=None,
                        help="sandbox backend (default: AURA_SANDBOX_BACKEND or auto)")


def _settings(args: argparse.Namespace) -> SandboxSettings:
    settings = SandboxSettings()
    if getattr(args, "backend", None):
        settings = settings.model_copy(update={"backend": args.backend})
    return settings


def _fail(message: str, code: int = 2) -> int:
    print(f"aura-sicd: {message}", file=sys.stderr)
    return code


def _guarded(work) -> int:
    try:
        return asyncio.run(work)
    except (SandboxUnavailable, RepoConfigError) as exc:
        return _fail(str(exc), 2)
    except SetupError as exc:
        return _fail(str(exc), 1)
    except SandboxError as exc:
        return _fail(str(exc), 1)


# --- check ------------------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from sandbox.box import open_sandbox

    path = args.path.resolve()
    if not path.is_dir():
        return _fail(f"{args.path} is not a directory")

    async def work() -> int:
        async with open_sandbox(_settings(args), path) as box:
            report = await box.check(path)
        if args.json:
            print(report.model_dump_json(indent=2))
        else:
            print_report(report)
        return 0 if report.all_green else 1

    return _guarded(work())


def print_report(report: CheckReport) -> None:
    from rich.console import Console
    from rich.table import Table

    colours = {CheckStatus.PASSED: "green", CheckStatus.SKIPPED: "dim"}
    table = Table(title=f"Checks ({report.backend}, {report.duration_s:.2f} s)")
    for column in ("check", "status", "exit", "seconds", "tests"):
        table.add_column(column)
    for check in report.checks:
        tests = check.tests
        counts = f"{tests.passed} passed, {tests.failed} failed, {tests.errors} errors, {tests.skipped} skipped" if tests else ""
        status = f"[{colours.get(check.status, 'red')}]{check.status.value}[/]"
        table.add_row(check.name, status, "" if check.exit_code is None else str(check.exit_code),
                      f"{check.duration_s:.2f}", counts)
    console = Console()
    console.print(table)
    console.print(f"pass rate {report.pass_rate:.2f}: {report.pass_rate_reason}")
    if report.plan_source:
        console.print(f"test command from: {report.plan_source}", markup=False, highlight=False)
    if not report.all_green:
        console.print(report.summary(), markup=False, highlight=False)


# --- run --------------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from sandbox.box import open_sandbox

    # argparse hands everything after PATH over as is: options up to `--`, then the command
    rest = list(args.argv)
    if "--" in rest:
        split = rest.index("--")
        options, argv = rest[:split], rest[split + 1 :]
        late = argparse.ArgumentParser(prog="aura-sicd sandbox run PATH", add_help=False, exit_on_error=False)
        late.add_argument("--timeout", type=float, default=args.timeout)
        late.add_argument("--backend", choices=["auto", "docker", "bwrap", "local"], default=args.backend)
        try:
            parsed = late.parse_args(options)
        except argparse.ArgumentError as exc:
            return _fail(f"sandbox run: {exc}")
        args.timeout, args.backend = parsed.timeout, parsed.backend
    else:
        argv = rest
    if not argv:
        return _fail("no command given: aura-sicd sandbox run PATH [--timeout S] -- CMD ...")
    path = args.path.resolve()
    if not path.is_dir():
        return _fail(f"{args.path} is not a directory")

    async def work() -> int:
        async with open_sandbox(_settings(args), path) as box:
            result = await box.run(argv, timeout=args.timeout)
        sys.stdout.write(result.output)
        if result.timed_out:
            print(f"aura-sicd: killed after the timeout of {args.timeout or box.settings.timeout_s:g} s", file=sys.stderr)
            return 124
        if result.oom:
            print("aura-sicd: the command ran out of memory", file=sys.stderr)
        return result.exit_code if result.exit_code is not None else 1

    return _guarded(work())


# --- build ------------------------------------------------------------------------------------------------


ALL_LANGUAGES = "go javascript rust java ruby php"  # the toolchains of the default image (Python is in every one)
LANGUAGES = ("python", *ALL_LANGUAGES.split())


def language_tag(settings: SandboxSettings, language: str) -> str:
    """The per-language image's tag: the check image's name with the language as its tag."""
    return f"{settings.image.rsplit(':', 1)[0]}:{language}"


def language_image(settings: SandboxSettings, language: str, log=print) -> str:
    """The check image for one language, built on first use from the base image (Python and the tools, then
    that language's toolchain only) and reused while its recorded inputs match."""
    if language not in LANGUAGES:
        raise SandboxError(f"no check image for the language {language!r} (one of {', '.join(LANGUAGES)})")
    toolchains = "" if language == "python" else language
    tag, _ = ensure_image(settings, tag=language_tag(settings, language), languages=toolchains, log=log)
    return tag


def image_inputs(settings: SandboxSettings, base_image: str, languages: str = ALL_LANGUAGES) -> dict[str, str]:
    """What the check image is made from, recorded on it as labels; a change to any of them means a rebuild."""
    return {
        f"{IMAGE_LABEL}.dockerfile-sha256": hashlib.sha256(DOCKERFILE.read_bytes()).hexdigest(),
        f"{IMAGE_LABEL}.base-image": base_image,
        f"{IMAGE_LABEL}.sandbox-uid": str(settings.sandbox_uid),
        f"{IMAGE_LABEL}.tools": " ".join(settings.tools),
        f"{IMAGE_LABEL}.languages": languages,
    }


def stale_reason(labels: dict[str, str] | None, inputs: dict[str, str]) -> str | None:
    """Why an image with these labels (None: there is no image) must be built, or None when it can be reused."""
    if labels is None:
        return "it does not exist"
    changed = [name.removeprefix(f"{IMAGE_LABEL}.") for name, value in inputs.items() if labels.get(name) != value]
    if changed:
        return f"its recorded inputs differ ({', '.join(changed)})"
    return None


def local_base_hint(missing_base: str) -> str:
    """How to build without a registry; `missing_base` is the base image that was neither local nor pullable."""
    problem = f"The base image {missing_base} is not on this machine and could not be pulled. " if missing_base else ""
    return (f"{problem}Use a local base image with python3 and python3-venv (`docker images` lists them): "
            "`aura-sicd sandbox build --base-image IMAGE`, or set AURA_SANDBOX_BASE_IMAGE=IMAGE")


def ensure_image(settings: SandboxSettings, *, tag: str | None = None, base_image: str | None = None,
                 force: bool = False, languages: str = ALL_LANGUAGES, log=print) -> tuple[str, bool]:
    """Build the check image with the toolchains of `languages` unless one built from the same inputs exists
    (or `force`); returns (tag, built)."""
    import docker.errors

    from sandbox.docker import docker_client

    tag = tag or settings.image
    base_image = base_image or settings.base_image
    inputs = image_inputs(settings, base_image, languages)
    client = docker_client(settings)
    try:
        try:
            labels = client.images.get(tag).labels or {}
        except docker.errors.ImageNotFound:
            labels = None
        reason = "--force" if force else stale_reason(labels, inputs)
        if reason is None:
            return tag, False
        try:
            client.images.get(base_image)
            base_is_local = True
        except docker.errors.ImageNotFound:
            base_is_local = False
        log(f"building {tag} from {base_image} ({reason})")
        try:
            build_image(client, settings, tag=tag, base_image=base_image, labels=inputs, languages=languages, log=log)
        except (SandboxError, docker.errors.APIError) as exc:
            message = str(exc) if isinstance(exc, SandboxError) else f"building {tag} failed: {exc}"
            if not base_is_local:
                message = f"{message}\n{local_base_hint(base_image)}"
            raise SandboxError(message) from exc
    finally:
        client.close()
    return tag, True


def build_image(client, settings: SandboxSettings, *, tag: str, base_image: str, labels: dict[str, str],
                languages: str = ALL_LANGUAGES, log=print) -> None:
    """Build sandbox/Dockerfile with its base image as a build argument, labelled with its inputs."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = DOCKERFILE.read_bytes()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    buildargs = {"BASE_IMAGE": base_image, "SANDBOX_UID": str(settings.sandbox_uid), "TOOLS": " ".join(settings.tools),
                 "LANGUAGES": languages}
    for chunk in client.api.build(fileobj=context, custom_context=True, tag=tag, buildargs=buildargs, labels=labels,
                                  rm=True, forcerm=True, decode=True, pull=False):
        if "error" in chunk:
            raise SandboxError(f"building {tag} failed: {chunk['error'].strip()}")
        if text := chunk.get("stream", "").rstrip():
            log(text)


def cmd_build(args: argparse.Namespace) -> int:
    from sandbox.docker import engine_unreachable_reason

    settings = SandboxSettings()
    base_image = args.base_image or settings.base_image
    if not base_image:
        return _fail(f"no base image: AURA_SANDBOX_BASE_IMAGE is empty. {local_base_hint('')}")
    if reason := engine_unreachable_reason(settings):
        return _fail(f"cannot build the check image: {reason}")
    try:
        if args.language:
            languages = "" if args.language == "python" else args.language
            tag, built = ensure_image(settings, tag=args.tag or language_tag(settings, args.language),
                                      base_image=base_image, force=args.force, languages=languages)
        else:
            tag, built = ensure_image(settings, tag=args.tag, base_image=base_image, force=args.force)
    except SandboxError as exc:
        return _fail(str(exc), 1)
    print(json.dumps({"built": tag} if built else {"reused": tag}))
    return 0
