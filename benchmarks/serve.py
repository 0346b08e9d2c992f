"""Serving benchmark: retain's BentoML service beside `mlflow models serve` of the same model.

What it measures
----------------
A RetentionModel is trained on CDNOW (sample by default, `--data master` for the full set) with
tracking into a temporary local MLflow store and registered as the champion. Then, one server at a
time on 127.0.0.1:

- ``bentoml``: ``bentoml serve retain.serving.service:RetentionService`` with the model exported to
  a folder (``retain export``), as a registry-less deployment runs it;
- ``mlflow``: ``mlflow models serve -m models:/retain@champion --env-manager local``, the same
  model through MLflow's own scoring server (``/invocations``, the pyfunc's ISO-string input).

Load comes from a second process (this script re-run with ``--child load``), over HTTP on
127.0.0.1, in three scenarios:

1. ``single``: one customer with 20 transactions per request, open loop at ``--rate`` (50)
   requests/s over 16 keep-alive connections for ``--seconds`` (20): p50/p95/p99 latency and errors. Target (bentoml): p50 under
   20 ms, p99 under 100 ms, no errors.
2. ``batched``: ``--batch`` (500) customers per request, ``--batch-in-flight`` (2) requests in
   flight, for ``--seconds``: customers/s. Target (bentoml): at least 5,000. Each request has a
   connection of its own: the service runs a worker process per core, and a keep-alive connection
   stays with the worker that accepted it, so two long-lived connections can leave one worker
   idle (measured: 3,600 instead of 7,200 customers/s). New connections go to whichever worker
   accepts first, as a client pool's behind a load balancer would.
3. ``overload`` (bentoml only): 64 requests in flight without pause for 10 s, far past the
   service's ``max_in_flight`` (16): every answer must be a 200 or a clean 503, never a 5xx of
   another kind, a reset connection or a timeout.

Prints a table per scenario and PASS/FAIL per target; exits 0 (a report, not a test). Run nothing
else meanwhile: on 2 cores the load generator itself takes CPU from the server.

    .venv/bin/python benchmarks/serve.py               # about 3 minutes
    .venv/bin/python benchmarks/serve.py --seconds 10 --data sample
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

# Standard library only at module level: the load child starts fast and stays small.

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
P50_MS, P99_MS, MIN_CUSTOMERS_S = 20.0, 100.0, 5000.0


# -- the load generator (child process) -------------------------------------------------------------


def _child_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Send requests per the spec; return latencies (ms) and status counts."""
    host, port, path = spec["host"], spec["port"], spec["path"]
    bodies = [json.dumps(b).encode() for b in spec["bodies"]]
    mode, seconds = spec["mode"], spec["seconds"]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def send(
        conn: http.client.HTTPConnection, body: bytes
    ) -> tuple[http.client.HTTPConnection, str, float]:
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers={"content-type": "application/json"})
            reply = conn.getresponse()
            reply.read()
            status = str(reply.status)
            if reply.getheader("connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
        except (OSError, http.client.HTTPException) as error:
            status = f"error: {type(error).__name__}"
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
        return conn, status, (time.perf_counter() - started) * 1000

    def record(status: str, ms: float) -> None:
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            if status == "200":
                latencies.append(ms)

    def closed_loop(worker: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        i = worker
        while time.perf_counter() < stop_at:
            if spec.get("fresh_connections") and i != worker:
                conn.close()  # one connection per request (see the batched scenario)
                conn = http.client.HTTPConnection(host, port, timeout=30)
            conn, status, ms = send(conn, bodies[i % len(bodies)])
            record(status, ms)
            i += 1
        conn.close()

    def open_loop(worker: int, n_workers: int, rate: float) -> None:
        # Worker w sends requests w, w + n, w + 2n, ... at their scheduled times: a fixed rate
        # whatever the latency (a slow answer does not slow the offered load).
        conn = http.client.HTTPConnection(host, port, timeout=30)
        start = time.perf_counter() + 0.2
        k = worker
        while True:
            due = start + k / rate
            if due >= stop_at:
                break
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            conn, status, ms = send(conn, bodies[k % len(bodies)])
            record(status, ms)
            k += n_workers
        conn.close()

    threads: list[threading.Thread] = []
    if mode == "open":
        n = spec["workers"]
        threads = [threading.Thread(target=open_loop, args=(w, n, spec["rate"])) for w in range(n)]
    else:
        threads = [threading.Thread(target=closed_loop, args=(w,)) for w in range(spec["workers"])]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "latencies_ms": latencies,
        "statuses": statuses,
        "seconds": time.perf_counter() - began,
    }


# -- servers ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    """Until every worker is ready: each worker answers /readyz for itself, and a new connection
    goes to any of them, so readiness counts after 20 answers of 200 in a row."""
    deadline = time.monotonic() + timeout
    in_a_row = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                in_a_row = in_a_row + 1 if reply.status == 200 else 0
        except OSError:
            in_a_row = 0
        if in_a_row == 20:
            return
        time.sleep(0.1 if in_a_row else 0.5)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def _start(
    command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped with everything it spawned
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


# -- the run ----------------------------------------------------------------------------------------


def _prepare(workdir: Path, data: str) -> tuple[dict[str, str], list[dict[str, Any]], str]:
    """Train and register the model; export it; pick request histories. Returns env, histories
    (customer_id + transactions as JSON-ready dicts) and the as-of day."""
    import pandas as pd

    from retain.data.datasets import load_cdnow
    from retain.models.retention import RetentionModel
    from retain.serving.scoring import export_model
    from retain.tracking import TrackingSettings, train_tracked

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "RETAIN_SERVE_MODEL_DIR": str(workdir / "models"),
        # mlflow models serve starts `uvicorn` by name: the venv's bin must be on the PATH.
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.chdir(workdir)
    tx = load_cdnow(data).transactions.frame
    as_of = "1998-06-30"
    started = time.perf_counter()
    train_tracked(
        tx,
        as_of,
        90,
        settings=TrackingSettings(tracking_uri=uri),
        model_factory=lambda h: RetentionModel(h, n_cutoffs=2),
        dataset_name=f"cdnow-{data}",
    )
    export_model(None, workdir / "models")
    print(
        f"model: trained on CDNOW {data} as of {as_of} and registered in {time.perf_counter() - started:.0f} s"
    )
    # Histories of 20 transactions: customers with the most purchases, their last 20 (repeated
    # from the start when a customer has fewer).
    counts = tx["customer_id"].value_counts()
    histories = []
    for customer in counts.index[:200]:
        rows = tx[tx["customer_id"] == customer].tail(20)
        while len(rows) < 20:
            rows = pd.concat([rows, rows.head(20 - len(rows))])
        histories.append(
            {
                "customer_id": str(customer),
                "transactions": [
                    {"timestamp": t.isoformat(), "amount": float(a)}
                    for t, a in zip(rows["timestamp"], rows["amount"], strict=True)
                ],
            }
        )
    return env, histories, as_of


def _bodies(
    server: str, histories: list[dict[str, Any]], per_request: int, as_of: str
) -> list[dict[str, Any]]:
    """Request bodies for a server: retain's schema, or MLflow's dataframe_split of the pyfunc."""
    # Every customer of a request under an id of its own (a request may not name one twice).
    groups = [
        [
            {**histories[(i * per_request + j) % len(histories)], "customer_id": f"c{i}-{j}"}
            for j in range(per_request)
        ]
        for i in range(8)
    ]
    if server == "bentoml":
        return [{"customers": g, "as_of": as_of, "n_reasons": 3} for g in groups]
    bodies = []
    for g in groups:
        data = [
            [h["customer_id"], line["timestamp"], line["amount"]]
            for h in g
            for line in h["transactions"]
        ]
        bodies.append(
            {
                "dataframe_split": {
                    "columns": ["customer_id", "timestamp", "amount"],
                    "data": data,
                },
                "params": {"as_of": as_of, "n_reasons": 3},
            }
        )
    return bodies


def _load(port: int, path: str, bodies: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(
            {"host": "127.0.0.1", "port": port, "path": path, "bodies": bodies, **spec}, handle
        )
        spec_path = handle.name
    out = spec_path + ".out"
    subprocess.run([sys.executable, __file__, "--child", spec_path, "--out", out], check=True)
    return json.loads(Path(out).read_text())


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (float("nan"),) * 3
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["sample", "master"], default="sample")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--batch-in-flight",
        type=int,
        default=2,
        help="batched requests in flight (default 2), each on a connection of its own",
    )
    parser.add_argument(
        "--servers",
        default="bentoml,mlflow",
        help="comma-separated servers to run (default both: the reference runs in the same run)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = _child_load(json.loads(Path(args.child).read_text()))
        Path(args.out).write_text(json.dumps(result))
        return 0

    with tempfile.TemporaryDirectory(prefix="retain-serve-bench-") as folder:
        workdir = Path(folder)
        env, histories, as_of = _prepare(workdir, args.data)
        results: dict[str, dict[str, Any]] = {}
        servers = {
            "bentoml": (
                [str(BIN / "bentoml"), "serve", "retain.serving.service:RetentionService"],
                "/predict",
                "/readyz",
            ),
            "mlflow": (
                [
                    str(BIN / "mlflow"),
                    "models",
                    "serve",
                    "-m",
                    "models:/retain@champion",
                    "--env-manager",
                    "local",
                ],
                "/invocations",
                "/ping",
            ),
        }
        chosen = [name.strip() for name in args.servers.split(",")]
        unknown = sorted(set(chosen) - set(servers))
        if unknown:
            parser.error(f"--servers: unknown {', '.join(unknown)} (choose from bentoml, mlflow)")
        for name, (command, path, ready) in servers.items():
            if name not in chosen:
                continue
            port = _free_port()
            extra = ["--host", "127.0.0.1", "--port", str(port)]
            if name == "mlflow":
                extra = ["-h", "127.0.0.1", "-p", str(port), "-w", "1"]
            process = _start([*command, *extra], env, workdir, workdir / f"{name}.log")
            try:
                started = time.perf_counter()
                _wait(f"http://127.0.0.1:{port}{ready}", process)
                print(f"{name}: ready in {time.perf_counter() - started:.0f} s on port {port}")
                single = _bodies(name, histories, 1, as_of)
                _load(port, path, single[:20], mode="closed", workers=1, seconds=3)  # warm-up
                results[name] = {
                    "single": _load(
                        port,
                        path,
                        single,
                        mode="open",
                        workers=16,
                        rate=args.rate,
                        seconds=args.seconds,
                    ),
                    "batched": _load(
                        port,
                        path,
                        _bodies(name, histories, args.batch, as_of),
                        mode="closed",
                        workers=args.batch_in_flight,
                        fresh_connections=True,
                        seconds=args.seconds,
                    ),
                }
                if name == "bentoml":
                    results[name]["overload"] = _load(
                        port, path, single, mode="closed", workers=64, seconds=10
                    )
            finally:
                _stop(process)
        _report(results, args)
    return 0


def _report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nsingle: 1 customer x 20 transactions per request, {args.rate:g} requests/s offered for {args.seconds:g} s"
    )
    print(f"{'server':<10}{'ok':>7}{'other':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>8}")
    for name, runs in results.items():
        run = runs["single"]
        ok = run["statuses"].get("200", 0)
        p50, p95, p99 = _percentiles(run["latencies_ms"])
        print(
            f"{name:<10}{ok:>7}{sum(run['statuses'].values()) - ok:>7}{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}{ok / run['seconds']:>8.1f}"
        )
    print(
        f"\nbatched: {args.batch} customers per request, {args.batch_in_flight} in flight, "
        f"{args.seconds:g} s"
    )
    print(f"{'server':<10}{'requests':>9}{'other':>7}{'customers/s':>13}{'p50 ms':>9}")
    for name, runs in results.items():
        run = runs["batched"]
        ok = run["statuses"].get("200", 0)
        p50, _, _ = _percentiles(run["latencies_ms"])
        print(
            f"{name:<10}{ok:>9}{sum(run['statuses'].values()) - ok:>7}{ok * args.batch / run['seconds']:>13,.0f}{p50:>9.1f}"
        )
    bento = results.get("bentoml", {})
    checks: list[tuple[str, bool]] = []
    if bento:
        single = bento["single"]
        p50, _, p99 = _percentiles(single["latencies_ms"])
        errors = sum(v for k, v in single["statuses"].items() if k != "200")
        rate = bento["batched"]["statuses"].get("200", 0) * args.batch / bento["batched"]["seconds"]
        overload = bento["overload"]["statuses"]
        unclean = {k: v for k, v in overload.items() if k not in ("200", "503")}
        print(f"\noverload (bentoml): 64 requests in flight for 10 s: {overload}")
        checks = [
            (f"single p50 {p50:.1f} ms < {P50_MS:g} ms", p50 < P50_MS),
            (f"single p99 {p99:.1f} ms < {P99_MS:g} ms", p99 < P99_MS),
            (f"single errors {errors} = 0", errors == 0),
            (f"batched {rate:,.0f} customers/s >= {MIN_CUSTOMERS_S:,.0f}", rate >= MIN_CUSTOMERS_S),
            (
                f"overload answers only 200 or 503 ({unclean if unclean else 'none other'})",
                not unclean,
            ),
        ]
    print("\ntargets (bentoml)")
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    print(f"\nVERDICT: {'PASS' if checks and all(ok for _, ok in checks) else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
