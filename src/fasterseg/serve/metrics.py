"""Counters and histograms, rendered in Prometheus' text format (``GET /metrics``).

Kept per server (no module-level registry): a test or a second app in one process starts from
zero. Every update happens on the event loop's thread, so no lock is needed.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        self.n += 1
        self.total += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{_number(b)}"}} {c}' for b, c in zip(self.buckets, self.counts)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.n}')
        suffix = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{suffix} {_number(self.total)}", f"{name}_count{suffix} {self.n}"]
        return out


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and math.isfinite(value) else repr(float(value))


@dataclass
class Metrics:
    requests: Counter = field(default_factory=Counter)  # (route, status) -> count
    errors: Counter = field(default_factory=Counter)  # reason -> count
    latency: dict = field(default_factory=dict)  # route -> Histogram (seconds, whole request)
    batch_sizes: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    inference: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))  # one batch, seconds
    queue_depth: int = 0
    in_flight: int = 0

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests[(route, status)] += 1
        self.latency.setdefault(route, Histogram(LATENCY_BUCKETS)).observe(seconds)
        if status >= 400:
            self.errors[_reason(status)] += 1

    def render(self) -> str:
        lines = ["# HELP fasterseg_requests_total Requests answered, by route and HTTP status.",
                 "# TYPE fasterseg_requests_total counter"]
        lines += [f'fasterseg_requests_total{{route="{r}",status="{s}"}} {n}' for (r, s), n in sorted(self.requests.items())]
        lines += ["# HELP fasterseg_errors_total Requests refused or failed, by reason.",
                  "# TYPE fasterseg_errors_total counter"]
        lines += [f'fasterseg_errors_total{{reason="{r}"}} {n}' for r, n in sorted(self.errors.items())]
        lines += ["# HELP fasterseg_request_seconds Time from request to answer, by route.",
                  "# TYPE fasterseg_request_seconds histogram"]
        for route, hist in sorted(self.latency.items()):
            lines += hist.lines("fasterseg_request_seconds", f'route="{route}"')
        lines += ["# HELP fasterseg_batch_size Images per inference batch.", "# TYPE fasterseg_batch_size histogram"]
        lines += self.batch_sizes.lines("fasterseg_batch_size")
        lines += ["# HELP fasterseg_inference_seconds Time of one inference batch.",
                  "# TYPE fasterseg_inference_seconds histogram"]
        lines += self.inference.lines("fasterseg_inference_seconds")
        lines += ["# HELP fasterseg_queue_depth Requests waiting for inference.", "# TYPE fasterseg_queue_depth gauge",
                  f"fasterseg_queue_depth {self.queue_depth}",
                  "# HELP fasterseg_in_flight Requests being answered.", "# TYPE fasterseg_in_flight gauge",
                  f"fasterseg_in_flight {self.in_flight}"]
        return "\n".join(lines) + "\n"


def _reason(status: int) -> str:
    return {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "timeout", 413: "too_large",
            415: "unsupported_type", 422: "unprocessable", 503: "overloaded"}.get(status, f"http_{status}")
