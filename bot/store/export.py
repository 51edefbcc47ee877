"""Episodes exported as files: one pretty-printed JSON per episode, named like the seed's."""

from __future__ import annotations

import re
from pathlib import Path

from bot.store.engine import StoreError
from bot.store.runs import RunQueries

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def export_file_name(run_id: str, episode_number: int) -> str:
    """`{run_id}_ep{NNNN}.json`, the seed's naming; characters unsafe in a file name become `_`."""
    return f"{_UNSAFE_FILENAME.sub('_', run_id)}_ep{episode_number:04d}.json"


def export_episodes(store: RunQueries, run_id: str, out_dir: Path) -> list[Path]:
    """Write each episode of a run, iterations included, as pretty-printed JSON; return the paths."""
    if store.get_run(run_id) is None:
        raise StoreError(f"unknown run {run_id!r}: `aura-sicd episodes list` shows the runs in the store")
    episodes = store.list_episodes(run_id)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for episode in episodes:
            path = out_dir / export_file_name(run_id, episode.episode_number)
            path.write_text(episode.model_dump_json(indent=2) + "\n", encoding="utf-8")
            paths.append(path)
    except OSError as exc:
        raise StoreError(f"cannot write the export to {out_dir}: {exc}") from exc
    return paths
