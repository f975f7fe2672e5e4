"""What every simulator shares: its knobs, its records in SQLite, keyed (idempotent)
changes, and callbacks to the front door retried until it takes them."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

__all__ = [
    "CallbackRequest",
    "Callbacks",
    "Handler",
    "Knobs",
    "Store",
    "Work",
    "keyed_handler",
    "request_counts",
    "utc_now",
]


@dataclass
class Knobs:
    latency_ms: int = 0
    down: bool = False
    error_rate: float = 0.0
    lost_answer_rate: float = 0.0
    production_delay_ms: int = 1000
    failure_rate: float = 0.0
    fail_next: int = 0
    webhook_delay_ms: int = 0
    seed: int = -1  # >= 0: the faults' chances are drawn from this seed (a test's repeatable run)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A keyed change: (HTTP status, answer) for a request and its JSON body.
Work = Callable[[web.Request, dict[str, Any]], tuple[int, dict[str, Any]]]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Store:
    """The simulator's own records, in a SQLite file (autocommit, one writer)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        self.db.row_factory = sqlite3.Row
        row: sqlite3.Row | None = self.db.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.db.row_factory = sqlite3.Row
        return [dict(r) for r in self.db.execute(sql, args).fetchall()]

    def write(self, sql: str, *args: Any) -> None:
        self.db.execute(sql, args)

    def forget_everything(self) -> None:
        """Empty every table (a fresh system, for tests that share one simulator)."""
        for (table,) in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        ).fetchall():
            self.db.execute(f'DELETE FROM "{table}"')


# How a callback is sent: its path on the front door and its own headers, from the
# report and the simulator's configuration; None: it cannot be sent yet.
CallbackRequest = Callable[[dict[str, Any], dict[str, str]], "tuple[str, dict[str, str]] | None"]


class Callbacks:
    """Calls to the front door the simulator is pointed at (`PUT /_report_to`), one per
    order (`GET /_reports`), each retried with backoff until the front door takes it or
    refuses it for good; a killed and restarted simulator carries on where it was."""

    def __init__(
        self, app: web.Application, store: Store, name: str, request: CallbackRequest
    ) -> None:
        self._store, self._name, self._request = store, name, request
        store.db.executescript(
            "CREATE TABLE IF NOT EXISTS reports (order_id TEXT PRIMARY KEY, case_id TEXT,"
            " event TEXT, body TEXT, attempts INTEGER DEFAULT 0, next_at REAL DEFAULT 0,"
            " answer INTEGER, delivered_at TEXT);"
            "CREATE TABLE IF NOT EXISTS config (name TEXT PRIMARY KEY, value TEXT)"
        )
        self.duties: list[Callable[[], None]] = []  # work the loop also does, every turn
        app.cleanup_ctx.append(self._work)
        app.router.add_put("/_report_to", self._report_to)
        app.router.add_get("/_reports", self._reports)

    def add(
        self, order_id: str, case_id: str, event: str, body: dict[str, Any], *, delay_ms: int = 0
    ) -> None:
        self._store.write(
            "INSERT OR IGNORE INTO reports (order_id, case_id, event, body, next_at)"
            " VALUES (?, ?, ?, ?, ?)",
            order_id,
            case_id,
            event,
            json.dumps(body),
            time.time() + delay_ms / 1000,
        )

    async def _deliver(self, http: ClientSession) -> None:
        config = {r["name"]: r["value"] for r in self._store.all("SELECT * FROM config")}
        if "report_url" not in config or "api_key" not in config:
            return  # nobody to report to yet: the reports wait
        for report in self._store.all(
            "SELECT * FROM reports WHERE delivered_at IS NULL AND next_at <= ? ORDER BY rowid",
            time.time(),
        ):
            request = self._request(report, config)
            if request is None:
                return
            path, headers = request
            try:
                async with http.post(
                    config["report_url"] + path,
                    data=report["body"],
                    headers={
                        "Authorization": f"Bearer {config['api_key']}",
                        "Content-Type": "application/json",
                        **headers,
                    },
                ) as answer:
                    status = answer.status
            except (ClientError, TimeoutError):
                status = 0
            # Taken (2xx) or refused for good (4xx but 401/403/408/409/429): done with it.
            final = 200 <= status < 300 or (
                400 <= status < 500 and status not in (401, 403, 408, 409, 429)
            )
            attempts = report["attempts"] + 1
            self._store.write(
                "UPDATE reports SET attempts = ?, answer = ?, next_at = ?, delivered_at = ?"
                " WHERE order_id = ?",
                attempts,
                status,
                time.time() + min(2.0**attempts, 30.0),
                utc_now() if final else None,
                report["order_id"],
            )

    async def _work(self, _: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            async with ClientSession(timeout=ClientTimeout(total=10)) as http:
                while True:
                    try:
                        for duty in self.duties:
                            duty()
                        await self._deliver(http)
                    except Exception as e:  # keep going whatever one call does
                        print(
                            json.dumps({"simulator": self._name, "error": repr(e)}),
                            file=sys.stderr,
                            flush=True,
                        )
                    await asyncio.sleep(0.1)

        task = asyncio.create_task(loop())
        yield
        task.cancel()

    async def _report_to(self, request: web.Request) -> web.Response:
        body = await request.json()
        for name in ("report_url", "api_key"):
            if not isinstance(body.get(name), str):
                return web.json_response({"error": f"{name}: required"}, status=400)
        for name, value in body.items():
            if name not in ("report_url", "api_key", "webhook_secret") or not isinstance(
                value, str
            ):
                return web.json_response({"error": f"{name}: not a setting"}, status=400)
            self._store.write("INSERT OR REPLACE INTO config VALUES (?, ?)", name, value)
        return web.json_response({"report_url": body["report_url"]})

    async def _reports(self, _: web.Request) -> web.Response:
        return web.json_response(self._store.all("SELECT * FROM reports ORDER BY rowid"))


def keyed_handler(store: Store) -> Callable[[Work], Handler]:
    """A handler of keyed changes (`Idempotency-Key`): a repeated key gets the first
    answer; a key used for another request is refused."""
    store.db.executescript(
        "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, asked TEXT, status INTEGER,"
        " body TEXT, times INTEGER DEFAULT 0)"
    )

    def keyed(work: Work) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            key = request.headers.get("Idempotency-Key")
            if not key:
                return web.json_response({"error": "Idempotency-Key is required"}, status=400)
            # How often each key was asked (`GET /_requests`): what a test counts.
            store.write("UPDATE answers SET times = times + 1 WHERE key = ?", key)
            body = await request.json() if request.can_read_body else {}
            # No await from here on: one request at a time does the check and the work.
            asked = f"{request.method} {request.path} {json.dumps(body, sort_keys=True)}"
            seen = store.one("SELECT asked, status, body FROM answers WHERE key = ?", key)
            if seen is not None:
                if seen["asked"] != asked:
                    return web.json_response(
                        {"error": "Idempotency-Key: already used for another request"}, status=422
                    )
                return web.json_response(json.loads(seen["body"]), status=seen["status"])
            status, answer = work(request, body)
            if status < 500:
                store.write(
                    "INSERT INTO answers VALUES (?, ?, ?, ?, 1)",
                    key,
                    asked,
                    status,
                    json.dumps(answer),
                )
            return web.json_response(answer, status=status)

        return handle

    return keyed


def request_counts(app: web.Application, store: Store) -> None:
    """`GET /_requests`: how often each idempotency key was asked."""

    async def requests(_: web.Request) -> web.Response:
        return web.json_response(
            {r["key"]: r["times"] for r in store.all("SELECT key, times FROM answers")}
        )

    app.router.add_get("/_requests", requests)
