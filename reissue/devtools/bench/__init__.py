"""`reissue bench`: cases/s, latencies and history cost, side by side with bare Temporal.

Starts a stack of its own (dev server on SQLite in WAL mode, PostgreSQL) and
worker processes, drives N happy-path cases with simulated actors that react to
each case as partners would (to the notices it sends and the answers to their
updates), then runs a bare-Temporal reference of the same shape (same activities,
updates, signals and timers; activities do nothing; the same actors) on the same
server with the same worker settings; then times the staff's review at half that
load, directly and through the console over HTTP. Figures come from the clock,
from histories and from /proc (via psutil).
"""

from __future__ import annotations

from reissue.devtools.bench._run import BenchConfig, build_bare_worker, run_bench, to_json

__all__ = ["BenchConfig", "build_bare_worker", "run_bench", "to_json"]
