"""Training benchmark: ``RetentionModel.fit`` against the number of customers, beside lifetimes.

What it measures
----------------
Issue 18: the fit time and peak memory of ``RetentionModel(horizon_days=90).fit(transactions,
as_of)`` at 50,000, 200,000, 800,000 and 1,600,000 customers (``--sizes``), and in the same run
the time of lifetimes' ``BetaGeoFitter`` + ``GammaGammaFitter`` fit (penalizer 0.001, as retain's
BTYD features) on the same customers; then the growth exponent of time against customers.

Data: one simulated population, ``simulate(1_600_000, alpha=40, seed=0)`` (the cache that
``features.py`` uses: about 10 million transactions, 2022-01-01 to 2024-12-31), and each smaller
size is its first N customers (the N smallest ids, C0000001 ...; customers are drawn independently,
so the first N are a random sample of the same shop, and every size is nested in the next). Each
size is cached as parquet under ``benchmarks/.data/`` (git-ignored).

as_of is the data's last day (2024-12-31): the fit reads every transaction (the issue's "1.6M
customers, 10M transactions"), and the default plan's cutoffs (the last at as_of - 90 days, then
45 days apart, and the same-season cutoff a year before as_of) all have at least two years of
history before them, so none is shortened or dropped (``--as-of`` changes it).

Every measurement runs alone in its own fresh Python process, one after another:

1. ``retain``: ``load_table(path, TRANSACTIONS)`` (read + validation, not timed), then the timed
   ``RetentionModel(horizon_days=90, **params).fit(frame, as_of)``; ``--param key=value``
   (repeatable, JSON values) sets constructor parameters, so one script compares a lean and a
   full path. Reported: fit seconds, peak memory (the larger of ``ru_maxrss`` and ``VmHWM``, the
   whole process: reading and validation included, as in ``retain train``), the peak before the
   fit, ``training_rows_`` and every fitted attribute that describes the training plan (anything
   ending in ``_`` that is plain data: ``plan_.as_params()``, ``validation_``, ``cutoffs_``, ...).
2. ``lifetimes``: the same load, then the RFM summary at as_of from retain's ``FeatureBuilder``
   (lifetimes 0.11.3's own utilities break on pandas 3; the feature tests check the two equal),
   then ``BetaGeoFitter(penalizer_coef=0.001).fit(frequency, recency, T)`` (one row per customer,
   lifetimes' defaults) and ``GammaGammaFitter(penalizer_coef=0.001)`` on the repeat customers
   with positive spend. ``lifetimes s`` is the two fits alone; the summary's time is printed
   beside it (it is retain's full feature table, more than RFM).

A child that runs past ``--timeout`` (1200 s) is killed; a child killed by a signal (SIGKILL is
usually the kernel's out-of-memory killer) is reported as such with the highest VmHWM the parent
saw. Larger sizes still run unless ``--stop-on-fail``. The CPU that other processes used meanwhile
is measured (``others``); above 10 % the times are inflated and the output says so.

Targets (issue 18, 2-core machine): 1.6 million customers fitted in at most 600 s with a peak
under 8 GB. Missing them prints FAIL but the exit status is 0: this is a report, not a test. The
report is also written to ``benchmarks/results/training-<commit>[-dirty].md``.

How to run
----------
``.venv/bin/python benchmarks/training.py`` (the full curve: the 1.6M population is simulated
once, about a minute); ``--sizes 50000`` for a quick run. Run nothing else meanwhile.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

# harness.py sits beside this file, and Python puts a script's own folder first on sys.path.
from harness import (
    ALPHA,
    DATA_DIR,
    FULL_CUSTOMERS,
    GB,
    NOISY_SHARE,
    SEED,
    Outcome,
    Runner,
    cpu_marks,
    generate_transactions,
    machine,
    others_share,
    peak_gb,
    peak_memory,
    run_script,
    shown,
    transactions_file,
    verdict,
)

# Only the standard library at module level: the parent process stays small (a child's ru_maxrss
# can inherit its parent's peak on Linux) and each child imports what it needs, before its clock.

DEFAULT_SIZES: Final = (50_000, 200_000, 800_000, 1_600_000)
HORIZON_DAYS: Final = 90
PENALIZER: Final = 0.001
TIMEOUT_S: Final = 1200.0
TARGET_CUSTOMERS: Final = 1_600_000
MAX_FIT_S: Final = 600.0
MAX_PEAK_GB: Final = 8.0
RESULTS: Final = Path(__file__).resolve().parent / "results"
ROOT: Final = Path(__file__).resolve().parent.parent
SHOWN_CHARS: Final = 400  # a training attribute is printed up to this many characters


# -- children: each runs in its own process and writes a JSON result --------------------------------


def _child_subset(spec: dict[str, Any]) -> dict[str, Any]:
    """The transactions of the population's first ``customers`` customers (smallest ids)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(spec["population"])
    ids = table.column("customer_id")
    distinct = pc.unique(ids)
    if len(distinct) < spec["customers"]:
        raise ValueError(
            f"population {spec['population']}: column customer_id has {len(distinct):,} "
            f"customers, fewer than the {spec['customers']:,} asked for"
        )
    first = pc.take(distinct, pc.sort_indices(distinct)[: spec["customers"]])
    subset = table.filter(pc.is_in(ids, value_set=first))
    path = Path(spec["path"])
    partial = path.with_name(path.name + ".partial")
    pq.write_table(subset, partial)
    partial.replace(path)
    days = pc.min_max(subset.column("timestamp"))
    meta = {
        "rows": subset.num_rows,
        "customers": len(pc.unique(subset.column("customer_id"))),
        "first_day": days["min"].as_py().strftime("%Y-%m-%d"),
        "last_day": days["max"].as_py().strftime("%Y-%m-%d"),
        "first_id": str(first[0]),
        "last_id": str(first[-1]),
    }
    Path(spec["meta"]).write_text(json.dumps(meta, indent=2))
    return meta


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready data, or ValueError when it is not small plain data (a model, a
    frame, an array)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if depth > 4:
        raise ValueError("nested too deep")
    if hasattr(value, "as_params"):
        return _plain(value.as_params(), depth + 1)
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a numpy scalar
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple) and len(value) <= 20:
        return [_plain(v, depth + 1) for v in value]
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return {name: _plain(getattr(value, name), depth + 1) for name in fields}
    raise ValueError(f"not plain data: {type(value).__name__}")


def _training_attributes(model: Any) -> dict[str, Any]:
    """Every public fitted attribute (name ending in ``_``) that is small plain data: the plan,
    the validation, the choices, whatever the model records about how it trained."""
    described: dict[str, Any] = {}
    for name in sorted(vars(model)):
        if name.startswith("_") or not name.endswith("_"):
            continue
        try:
            described[name] = _plain(getattr(model, name))
        except Exception:  # a model, a frame or anything else: not a description; skipped
            continue
    try:  # the lean path's outcome as the MLflow run records it (timing rows, rounds, sample)
        from retain.tracking.training import training_path

        described["training_path (as logged to MLflow)"] = training_path(model)
    except Exception:  # an older retain: not there
        pass
    return described


def _child_retain(spec: dict[str, Any]) -> dict[str, Any]:
    """Load and validate the transactions (untimed), then time RetentionModel.fit."""
    import warnings

    import pyarrow.parquet  # noqa: F401  (pandas imports it on the first read)

    from retain.data.contract import TRANSACTIONS
    from retain.data.io import load_table
    from retain.models.retention import RetentionModel

    started = time.perf_counter()
    validated = load_table(spec["path"], TRANSACTIONS)
    load_seconds = time.perf_counter() - started
    frame = validated.frame
    before = peak_memory()
    params = {"horizon_days": HORIZON_DAYS, **spec["params"]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        model = RetentionModel(**params).fit(frame, spec["as_of"])
        seconds = time.perf_counter() - started
    memory = peak_memory()
    messages = sorted({f"{w.category.__name__}: {str(w.message)[:200]}" for w in caught})
    return {
        "seconds": seconds,
        "load_seconds": load_seconds,
        "rows": len(frame),
        "rows_quarantined": validated.report.rows_quarantined,
        "training_rows": getattr(model, "training_rows_", None),
        "training": _training_attributes(model),
        "warnings": messages[:5],
        "warning_count": len(caught),
        "peak_before_fit": max(v for v in before.values() if v),
        **memory,
    }


def _child_lifetimes(spec: dict[str, Any]) -> dict[str, Any]:
    """The RFM summary at as_of (retain's FeatureBuilder), then lifetimes' BG/NBD and
    Gamma-Gamma fits, timed apart."""
    import contextlib
    import io
    import warnings

    from lifetimes import BetaGeoFitter, GammaGammaFitter

    from retain.data.contract import TRANSACTIONS
    from retain.data.io import load_table
    from retain.features import FeatureBuilder

    frame = load_table(spec["path"], TRANSACTIONS).frame
    started = time.perf_counter()
    features = FeatureBuilder().build(frame, spec["as_of"])
    summary_seconds = time.perf_counter() - started
    del frame
    x, t_x, T, monetary = (
        features[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")
    )
    del features
    repeat = (x > 0) & (monetary > 0)
    # lifetimes warns (deprecations) and prints the optimiser's report on failure: kept off the
    # table; a ConvergenceError ends the child and is reported as its failure.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        bgf = BetaGeoFitter(penalizer_coef=PENALIZER).fit(x, t_x, T)
        bgnbd_seconds = time.perf_counter() - started
        started = time.perf_counter()
        ggf = GammaGammaFitter(penalizer_coef=PENALIZER).fit(x[repeat], monetary[repeat])
        gg_seconds = time.perf_counter() - started
    return {
        "seconds": bgnbd_seconds + gg_seconds,
        "summary_seconds": summary_seconds,
        "bgnbd_seconds": bgnbd_seconds,
        "gg_seconds": gg_seconds,
        "customers": int(x.size),
        "gg_customers": int(repeat.sum()),
        "bgnbd": {k: float(bgf.params_[k]) for k in ("r", "alpha", "a", "b")},
        "gg": {k: float(ggf.params_[k]) for k in ("p", "q", "v")},
        **peak_memory(),
    }


CHILDREN: Final = {
    "generate": generate_transactions,
    "subset": _child_subset,
    "retain": _child_retain,
    "lifetimes": _child_lifetimes,
}


# -- the parent: one child at a time, with a time limit ---------------------------------------------


def _vmhwm(pid: int) -> int:
    """A running process's peak resident memory so far (VmHWM, bytes), 0 if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _failure(returncode: int, timed_out: bool, timeout: float, log: Path) -> str | None:
    """Why a child failed, or None."""
    if timed_out:
        return f"timed out after {timeout:.0f} s (killed)"
    if returncode < 0:
        name = signal.Signals(-returncode).name
        likely = ": likely the out-of-memory killer" if returncode == -signal.SIGKILL else ""
        return f"killed by {name}{likely}"
    if returncode != 0:
        lines = log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
        tail = "\n".join(lines[-15:])
        return f"exit status {returncode}: {lines[-1]}\n{tail}"
    return None


def run_limited(runner: Runner, name: str, role: str, timeout: float, **spec: Any) -> Outcome:
    """As ``Runner.run``, but the child is killed after ``timeout`` seconds, and its VmHWM is
    sampled every second so that a killed child's peak is known too."""
    runner.count += 1
    stem = runner.workdir / f"{runner.count:02d}-{role}"
    result_path, spec_path, log = (
        stem.with_suffix(s) for s in (".result.json", ".spec.json", ".log")
    )
    spec_path.write_text(json.dumps({"role": role, "result": str(result_path), **spec}))
    marks = cpu_marks()
    started = time.perf_counter()
    seen, timed_out = 0, False
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, runner.script, "--child", str(spec_path)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            while child.poll() is None:
                seen = max(seen, _vmhwm(child.pid))
                if time.perf_counter() - started > timeout:
                    timed_out = True
                    break
                time.sleep(1.0)
        finally:  # a time-out, or the parent interrupted: the child goes too
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    total = time.perf_counter() - started
    others = others_share(marks, total)
    error = _failure(child.returncode, timed_out, timeout, log)
    if error is None and not result_path.exists():
        error = "no result written\n" + log.read_text(errors="replace")[-2000:]
    if error is not None:
        return Outcome(name, {"vmhwm": seen or None}, total, error, others)
    return Outcome(name, json.loads(result_path.read_text()), total, None, others)


# -- the parent: data, sizes, report ----------------------------------------------------------------


@dataclass
class Size:
    """Everything measured at one number of customers."""

    customers: int
    path: Path
    meta: dict[str, Any]
    retain: Outcome | None = None
    lifetimes: Outcome | None = None


def size_file(
    customers: int, population: Path, regenerate: bool, runner: Runner
) -> tuple[Path, dict[str, Any]]:
    """The cached transactions of the population's first ``customers`` customers."""
    if customers == FULL_CUSTOMERS:
        return population, json.loads(population.with_suffix(".json").read_text())
    stem = f"training-first{customers}-of-{population.stem}"
    path, meta_path = DATA_DIR / f"{stem}.parquet", DATA_DIR / f"{stem}.json"
    if regenerate or not (path.exists() and meta_path.exists()):
        outcome = runner.run(
            "subset", role="subset", customers=customers, population=str(population),
            path=str(path), meta=str(meta_path),
        )  # fmt: skip
        if outcome.error:
            sys.exit(f"the {customers:,}-customer subset failed: {outcome.error}")
    return path, json.loads(meta_path.read_text())


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value``: the value as JSON when it parses (``4``, ``false``, ``[30, 90]``), else text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"--param {text!r}: expected key=value, e.g. n_cutoffs=2")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def growth_exponent(points: list[tuple[int, float]]) -> float | None:
    """The least-squares slope of log(seconds) on log(customers); None below two sizes."""
    if len(points) < 2:
        return None
    xs = [math.log(c) for c, _ in points]
    ys = [math.log(s) for _, s in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def _status(outcome: Outcome) -> str:
    if outcome.error:
        return "FAILED: " + outcome.error.splitlines()[0]
    others = "" if outcome.others_share is None else f", others {outcome.others_share:.0%}"
    return f"{outcome.seconds:.1f} s, peak {peak_gb(outcome):.2f} GB{others}"


def measure(size: Size, args: argparse.Namespace, runner: Runner, as_of: dt.date) -> None:
    """retain's fit, then lifetimes', each in its own process."""
    spec = {"path": str(size.path), "as_of": as_of.isoformat()}
    size.retain = run_limited(runner, "retain", "retain", args.timeout, params=args.params, **spec)
    print(f"  {size.customers:>9,}  retain fit: {_status(size.retain)}", flush=True)
    if args.skip_lifetimes:
        return
    size.lifetimes = run_limited(runner, "lifetimes", "lifetimes", args.timeout, **spec)
    print(f"  {size.customers:>9,}  lifetimes BG/NBD + GG: {_status(size.lifetimes)}", flush=True)


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def table_lines(sizes: list[Size]) -> list[str]:
    """One row per size: customers, transactions, training rows, fit, peak, lifetimes, ratio."""
    head = (
        f"{'customers':>10} {'transactions':>13} {'training rows':>14} {'fit s':>8} "
        f"{'peak GB':>8} {'lifetimes s':>12} {'ratio':>7} {'summary s':>10} {'others':>7}"
    )
    lines = [head]
    for size in sizes:
        retain, life = size.retain, size.lifetimes
        assert retain is not None
        ok = retain.error is None
        life_ok = life is not None and life.error is None
        fit = retain.seconds if ok else None
        life_s = life.seconds if life_ok and life is not None else None
        ratio = fit / life_s if fit is not None and life_s else None
        rows = retain.result.get("training_rows") if ok else None
        peak = peak_gb(retain)
        others = [o.others_share for o in (retain, life) if o is not None and o.others_share]
        lines.append(
            f"{size.customers:>10,} {size.meta['rows']:>13,} "
            f"{'-' if rows is None else f'{rows:,}':>14} {_cell(fit):>8} "
            f"{_cell(peak, 2) + ('' if ok else '*'):>8} {_cell(life_s):>12} "
            f"{'-' if ratio is None else f'{ratio:.0f}x':>7} "
            f"{_cell(life.result.get('summary_seconds') if life_ok and life else None):>10} "
            f"{f'{max(others):.0%}' if others else '?':>7}"
        )
        for label, outcome in (("retain", retain), ("lifetimes", life)):
            if outcome is not None and outcome.error:
                lines.append(f"{'':>10} {label} FAILED: {outcome.error.splitlines()[0]}")
    lines += [
        "fit s: RetentionModel(horizon_days=90, ...).fit alone (read + validation before it, not "
        "timed); peak GB: the whole retain process (max of ru_maxrss and VmHWM; * = the highest "
        "VmHWM seen before it failed); lifetimes s: BetaGeoFitter + GammaGammaFitter fits alone, "
        "RFM summary excluded (summary s: retain's FeatureBuilder at as_of, its input); ratio: "
        "fit s / lifetimes s; others: CPU used by other processes meanwhile, share of all cores"
    ]
    return lines


def detail_lines(sizes: list[Size]) -> list[str]:
    """Per size: retain's load and pre-fit peak, warnings, training attributes; lifetimes'
    parameters."""
    lines: list[str] = []
    for size in sizes:
        retain, life = size.retain, size.lifetimes
        lines.append(
            f"{size.customers:,} customers ({size.meta['rows']:,} transactions, "
            f"{size.meta['first_day']} to {size.meta['last_day']}):"
        )
        if retain is not None and not retain.error:
            r = retain.result
            lines.append(
                f"  retain: load_table {r['load_seconds']:.1f} s ({r['rows']:,} rows valid, "
                f"{r['rows_quarantined']:,} quarantined); peak before the fit "
                f"{r['peak_before_fit'] / GB:.2f} GB; child process {retain.total_seconds:.0f} s; "
                f"{r['warning_count']} warnings"
            )
            lines += [f"    warned: {w}" for w in r["warnings"]]
            for name, value in r["training"].items():
                text = json.dumps(value)
                cut = text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + " ..."
                lines.append(f"    {name} = {cut}")
        if life is not None and not life.error:
            r = life.result
            params = ", ".join(f"{k} {v:.4g}" for k, v in {**r["bgnbd"], **r["gg"]}.items())
            lines.append(
                f"  lifetimes: BG/NBD {r['bgnbd_seconds']:.1f} s on {r['customers']:,} customers "
                f"+ Gamma-Gamma {r['gg_seconds']:.1f} s on {r['gg_customers']:,}; summary "
                f"{r['summary_seconds']:.1f} s; peak {peak_gb(life):.2f} GB (summary included); "
                f"{params}"
            )
    return lines


def verdict_lines(sizes: list[Size]) -> list[str]:
    """Growth exponents over the sizes that finished, and the targets at 1.6M customers."""
    done = [s for s in sizes if s.retain is not None and not s.retain.error]
    ours = growth_exponent([(s.customers, s.retain.seconds) for s in done if s.retain])
    theirs = growth_exponent(
        [(s.customers, s.lifetimes.seconds) for s in sizes if s.lifetimes and not s.lifetimes.error]
    )
    lines = [
        "growth exponent (least-squares slope of log time on log customers; 1 = linear): "
        f"retain fit {'-' if ours is None else f'{ours:.2f}'} over {len(done)} sizes; lifetimes "
        f"{'-' if theirs is None else f'{theirs:.2f}'}"
    ]
    for a, b in itertools.pairwise(done):
        assert a.retain is not None and b.retain is not None
        step = math.log(b.retain.seconds / a.retain.seconds) / math.log(b.customers / a.customers)
        lines.append(f"  retain {a.customers:,} -> {b.customers:,}: exponent {step:.2f}")
    target = next((s for s in sizes if s.customers == TARGET_CUSTOMERS), None)
    if target is None or target.retain is None:
        lines.append(f"target at {TARGET_CUSTOMERS:,} customers: n/a (size not run)")
        return lines
    # A failed fit fails both targets: it did not fit in time, or not in memory.
    failed = target.retain.error is not None
    peak = peak_gb(target.retain)
    fit_ok = not failed and target.retain.seconds <= MAX_FIT_S
    peak_ok = not failed and peak < MAX_PEAK_GB
    fit_text = "failed" if failed else f"{target.retain.seconds:.0f} s"
    lines += [
        f"{verdict(fit_ok)}: fit at {TARGET_CUSTOMERS:,} customers {fit_text} "
        f"(target <= {MAX_FIT_S:.0f} s)",
        f"{verdict(peak_ok)}: peak at {TARGET_CUSTOMERS:,} customers {_cell(peak, 2)} GB"
        f"{' before it failed' if failed else ''} (target < {MAX_PEAK_GB:g} GB)",
    ]
    return lines


def noise_lines(sizes: list[Size]) -> list[str]:
    noisy = [
        f"{s.customers:,} ({o.name} {o.others_share:.0%})"
        for s in sizes
        for o in (s.retain, s.lifetimes)
        if o is not None and (o.others_share or 0) > NOISY_SHARE
    ]
    if not noisy:
        return [f"others: at most {NOISY_SHARE:.0%} of the CPU during every run (a quiet machine)"]
    return [
        f"WARNING: other processes kept the machine busy (> {NOISY_SHARE:.0%}) during "
        f"{', '.join(noisy)}: the times are inflated; run again on a quiet machine"
    ]


def commit_name() -> str:
    """The short commit, with ``-dirty`` when src/ has uncommitted changes (read-only git)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("-dirty" if git("status", "--porcelain", "--", "src") else "")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time RetentionModel(horizon_days=90).fit at several numbers of simulated customers, "
            "beside lifetimes' BG/NBD + Gamma-Gamma fit on the same customers; each fit in its "
            "own process. Prints times, peaks, growth exponents and the 1.6M-customer targets."
        )
    )
    parser.add_argument(
        "--sizes",
        default=",".join(str(n) for n in DEFAULT_SIZES),
        help="comma-separated numbers of customers (default %(default)s); each the first N "
        f"customers of simulate({FULL_CUSTOMERS:,}, alpha={ALPHA:g}, seed={SEED})",
    )
    parser.add_argument(
        "--param",
        action="append",
        type=parse_param,
        default=[],
        metavar="KEY=VALUE",
        help="a RetentionModel constructor parameter, value parsed as JSON when it parses "
        "(repeatable), e.g. --param n_cutoffs=2 --param choose_outputs=false",
    )
    parser.add_argument(
        "--as-of",
        type=dt.date.fromisoformat,
        help="training cutoff, YYYY-MM-DD (default: the data's last day)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT_S,
        metavar="SECONDS",
        help="kill a child after this long (default %(default).0f)",
    )
    parser.add_argument(
        "--stop-on-fail", action="store_true", help="skip larger sizes once retain's fit fails"
    )
    parser.add_argument("--skip-lifetimes", action="store_true", help="do not run lifetimes")
    parser.add_argument(
        "--regenerate", action="store_true", help="simulate and cut the data again even if cached"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the markdown report")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(n.replace("_", "")) for n in args.sizes.split(",") if n.strip()})
    except ValueError:
        parser.error(f"--sizes {args.sizes!r}: expected comma-separated integers")
    if not args.sizes or args.sizes[0] < 1 or args.sizes[-1] > FULL_CUSTOMERS:
        parser.error(f"--sizes must be between 1 and {FULL_CUSTOMERS:,}")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    args.params = dict(args.param)
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    started = time.perf_counter()
    commit = commit_name()
    with tempfile.TemporaryDirectory(prefix="retain-training-bench-") as workdir:
        runner = Runner(__file__, Path(workdir))
        population, population_meta = transactions_file(FULL_CUSTOMERS, args.regenerate, runner)
        as_of = args.as_of or dt.date.fromisoformat(population_meta["last_day"])
        params = ", ".join(f"{k}={v!r}" for k, v in args.params.items())
        header = [
            f"training benchmark at commit {commit}",
            machine(),
            f"data: the first N customers of simulate({FULL_CUSTOMERS:,}, alpha={ALPHA:g}, "
            f"seed={SEED}) ({shown(population)}: {population_meta['rows']:,} transactions, "
            f"{population_meta['first_day']} to {population_meta['last_day']}); as of {as_of}",
            f"retain: RetentionModel(horizon_days={HORIZON_DAYS}{', ' + params if params else ''})"
            f".fit(transactions, as_of); lifetimes: BetaGeoFitter + GammaGammaFitter, penalizer "
            f"{PENALIZER:g}; time limit {args.timeout:.0f} s per child",
        ]
        print("\n".join(header), flush=True)
        sizes: list[Size] = []
        for customers in args.sizes:
            path, meta = size_file(customers, population, args.regenerate, runner)
            size = Size(customers, path, meta)
            sizes.append(size)
            measure(size, args, runner, as_of)
            if args.stop_on_fail and size.retain is not None and size.retain.error:
                print(f"  --stop-on-fail: retain failed at {customers:,}; larger sizes skipped")
                break
    report = [
        *table_lines(sizes),
        "",
        *verdict_lines(sizes),
        *noise_lines(sizes),
        "",
        *detail_lines(sizes),
    ]
    print("\n" + "\n".join(report))
    failures = [f"{s.customers:,} {o.name}: {o.error}" for s in sizes
                for o in (s.retain, s.lifetimes) if o is not None and o.error]  # fmt: skip
    for failure in failures:
        print(f"\n{failure}")
    total = f"{time.perf_counter() - started:.0f} s in all"
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"training-{commit}.md"
    command = "benchmarks/training.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = [f"# Training benchmark, {commit}", "", f"`{command.strip()}`; {total}", "", "```text",
            *header, "", *report, *failures, "```", ""]  # fmt: skip
    out.write_text("\n".join(text))
    print(f"\n{total}; written: {shown(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, CHILDREN))
