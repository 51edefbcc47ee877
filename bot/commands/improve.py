"""`aura-sicd improve PATH --task TEXT`: the cycle on a local git repository, with live progress."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from rich.console import Console

from bot.errors import ConfigError
from bot.commands.common import checked_client, load_settings
from bot.config import Settings
from bot.records import Episode, EpisodeStatus, GuidanceEntry, IterationStatus, Task


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "improve",
        help="run the generate → test → score → guide cycle on a local git repository",
        description="Works in a git worktree on a new branch aura-sicd/<id>; your checkout is never touched. "
        "Exit 0 when a change is approved (or none is needed), 1 when attempts ran out, 2 on a configuration error.",
    )
    p.add_argument("path", type=Path, help="the git repository to improve")
    p.add_argument("--task", help="what to do (first line is the title)")
    p.add_argument("--task-file", type=Path, help="read the task from a file (e.g. an issue text)")
    p.add_argument("--guidance", action="append", default=[], help="extra guidance for the generator (repeatable)")
    p.add_argument("--max-iterations", type=int, help="override AURA_MAX_ITERATIONS")
    p.add_argument("--base", default="HEAD", help="the commit to start from (default HEAD)")
    p.add_argument("--dry-run", action="store_true", help="run the cycle but leave no branch or commit behind")
    p.set_defaults(func=run)


def read_task(args: argparse.Namespace) -> Task:
    if args.task_file is not None:
        try:
            text = args.task_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the task file {args.task_file}: {exc.strerror}") from exc
    elif args.task:
        text = args.task
    else:
        raise ConfigError("give the task with --task TEXT or --task-file FILE")
    text = text.strip()
    if not text:
        raise ConfigError("the task is empty")
    title, _, body = text.partition("\n")
    return Task(title=title.strip().lstrip("# ").strip(), body=body.strip(), source="cli", repo=args.path.resolve().name)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    task = read_task(args)
    if args.max_iterations is not None and args.max_iterations < 1:
        raise ConfigError("--max-iterations must be at least 1")
    return asyncio.run(improve(settings, args, task))


async def improve(settings: Settings, args: argparse.Namespace, task: Task) -> int:
    from bot.cycle.loop import CycleRequest
    from bot.cycle.episode import EpisodeRunner
    from bot.events import ChecksFinished, EpisodePrepared, EventBus, IterationCompleted, IterationStarted
    from bot.llm.client import LLMError
    from bot.store import Store, StoreError
    from bot.workspace import WorkspaceError
    from sandbox import SandboxError

    console = Console(stderr=True, highlight=False)
    llm = await checked_client(settings, args.path)
    try:
        try:
            store = Store.open(settings.database_url)
        except StoreError as exc:
            raise ConfigError(str(exc)) from exc

        bus = EventBus()
        status = console.status("starting")

        def on_started(e: IterationStarted) -> None:
            cand = f" candidate {e.candidate + 1}" if settings.ensemble_size > 1 else ""
            status.update(f"iteration {e.number}/{e.max_iterations}{cand}: {e.model} is proposing a change")

        def on_checks(e: ChecksFinished) -> None:
            status.update(f"iteration {e.number}: checks done, scoring")

        def on_completed(e: IterationCompleted) -> None:
            r = e.record
            checks = ", ".join(f"{c.name} {c.status.value}" for c in r.check_report.checks) if r.check_report else "no checks"
            reward = f"reward {r.reward.value:.3f}" if r.reward else "no reward"
            why = r.error or r.apply_error or ""
            if not why and r.reward is not None and r.status is not IterationStatus.APPROVED:
                why = " ".join(r.reward.reasons)
            console.print(f"[bold]iteration {r.number}[/bold] {r.status.value}: {checks}; {reward}" + (f"\n  {why}" if why else ""))
            if r.test_impact is not None:
                console.print("  " + r.test_impact.summary().replace("\n", "\n  "), markup=False, highlight=False)

        def on_prepared(e: EpisodePrepared) -> None:
            chosen = f" (the bandit's choice among {e.model_choices})" if e.model_choices > 1 else ""
            learned = ""
            if e.memory_entries or e.pattern_examples:
                learned = f"; using {e.memory_entries} memory entries and {e.pattern_examples} examples learned on {repo}"
            console.print(f"generator model {e.generator_model}{chosen}{learned}")

        bus.subscribe(EpisodePrepared, on_prepared)
        bus.subscribe(IterationStarted, on_started)
        bus.subscribe(ChecksFinished, on_checks)
        bus.subscribe(IterationCompleted, on_completed)

        repo = args.path.resolve().name
        request = CycleRequest(
            repo_dir=args.path,
            repo=repo,
            task=task,
            base_ref=args.base,
            guidance=[GuidanceEntry(source="human", text=g) for g in args.guidance],
            max_iterations=args.max_iterations,
            dry_run=args.dry_run,
        )
        runner = EpisodeRunner(settings, llm, store=store, bus=bus,
                               run_params={"path": str(args.path.resolve()), "dry_run": args.dry_run})
        try:
            with status:
                result = await runner.run(request)
        except (WorkspaceError, SandboxError) as exc:
            raise ConfigError(str(exc)) from exc
        except LLMError as exc:  # the server went away or lost a model mid-run
            console.print(f"[red]the model server failed mid-run:[/red] {exc}")
            return 1
        if result.error is not None or result.episode is None:
            console.print(f"[red]the model server failed mid-run:[/red] {result.error}")
            return 1
        return report(settings, result.episode, console)
    finally:
        await llm.aclose()


def report(settings: Settings, episode: Episode, console: Console) -> int:
    from bot.pr_body import render_pr

    if episode.status is EpisodeStatus.NO_CHANGE:
        console.print(f"No change is needed: {episode.outcomes.summary}")
        if episode.outcomes.evidence:
            console.print(f"Evidence: {episode.outcomes.evidence}")
        return 0
    title, body = render_pr(episode)
    settings.proposals_dir.mkdir(parents=True, exist_ok=True)
    proposal_id = episode.context.proposal_id
    path = settings.proposals_dir / f"{proposal_id}.md"
    path.write_text(f"# {title}\n\n{body}", encoding="utf-8")
    sys.stdout.write(f"# {title}\n\n{body}")
    sys.stdout.flush()
    if episode.status is EpisodeStatus.APPROVED:
        where = "(dry run: no branch kept)" if episode.outcomes.commit is None else f"on branch {episode.context.branch} ({episode.outcomes.commit[:12]})"
        console.print(f"[green]approved[/green] {where}; PR text in {path}")
        return 0
    console.print(f"[red]not approved[/red] after {len(episode.iterations)} attempt(s); best attempt in {path}")
    return 1
