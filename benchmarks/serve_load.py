"""Throughput and latency of `fasterseg serve` under 1, 4, 16 and 64 concurrent clients.

Starts the server on a free 127.0.0.1 port (its automatic deploy path unless --backend), then
for each client count runs that many keep-alive clients posting one 360x480 road frame for
--seconds, and reports answered requests per second, p50/p99 latency and refusals (503). The
single-stream reference is `fasterseg bench` end to end on the same model, path and size, run
in the same session. Traffic goes to 127.0.0.1 only and is bounded in time.

    python benchmarks/serve_load.py [--clients 1 4 16 64] [--seconds 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CAMVID = REPO.parent / "shared" / "data" / "camvid"


def frame() -> bytes:
    """A CamVid frame read in place when the shared data is there, else a synthetic street scene."""
    from PIL import Image

    listing = CAMVID / "val.txt"
    if listing.is_file():
        image = Image.open(CAMVID / listing.read_text().split()[0]).convert("RGB")
    else:
        rng = np.random.default_rng(0)
        image = Image.fromarray(rng.integers(0, 255, (360, 480, 3), dtype=np.uint8))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, extra: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "fasterseg.cli", "serve", "--port", str(port), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stdout.read().decode()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not become healthy")


def run_clients(port: int, body: bytes, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            conn.request("POST", "/v1/segment", body=body, headers={"Content-Type": "image/png"})
            response = conn.getresponse()
            response.read()
            took = time.perf_counter() - start
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 200:
                    latencies.append(took)
            if response.status == 503:
                time.sleep(float(response.getheader("Retry-After", "1")) / 10)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    ms = np.array(latencies) * 1000
    return {"clients": clients, "answered": len(latencies), "per_s": len(latencies) / wall,
            "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
            "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
            "refused_503": statuses.get(503, 0), "other": {k: v for k, v in statuses.items() if k not in (200, 503)}}


def batch_totals(port: int) -> tuple[float, float]:
    """(images, batches) run so far, from the server's own metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        lines = r.read().decode().splitlines()
    total = next(float(line.split()[-1]) for line in lines if line.startswith("fasterseg_batch_size_sum"))
    count = next(float(line.split()[-1]) for line in lines if line.startswith("fasterseg_batch_size_count"))
    return total, count


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--backend", default="auto")
    p.add_argument("--precision", default="auto")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="server setting KEY=VALUE")
    p.add_argument("--json", help="write the results here too")
    args = p.parse_args()
    body = frame()
    port = free_port()
    extra = ["--backend", args.backend, "--precision", args.precision] + [x for s in args.overrides for x in ("--set", s)]
    proc = start_server(port, extra)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/model", timeout=10) as r:
            path = json.loads(r.read())["deploy_path"]
        rows = []
        for n in args.clients:
            images0, batches0 = batch_totals(port)
            row = run_clients(port, body, n, args.seconds)
            images1, batches1 = batch_totals(port)
            row["mean_batch"] = (images1 - images0) / max(batches1 - batches0, 1)
            rows.append(row)
            print(f"{n:3d} clients: {row['per_s']:6.1f} answers/s, p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
                  f"mean batch {row['mean_batch']:.2f}, 503 {row['refused_503']}", flush=True)
    finally:
        proc.terminate()
        proc.wait(60)
    bench = subprocess.run([sys.executable, "-m", "fasterseg.cli", "bench", "--model", "camvid", "--size", "360x480",
                            "--backend", path["backend"], "--precision", path["precision"], "--json"],
                           capture_output=True, text=True, cwd=REPO, env={**os.environ})
    if bench.returncode != 0:
        raise SystemExit(f"fasterseg bench failed: {bench.stderr.strip()[-300:]}")
    result = json.loads(bench.stdout)["results"][0]
    reference = {"end_to_end_ms": result["end_to_end"]["median_ms"], "model_only_ms": result["model_only"]["median_ms"],
                 "per_s": 1000 / result["end_to_end"]["median_ms"]}
    print(f"bench single stream ({path['backend']} {path['precision']}, 360x480): end to end {reference['end_to_end_ms']:.1f} ms "
          f"({reference['per_s']:.1f}/s), model only {reference['model_only_ms']:.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"deploy_path": path, "rows": rows, "bench": reference}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
