"""What a SWE-bench run leaves in OUT: one result per instance and model (results/), the predictions in
SWE-bench's format (predictions.jsonl) and the report (report.json) with per-model aggregates and a
bootstrap confidence interval; `compare` sets two reports side by side, instance by instance.

Results are written one file each, atomically, as instances finish: a killed run loses only the
instances that were running, and the next run with the same OUT skips what is done.
"""

from __future__ import annotations

import json
import os
import random
import statistics
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

STATUSES = ("resolved", "unresolved", "empty patch", "malformed edits", "error", "environment failure")
BOOTSTRAP_SAMPLES = 2000


class InstanceResult(BaseModel):
    instance_id: str
    repo: str
    model: str
    status: str  # one of STATUSES
    resolved: bool
    approved: bool = False  # the cycle approved the change
    episode_status: str | None = None
    iterations: int = 0
    tokens: int = 0
    wall_s: float = 0.0
    model_patch: str = ""
    fail_to_pass_failed: list[str] = Field(default_factory=list)
    pass_to_pass_failed: list[str] = Field(default_factory=list)
    changed_lines_in_prompt: bool | None = None  # every base line the gold fix changes was in the first prompt
    missing_lines: list[str] = Field(default_factory=list)  # "path:line" of those that were not
    error: str | None = None


class ModelSummary(BaseModel):
    model: str
    instances: int
    resolved: int
    resolved_pct: float
    resolved_ci95: tuple[float, float]  # bootstrap over instances, percent
    empty_pct: float
    malformed_pct: float
    error_pct: float
    environment_failures: int
    mean_iterations: float
    tokens_per_instance: float
    mean_wall_s: float
    total_wall_s: float


class Report(BaseModel):
    instances_file: str = ""
    models: list[str] = Field(default_factory=list)
    results: list[InstanceResult] = Field(default_factory=list)
    per_model: list[ModelSummary] = Field(default_factory=list)


class ReportError(Exception):
    """A report that cannot be read or compared."""


def bootstrap_ci(outcomes: list[bool], *, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the success rate in percent, resampling instances with replacement (seeded)."""
    if not outcomes:
        return 0.0, 0.0
    rng = random.Random(seed)
    n = len(outcomes)
    rates = sorted(sum(rng.choices(outcomes, k=n)) / n for _ in range(samples))
    return round(100 * rates[int(0.025 * samples)], 1), round(100 * rates[int(0.975 * samples) - 1], 1)


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def summarize(results: list[InstanceResult]) -> list[ModelSummary]:
    by_model: dict[str, list[InstanceResult]] = defaultdict(list)
    for r in results:
        by_model[r.model].append(r)
    out = []
    for model, rows in by_model.items():
        n = len(rows)
        count = {s: sum(r.status == s for r in rows) for s in STATUSES}
        out.append(ModelSummary(
            model=model, instances=n, resolved=count["resolved"], resolved_pct=_pct(count["resolved"], n),
            resolved_ci95=bootstrap_ci([r.resolved for r in rows]),
            empty_pct=_pct(count["empty patch"], n), malformed_pct=_pct(count["malformed edits"], n),
            error_pct=_pct(count["error"], n), environment_failures=count["environment failure"],
            mean_iterations=round(statistics.fmean(r.iterations for r in rows), 2),
            tokens_per_instance=round(statistics.fmean(r.tokens for r in rows), 1),
            mean_wall_s=round(statistics.fmean(r.wall_s for r in rows), 1),
            total_wall_s=round(sum(r.wall_s for r in rows), 1),
        ))
    return out


# --- OUT -----------------------------------------------------------------------------------------


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def model_dir_name(model: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in model)


def result_path(out: Path, model: str, instance_id: str) -> Path:
    return out / "results" / model_dir_name(model) / f"{instance_id}.json"


def save_result(out: Path, result: InstanceResult) -> None:
    _atomic_write(result_path(out, result.model, result.instance_id), result.model_dump_json(indent=2) + "\n")


def load_result(out: Path, model: str, instance_id: str) -> InstanceResult | None:
    """A finished result from an earlier run, or None (also for a file a crash left unreadable)."""
    path = result_path(out, model, instance_id)
    try:
        return InstanceResult.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError):
        return None


def write_outputs(out: Path, report: Report) -> None:
    """predictions.jsonl (SWE-bench's predictions format) and report.json."""
    predictions = [json.dumps({"instance_id": r.instance_id, "model_name_or_path": r.model, "model_patch": r.model_patch})
                   for r in report.results]
    _atomic_write(out / "predictions.jsonl", "".join(line + "\n" for line in predictions))
    _atomic_write(out / "report.json", report.model_dump_json(indent=2) + "\n")


def load_report(path: Path) -> Report:
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        return Report.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"cannot read the report {path}: {exc}") from exc
    except ValidationError as exc:
        raise ReportError(f"{path} is not a report of `aura-sicd eval swebench`: {exc.errors()[0]['msg']}") from exc


# --- text ----------------------------------------------------------------------------------------


def render_report(report: Report) -> str:
    lines = [f"{'instance':<44} {'model':<20} {'status':<20} {'iter':>4} {'tokens':>8} {'wall s':>7}"]
    for r in sorted(report.results, key=lambda r: (r.model, r.instance_id)):
        lines.append(f"{r.instance_id:<44} {r.model:<20} {r.status:<20} {r.iterations:>4} {r.tokens:>8} {r.wall_s:>7.1f}")
    lines.append("")
    for s in report.per_model:
        lines.append(f"{s.model}: resolved {s.resolved}/{s.instances} = {s.resolved_pct:.1f} % "
                     f"(95 % CI {s.resolved_ci95[0]:.1f}-{s.resolved_ci95[1]:.1f}), empty {s.empty_pct:.1f} %, "
                     f"malformed {s.malformed_pct:.1f} %, errors {s.error_pct:.1f} %, "
                     f"environment failures {s.environment_failures}, mean iterations {s.mean_iterations:.2f}, "
                     f"tokens/instance {s.tokens_per_instance:.0f}, wall {s.mean_wall_s:.1f} s/instance")
    return "\n".join(lines)


class Comparison(BaseModel):
    model_a: str
    model_b: str
    both: list[str]
    only_a: list[str]
    only_b: list[str]
    neither: list[str]
    missing: list[str]  # in one report only
    delta_pct: float  # resolved % of B minus A, over the shared instances
    delta_ci95: tuple[float, float]


def _pick(report: Report, model: str | None, which: str) -> str:
    models = list(dict.fromkeys(r.model for r in report.results))
    if model is not None:
        if model not in models:
            raise ReportError(f"report {which} has no model {model} (it has: {', '.join(models) or 'none'})")
        return model
    if len(models) != 1:
        raise ReportError(f"report {which} holds {len(models)} models ({', '.join(models)}): name one with --model-{which.lower()}")
    return models[0]


def compare(a: Report, b: Report, *, model_a: str | None = None, model_b: str | None = None, seed: int = 0) -> Comparison:
    """Instance by instance: resolved by both, by one, by neither; the difference with a paired bootstrap CI."""
    ma, mb = _pick(a, model_a, "A"), _pick(b, model_b, "B")
    ra = {r.instance_id: r.resolved for r in a.results if r.model == ma}
    rb = {r.instance_id: r.resolved for r in b.results if r.model == mb}
    shared = sorted(set(ra) & set(rb))
    pairs = [(ra[i], rb[i]) for i in shared]
    delta = 100 * (sum(y for _, y in pairs) - sum(x for x, _ in pairs)) / len(pairs) if pairs else 0.0
    rng = random.Random(seed)
    deltas = []
    for _ in range(BOOTSTRAP_SAMPLES if pairs else 0):
        sample = rng.choices(pairs, k=len(pairs))
        deltas.append(100 * (sum(y for _, y in sample) - sum(x for x, _ in sample)) / len(sample))
    deltas.sort()
    ci = (round(deltas[int(0.025 * len(deltas))], 1), round(deltas[int(0.975 * len(deltas)) - 1], 1)) if deltas else (0.0, 0.0)
    return Comparison(
        model_a=ma, model_b=mb,
        both=[i for i in shared if ra[i] and rb[i]], only_a=[i for i in shared if ra[i] and not rb[i]],
        only_b=[i for i in shared if rb[i] and not ra[i]], neither=[i for i in shared if not ra[i] and not rb[i]],
        missing=sorted(set(ra) ^ set(rb)), delta_pct=round(delta, 1), delta_ci95=ci,
    )


def render_comparison(c: Comparison) -> str:
    shared = len(c.both) + len(c.only_a) + len(c.only_b) + len(c.neither)
    lines = [f"A = {c.model_a}, B = {c.model_b}, {shared} shared instances",
             (f"  resolved by both: {len(c.both)}, by A only: {len(c.only_a)}, by B only: {len(c.only_b)}, "
              f"by neither: {len(c.neither)}"),
             f"  B - A: {c.delta_pct:+.1f} points (95 % CI {c.delta_ci95[0]:+.1f} to {c.delta_ci95[1]:+.1f})"]
    for label, ids in (("A only", c.only_a), ("B only", c.only_b), ("in one report only", c.missing)):
        if ids:
            lines.append(f"  {label}: {', '.join(ids)}")
    return "\n".join(lines)
