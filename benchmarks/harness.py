"""What the benchmark scripts share: each contender in its own fresh interpreter, one at a time.

A script's entry point is ``run_script(main, CHILDREN)``. Started as ``python <script> --child
<spec.json>`` (as ``Runner`` starts it), the script calls the function its ``CHILDREN`` table names
for the spec's ``role`` and writes the returned dict as JSON to the spec's ``result`` path;
otherwise it runs ``main``, the parent. ``Runner`` starts one child at a time, waits for it, and
measures the CPU that other processes used meanwhile (``others``, a share of all cores): above
``NOISY_SHARE`` the times are inflated and the scripts say so. ``median_of`` folds repetitions.

Only the standard library here, as at the top of every script: the parent process stays small (a
child's ru_maxrss can inherit its parent's peak on Linux) and each child imports what it needs,
before its clock.

The synthetic transactions that ``features.py`` and ``batch.py`` measure on are made and cached
here too (``transactions_file``); a script that uses them lists ``generate_transactions`` in its
``CHILDREN`` table under the role ``generate``, since generating them imports retain.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

GB: Final = 1e9
NOISY_SHARE: Final = 0.1  # others' CPU share above which the times are reported as inflated

# The synthetic transactions (cached as parquet, git-ignored): simulate(customers, alpha, seed).
DATA_DIR: Final = Path(__file__).resolve().parent / ".data"
FULL_CUSTOMERS: Final = 1_600_000
ALPHA: Final = 40.0  # simulate's default is 60 (8.5 M rows for 1.6 M customers); 40 gives ~10 M
SEED: Final = 0


# -- the entry point and the child ------------------------------------------------------------------


def max_rss_bytes() -> int:
    """This process's peak resident memory in bytes (ru_maxrss: KiB on Linux, bytes on macOS)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss * (1 if sys.platform == "darwin" else 1024))


def peak_memory() -> dict[str, int | None]:
    """This process's peak resident memory: ru_maxrss and, on Linux, VmHWM (both in bytes)."""
    hwm = None
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    return {"ru_maxrss": max_rss_bytes(), "vmhwm": hwm}


def generate_transactions(spec: dict[str, Any]) -> dict[str, Any]:
    """A child: simulate the shop and write its transactions as parquet, with a JSON of counts
    beside (the spec's ``customers``, ``alpha``, ``seed``, ``path`` and ``meta``)."""
    from retain.data.synthetic import simulate

    started = time.perf_counter()
    data = simulate(spec["customers"], alpha=spec["alpha"], seed=spec["seed"])
    tx = data.transactions
    simulated = time.perf_counter() - started
    path = Path(spec["path"])
    partial = path.with_name(path.name + ".partial")
    tx.to_parquet(partial, index=False)
    partial.replace(path)
    meta = {
        "rows": len(tx),
        "customers": int(tx["customer_id"].nunique()),
        "first_day": tx["timestamp"].min().strftime("%Y-%m-%d"),
        "last_day": tx["timestamp"].max().strftime("%Y-%m-%d"),
        "refund_rows": int((tx["amount"] < 0).sum()),
        "params": dict(data.params),
        "simulate_seconds": simulated,
        "total_seconds": time.perf_counter() - started,
    }
    Path(spec["meta"]).write_text(json.dumps(meta, indent=2))
    return meta


def run_script(
    main: Callable[[], int], children: Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]
) -> int:
    """``--child <spec.json>``: run the child function the spec's ``role`` names and write its
    result where the spec says; anything else: ``main()``. Returns the exit status."""
    if len(sys.argv) != 3 or sys.argv[1] != "--child":
        return main()
    spec = json.loads(Path(sys.argv[2]).read_text())
    result = children[spec["role"]](spec)
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


# -- in the parent ----------------------------------------------------------------------------------


def _busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux), else None."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return None
    fields = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # up to steal; guest is in user


def _own_children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Outcome:
    """One child's result, or its failure, and how busy other processes kept the machine meanwhile."""

    name: str
    result: dict[str, Any]
    total_seconds: float
    error: str | None = None
    others_share: float | None = None  # CPU used by other processes, as a share of all cores
    runs: list[Outcome] = field(default_factory=list)  # every repetition, in order

    @property
    def seconds(self) -> float:
        return float(self.result.get("seconds", math.nan))


class Runner:
    """Starts children of ``script`` one at a time, each in a fresh interpreter, and collects their
    results; specs and results are files in ``workdir``."""

    def __init__(self, script: str | Path, workdir: Path) -> None:
        self.script = str(Path(script).resolve())
        self.workdir = workdir
        self.count = 0

    def run(
        self,
        name: str,
        *,
        role: str,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        **spec: Any,
    ) -> Outcome:
        """One child with this ``role`` and spec; ``cwd`` and ``env`` as for ``subprocess.run``."""
        self.count += 1
        stem = self.workdir / f"{self.count:02d}-{role}"
        result_path = stem.with_suffix(".result.json")
        spec_path = stem.with_suffix(".spec.json")
        spec_path.write_text(json.dumps({"role": role, "result": str(result_path), **spec}))
        marks = cpu_marks()
        started = time.perf_counter()
        completed = subprocess.run(
            [sys.executable, self.script, "--child", str(spec_path)],
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            env=env,
        )
        total = time.perf_counter() - started
        others = others_share(marks, total)
        if completed.returncode != 0 or not result_path.exists():
            tail = "\n".join(completed.stdout.strip().splitlines()[-15:])
            return Outcome(name, {}, total, f"exit status {completed.returncode}\n{tail}", others)
        return Outcome(name, json.loads(result_path.read_text()), total, None, others)


def cpu_marks() -> tuple[float | None, float]:
    """The machine's busy CPU seconds and this process's children's, before a child runs."""
    return _busy_cpu_seconds(), _own_children_cpu_seconds()


def others_share(marks: tuple[float | None, float], seconds: float) -> float | None:
    """The share of all cores that other processes used over ``seconds`` since ``marks``
    (:func:`cpu_marks`); None where the machine does not say."""
    busy, own = marks
    busy_after = _busy_cpu_seconds()
    if busy is None or busy_after is None or seconds <= 0:
        return None
    others_cpu = (busy_after - busy) - (_own_children_cpu_seconds() - own)
    return max(0.0, others_cpu) / (seconds * (os.cpu_count() or 1))


def median_of(outcomes: list[Outcome], peak_keys: tuple[str, ...] = ()) -> Outcome:
    """The repetition with the median wall time, with every run beside it; the first failure if
    any run failed.

    ``others`` is the highest share of any run, so that a busy machine during any of them shows;
    each of ``peak_keys`` in the result becomes the highest value over the runs.
    """
    failed = [o for o in outcomes if o.error]
    if failed:
        return failed[0]
    median = sorted(outcomes, key=lambda o: o.seconds)[(len(outcomes) - 1) // 2]
    result = dict(median.result)
    for key in peak_keys:
        values = [o.result[key] for o in outcomes if o.result.get(key)]
        result[key] = max(values) if values else None
    shares = [o.others_share for o in outcomes if o.others_share is not None]
    return replace(
        median, result=result, others_share=max(shares) if shares else None, runs=list(outcomes)
    )


def peak_gb(outcome: Outcome) -> float:
    """The larger of a child's ru_maxrss and VmHWM, in GB (NaN if neither is known)."""
    values = [v for v in (outcome.result.get("ru_maxrss"), outcome.result.get("vmhwm")) if v]
    return max(values) / GB if values else math.nan


def transactions_file(
    customers: int, regenerate: bool, runner: Runner
) -> tuple[Path, dict[str, Any]]:
    """The cached transactions of ``customers`` simulated customers (``ALPHA``, ``SEED``) and their
    counts; generated first, in a child of the role ``generate``, when missing or asked to."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"transactions-c{customers}-alpha{ALPHA:g}-seed{SEED}"
    path, meta_path = DATA_DIR / f"{stem}.parquet", DATA_DIR / f"{stem}.json"
    if regenerate or not (path.exists() and meta_path.exists()):
        print(f"generating {path.name} (simulate({customers:,}, alpha={ALPHA:g}, seed={SEED})) ...")
        outcome = runner.run(
            "generate", role="generate", customers=customers, alpha=ALPHA, seed=SEED,
            path=str(path), meta=str(meta_path),
        )  # fmt: skip
        if outcome.error:
            sys.exit(f"data generation failed: {outcome.error}")
        print(f"  done in {outcome.total_seconds:.0f} s")
    return path, json.loads(meta_path.read_text())


def warm_page_cache(path: Path) -> float:
    """Read the file once so every contender finds it in the OS page cache; return seconds."""
    started = time.perf_counter()
    buffer = bytearray(16 * 2**20)
    with path.open("rb", buffering=0) as file:
        while file.readinto(buffer):
            pass
    return time.perf_counter() - started


def shown(path: Path) -> str:
    """A path as the report prints it: relative to the working folder when under it."""
    return str(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)


def retain_source() -> str:
    """Where retain is imported from, and its commit when that is a git checkout (read-only git)."""
    spec = importlib.util.find_spec("retain")  # locates the package without importing it
    if spec is None or spec.origin is None:
        return "retain: not importable"
    package = Path(spec.origin).parent
    where = f"retain from {package}"
    try:
        commit = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        changed = subprocess.run(
            ["git", "-C", str(package), "diff", "--quiet", "HEAD", "--", "."],
            capture_output=True, check=False, timeout=10,
        ).returncode  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return where
    return f"{where} at commit {commit}" + (" + uncommitted changes" if changed else "")


def machine() -> str:
    """The line every report starts with: cores, Python, and which retain is measured."""
    return f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; {retain_source()}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def check_size_arguments(parser: Any, args: Any) -> None:
    """The checks every benchmark makes of its ``--customers``, ``--scale`` and ``--repeat``."""
    if args.customers is not None and args.customers < 1:
        parser.error("--customers must be positive")
    if args.scale is not None and args.scale <= 0:
        parser.error("--scale must be positive")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
