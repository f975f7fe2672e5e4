"""Simulators of the partner systems, each a small HTTP service run as its own process
(`reissue simulator <system>`), started by `reissue dev` and by the tests.

Each keeps its own state in a SQLite file (so a killed and restarted simulator
remembers what it did, as the real system would) and has knobs, set at start or
at run time through `PUT /_knobs` (`POST /_reset` forgets every record and resets
the knobs):

- `latency_ms`: every call waits this long first;
- `down`: every call fails with 503 (the system is unavailable);
- `error_rate`: this share of calls fails with 503 before doing anything;
- `lost_answer_rate`: this share of calls does its work, then answers 504 (the
  caller cannot tell it from a failure: it must retry with the same key).

The card bureau has three more: `production_delay_ms` (how long it takes to make
a card before it reports: the delayed callback), `failure_rate` (this share of
orders fails production) and `fail_next` (the next this many orders fail). The
payment platform has `webhook_delay_ms` (how long after a payment its webhook
first goes out: the delayed callback).

Systems: `notifications` (the SMS/app-message gateway: `POST /v1/messages`,
deduplicated by message ID; `GET /_inbox` is what recipients saw), `payments`
(the payment platform: orders `POST /v1/orders` keyed by order ID,
`GET /v1/orders/{id}`, `POST /v1/orders/close`; refunds `POST /v1/refunds` keyed by
refund ID, `GET /v1/refunds/{id}`; a payer pays an open order with `POST /_pay`, and
the platform calls the front door's signed webhook for it), `bank` (card accounts:
freeze, unfreeze, open, close) and `bureau` (the card bureau: `POST /v1/orders`,
`POST /v1/orders/cancel`; it reports each card made, or a failure). The bureau and
the payment platform call back to the front door they are pointed at with
`PUT /_report_to`, retrying with backoff until it takes the call (`GET /_reports`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import socket
import sqlite3
import string
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from reissue.schemas.hashing import webhook_signature

__all__ = [
    "PARTNERS",
    "SYSTEMS",
    "Knobs",
    "build_simulator",
    "free_port",
    "partner_simulators",
    "serve_simulator",
    "spawn",
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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A keyed change: (HTTP status, answer) for a request and its JSON body.
Work = Callable[[web.Request, dict[str, Any]], tuple[int, dict[str, Any]]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Store:
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


def _notifications(app: web.Application, store: _Store) -> None:
    store.db.executescript(
        "CREATE TABLE IF NOT EXISTS messages (message_id TEXT PRIMARY KEY, recipient TEXT,"
        " text TEXT, receipt TEXT, received_at TEXT)"
    )

    async def send(request: web.Request) -> web.Response:
        body = await request.json()
        message_id, recipient, text = body["message_id"], body["to"], body["text"]
        if request.headers.get("Idempotency-Key") != message_id:
            return web.json_response(
                {"error": "Idempotency-Key must be the message ID"}, status=400
            )
        seen = store.one("SELECT receipt FROM messages WHERE message_id = ?", message_id)
        if seen is None:  # delivered once per message ID, however often it is sent
            receipt = "RCPT-" + secrets.token_hex(8)
            store.write(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?)",
                message_id,
                recipient,
                text,
                receipt,
                _now(),
            )
        else:
            receipt = seen["receipt"]
        return web.json_response({"message_id": message_id, "receipt": receipt})

    async def inbox(request: web.Request) -> web.Response:
        to = request.query.get("to")
        rows = store.all(
            "SELECT * FROM messages WHERE (? IS NULL OR recipient = ?) ORDER BY received_at",
            to,
            to,
        )
        return web.json_response(rows)

    app.router.add_post("/v1/messages", send)
    app.router.add_get("/_inbox", inbox)


def _payments(app: web.Application, store: _Store, knobs: Knobs) -> None:
    """The payment platform: payment orders a payer pays (`POST /_pay`), each payment
    reported to the front door's signed webhook, and refunds."""
    store.db.executescript(
        "CREATE TABLE IF NOT EXISTS refunds (refund_id TEXT PRIMARY KEY, payment_ref TEXT,"
        " amount_fen INTEGER, platform_ref TEXT, refunded_at TEXT);"
        "CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, case_id TEXT,"
        " amount_fen INTEGER, due_at TEXT, status TEXT, platform_ref TEXT, payment_ref TEXT,"
        " paid_at TEXT, updated_at TEXT)"
    )
    keyed = _keyed(store)
    _requests(app, store)
    callbacks = _Callbacks(app, store, "payment platform", _signed_webhook)

    def shown(row: sqlite3.Row) -> dict[str, Any]:
        return dict(row)

    def the_order(order_id: Any) -> dict[str, Any] | None:
        row = store.one("SELECT * FROM orders WHERE order_id = ?", order_id)
        if row is None:
            return None
        order = {k: row[k] for k in ("order_id", "status", "amount_fen", "platform_ref")}
        order["payment"] = (
            None
            if row["payment_ref"] is None
            else {
                "order_id": row["order_id"],
                "amount_fen": row["amount_fen"],
                "payment_ref": row["payment_ref"],
                "paid_at": row["paid_at"],
            }
        )
        return order

    def open_order(_: web.Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        order_id, amount = body.get("order_id"), body.get("amount_fen")
        if not isinstance(order_id, str) or not body.get("case_id"):
            return 422, {"error": "order_id and case_id are required"}
        if not isinstance(amount, int) or amount <= 0:
            return 422, {"error": "amount_fen: a positive number of fen"}
        seen = store.one("SELECT case_id, amount_fen FROM orders WHERE order_id = ?", order_id)
        if seen is not None and (seen["case_id"], seen["amount_fen"]) != (body["case_id"], amount):
            return 422, {"error": "order_id: already used for another order"}
        if seen is None:
            store.write(
                "INSERT INTO orders (order_id, case_id, amount_fen, due_at, status, platform_ref,"
                " updated_at) VALUES (?, ?, ?, ?, 'open', ?, ?)",
                order_id,
                body["case_id"],
                amount,
                body.get("due_at"),
                "PO-" + secrets.token_hex(8),
                _now(),
            )
        order = the_order(order_id)
        assert order is not None
        return 200, order

    def close_order(_: web.Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Close an order so it can no longer be paid; a paid order stays paid, and the
        answer carries its payment (whose webhook may still be on its way)."""
        order_id = body.get("order_id")
        if the_order(order_id) is None:
            return 404, {"error": "no such order"}
        store.write(
            "UPDATE orders SET status = 'closed', updated_at = ? WHERE order_id = ?"
            " AND status = 'open'",
            _now(),
            order_id,
        )
        order = the_order(order_id)
        assert order is not None
        return 200, order

    async def get_order(request: web.Request) -> web.Response:
        order = the_order(request.match_info["id"])
        if order is None:
            return web.json_response({"error": "no such order"}, status=404)
        return web.json_response(order)

    async def pay(request: web.Request) -> web.Response:
        """A payer pays an open order in full (the payer's side: not part of the API to us)."""
        order_id = (await request.json()).get("order_id")
        order = the_order(order_id)
        if order is None:
            return web.json_response({"error": "no such order"}, status=404)
        if order["status"] != "open":
            return web.json_response({"error": f"the order is {order['status']}"}, status=409)
        payment_ref = "PAY" + secrets.token_hex(8).upper()
        store.write(
            "UPDATE orders SET status = 'paid', payment_ref = ?, paid_at = ?, updated_at = ?"
            " WHERE order_id = ?",
            payment_ref,
            _now(),
            _now(),
            order_id,
        )
        paid = the_order(order_id)
        assert paid is not None
        row = store.one("SELECT case_id FROM orders WHERE order_id = ?", order_id)
        assert row is not None
        callbacks.add(
            order_id,
            row["case_id"],
            "payment",
            {"case_id": row["case_id"], "payment": paid["payment"]},
            delay_ms=knobs.webhook_delay_ms,
        )
        return web.json_response(paid)

    async def refund(request: web.Request) -> web.Response:
        body = await request.json()
        refund_id = body["refund_id"]
        if request.headers.get("Idempotency-Key") != refund_id:
            return web.json_response({"error": "Idempotency-Key must be the refund ID"}, status=400)
        seen = store.one("SELECT * FROM refunds WHERE refund_id = ?", refund_id)
        if seen is not None:
            if (seen["payment_ref"], seen["amount_fen"]) != (
                body["payment_ref"],
                body["amount_fen"],
            ):
                return web.json_response(
                    {"error": "refund_id: already used for another refund"}, status=422
                )
            return web.json_response(shown(seen))
        store.write(
            "INSERT INTO refunds VALUES (?, ?, ?, ?, ?)",
            refund_id,
            body["payment_ref"],
            int(body["amount_fen"]),
            "PP-" + secrets.token_hex(8),
            _now(),
        )
        row = store.one("SELECT * FROM refunds WHERE refund_id = ?", refund_id)
        assert row is not None
        return web.json_response(shown(row))

    async def get_refund(request: web.Request) -> web.Response:
        row = store.one("SELECT * FROM refunds WHERE refund_id = ?", request.match_info["id"])
        if row is None:
            return web.json_response({"error": "no such refund"}, status=404)
        return web.json_response(shown(row))

    async def all_refunds(_: web.Request) -> web.Response:
        return web.json_response(store.all("SELECT * FROM refunds ORDER BY refunded_at"))

    async def all_orders(_: web.Request) -> web.Response:
        return web.json_response(store.all("SELECT * FROM orders ORDER BY rowid"))

    app.router.add_post("/v1/orders", keyed(open_order))
    app.router.add_get("/v1/orders/{id}", get_order)
    app.router.add_post("/v1/orders/close", keyed(close_order))
    app.router.add_post("/v1/refunds", refund)
    app.router.add_get("/v1/refunds/{id}", get_refund)
    app.router.add_post("/_pay", pay)
    app.router.add_get("/_orders", all_orders)
    app.router.add_get("/_refunds", all_refunds)


def _signed_webhook(
    report: dict[str, Any], config: dict[str, str]
) -> tuple[str, dict[str, str]] | None:
    """The payment platform's webhook: signed over "<timestamp>.<body>" with the secret
    it shares with the front door (`X-Reissue-Signature`), freshly at every attempt."""
    secret = config.get("webhook_secret")
    if not secret:
        return None  # not set up to sign yet: the webhook waits
    stamp = str(int(time.time()))
    return "/v1/payments", {
        "X-Reissue-Timestamp": stamp,
        "X-Reissue-Signature": webhook_signature(secret, stamp, report["body"].encode()),
    }


def _bureau_report(report: dict[str, Any], _: dict[str, str]) -> tuple[str, dict[str, str]] | None:
    """The bureau's report of a card made (or not) on the case's event endpoint."""
    return f"/v1/cases/{report['case_id']}/{report['event']}", {
        "Idempotency-Key": f"{report['event']}:{report['order_id']}"
    }


# How a callback is sent: its path on the front door and its own headers, from the
# report and the simulator's configuration; None: it cannot be sent yet.
CallbackRequest = Callable[[dict[str, Any], dict[str, str]], "tuple[str, dict[str, str]] | None"]


class _Callbacks:
    """Calls to the front door the simulator is pointed at (`PUT /_report_to`), one per
    order (`GET /_reports`), each retried with backoff until the front door takes it or
    refuses it for good; a killed and restarted simulator carries on where it was."""

    def __init__(
        self, app: web.Application, store: _Store, name: str, request: CallbackRequest
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
                _now() if final else None,
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


def _keyed(store: _Store) -> Callable[[Work], Handler]:
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


def _requests(app: web.Application, store: _Store) -> None:
    """`GET /_requests`: how often each idempotency key was asked."""

    async def requests(_: web.Request) -> web.Response:
        return web.json_response(
            {r["key"]: r["times"] for r in store.all("SELECT key, times FROM answers")}
        )

    app.router.add_get("/_requests", requests)


def _bank(app: web.Application, store: _Store) -> None:
    """The cooperating bank: the financial accounts of third-generation cards.

    Every change is keyed (`Idempotency-Key`): a repeated key gets the first answer."""
    store.db.executescript(
        "CREATE TABLE IF NOT EXISTS accounts (card_number TEXT PRIMARY KEY, account_ref TEXT,"
        " status TEXT, updated_at TEXT);"
    )
    keyed = _keyed(store)
    _requests(app, store)

    def account(card: str) -> dict[str, Any] | None:
        row = store.one("SELECT * FROM accounts WHERE card_number = ?", card)
        return dict(row) if row is not None else None

    def set_status(to: str, allowed_from: tuple[str, ...]) -> Handler:
        def work(_: web.Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            card = body["card_number"]
            found = account(card)
            if found is None:
                return 404, {"error": "no account for this card"}
            changed = found["status"] in allowed_from
            if changed:
                store.write(
                    "UPDATE accounts SET status = ?, updated_at = ? WHERE card_number = ?",
                    to,
                    _now(),
                    card,
                )
            now = account(card)
            assert now is not None
            return 200, {"card_number": card, "status": now["status"], "changed": changed}

        return keyed(work)

    def open_account(_: web.Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        card, previous = body["card_number"], body.get("previous_card_number")
        existing = account(card)
        if existing is not None:
            return 200, {
                "card_number": card,
                "account_ref": existing["account_ref"],
                "mode": "exists",
            }
        old = account(previous) if previous else None
        # The bank moves the old card's account to the new card when it still can;
        # otherwise it opens a new account on the same medical insurance account.
        mode = "migrated" if old is not None and old["status"] != "closed" else "opened"
        ref = old["account_ref"] if mode == "migrated" and old else "BA-" + secrets.token_hex(6)
        store.write("INSERT INTO accounts VALUES (?, ?, 'active', ?)", card, ref, _now())
        return 200, {"card_number": card, "account_ref": ref, "mode": mode}

    async def enrol(request: web.Request) -> web.Response:
        """The bank's own enrolment of a card (seed data: not part of its API to us)."""
        card = request.match_info["card"]
        if account(card) is None:
            store.write(
                "INSERT INTO accounts VALUES (?, ?, 'active', ?)",
                card,
                "BA-" + secrets.token_hex(6),
                _now(),
            )
        return web.json_response(account(card))

    async def read(request: web.Request) -> web.Response:
        """What the bank has for a card (for tests and operators looking at the simulator)."""
        found = account(request.match_info["card"])
        if found is None:
            return web.json_response({"error": "no account for this card"}, status=404)
        return web.json_response(found)

    # Card numbers travel in bodies, never in URLs (URLs end up in logs).
    app.router.add_put("/_accounts/{card}", enrol)
    app.router.add_get("/_accounts/{card}", read)
    app.router.add_post("/v1/accounts", keyed(open_account))
    app.router.add_post("/v1/accounts/freeze", set_status("frozen", ("active",)))
    app.router.add_post("/v1/accounts/unfreeze", set_status("active", ("frozen",)))
    app.router.add_post("/v1/accounts/close", set_status("closed", ("active", "frozen")))


def _bureau(app: web.Application, store: _Store, knobs: Knobs) -> None:
    """The card bureau: makes the card of each order after `production_delay_ms` (or
    fails to, as the knobs say) and reports it to the front door, retrying until the
    front door takes it; a killed and restarted bureau carries on where it was."""
    store.db.executescript(
        "CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, case_id TEXT,"
        " account_id TEXT, district TEXT, status TEXT, due_at REAL, new_card_number TEXT,"
        " card_id_code TEXT, reason TEXT, updated_at TEXT)"
    )
    keyed = _keyed(store)
    _requests(app, store)
    callbacks = _Callbacks(app, store, "card bureau", _bureau_report)
    chance = random.Random()

    def order(_: web.Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        order_id = body.get("order_id")
        if not isinstance(order_id, str) or not body.get("case_id"):
            return 422, {"error": "order_id and case_id are required"}
        if store.one("SELECT 1 FROM orders WHERE order_id = ?", order_id) is None:
            store.write(
                "INSERT INTO orders (order_id, case_id, account_id, district, status, due_at,"
                " updated_at) VALUES (?, ?, ?, ?, 'ordered', ?, ?)",
                order_id,
                body["case_id"],
                body.get("account_id"),
                body.get("district"),
                time.time() + knobs.production_delay_ms / 1000,
                _now(),
            )
        return 200, {"order_id": order_id, "status": "accepted"}

    def cancel(_: web.Request, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        order_id = body.get("order_id")
        found = store.one("SELECT status FROM orders WHERE order_id = ?", order_id)
        if found is None:
            return 404, {"error": "no such order"}
        if found["status"] == "ordered":
            store.write(
                "UPDATE orders SET status = 'cancelled', updated_at = ? WHERE order_id = ?",
                _now(),
                order_id,
            )
        now = store.one("SELECT status FROM orders WHERE order_id = ?", order_id)
        assert now is not None
        return 200, {"order_id": order_id, "status": now["status"]}

    def make_due_cards() -> None:
        for due in store.all(
            "SELECT * FROM orders WHERE status = 'ordered' AND due_at <= ? ORDER BY due_at",
            time.time(),
        ):
            failed = knobs.fail_next > 0 or chance.random() < knobs.failure_rate
            knobs.fail_next = max(0, knobs.fail_next - 1)
            if failed:
                reason = "chip personalisation failed (芯片个人化失败)"
                store.write(
                    "UPDATE orders SET status = 'failed', reason = ?, updated_at = ?"
                    " WHERE order_id = ?",
                    reason,
                    _now(),
                    due["order_id"],
                )
                event, report = "production-failed", {"reason": reason, "failed_at": _now()}
            else:
                card = "B" + "".join(chance.choices(string.digits + string.ascii_uppercase, k=8))
                code = secrets.token_hex(16).upper()
                store.write(
                    "UPDATE orders SET status = 'produced', new_card_number = ?, card_id_code = ?,"
                    " updated_at = ? WHERE order_id = ?",
                    card,
                    code,
                    _now(),
                    due["order_id"],
                )
                event = "card-produced"
                report = {"new_card_number": card, "card_id_code": code, "produced_at": _now()}
            callbacks.add(
                due["order_id"], due["case_id"], event, {"order_id": due["order_id"], **report}
            )

    callbacks.duties.append(make_due_cards)

    async def orders(_: web.Request) -> web.Response:
        return web.json_response(store.all("SELECT * FROM orders ORDER BY rowid"))

    app.router.add_post("/v1/orders", keyed(order))
    app.router.add_post("/v1/orders/cancel", keyed(cancel))
    app.router.add_get("/_orders", orders)


def _without_knobs(
    system: Callable[[web.Application, _Store], None],
) -> Callable[[web.Application, _Store, Knobs], None]:
    return lambda app, store, _: system(app, store)


SYSTEMS: dict[str, Callable[[web.Application, _Store, Knobs], None]] = {
    "notifications": _without_knobs(_notifications),
    "payments": _payments,
    "bank": _without_knobs(_bank),
    "bureau": _bureau,
}


def build_simulator(system: str, state: Path, knobs: Knobs | None = None) -> web.Application:
    """The simulator of `system`, keeping its records in `state`."""
    if system not in SYSTEMS:
        raise ValueError(f"system: one of {', '.join(SYSTEMS)}")
    knobs = knobs or Knobs()
    store = _Store(state)
    chance = random.Random()

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_"):
            return await handler(request)
        if knobs.latency_ms:
            await asyncio.sleep(knobs.latency_ms / 1000)
        if knobs.down or chance.random() < knobs.error_rate:
            return web.json_response({"error": "unavailable"}, status=503)
        response = await handler(request)
        if response.status < 300 and chance.random() < knobs.lost_answer_rate:
            return web.json_response({"error": "gateway timeout"}, status=504)  # done, unanswered
        return response

    async def get_knobs(_: web.Request) -> web.Response:
        return web.json_response(asdict(knobs))

    async def put_knobs(request: web.Request) -> web.Response:
        for name, value in (await request.json()).items():
            if name not in asdict(knobs):
                return web.json_response({"error": f"{name}: no such knob"}, status=400)
            setattr(knobs, name, type(getattr(knobs, name))(value))
        return web.json_response(asdict(knobs))

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"system": system})

    async def reset(_: web.Request) -> web.Response:
        store.forget_everything()
        for name, value in asdict(Knobs()).items():
            setattr(knobs, name, value)
        return web.json_response(asdict(knobs))

    app = web.Application(middlewares=[faults])
    app.router.add_get("/_health", health)
    app.router.add_get("/_knobs", get_knobs)
    app.router.add_put("/_knobs", put_knobs)
    app.router.add_post("/_reset", reset)
    SYSTEMS[system](app, store, knobs)
    return app


async def serve_simulator(
    system: str, state: Path, *, host: str, port: int, knobs: Knobs | None = None
) -> None:
    """Serve until cancelled (or the process is stopped)."""
    runner = web.AppRunner(build_simulator(system, state, knobs), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(json.dumps({"system": system, "port": port}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def spawn(
    system: str, *, port: int, state: Path, **knobs: float | int | bool
) -> asyncio.subprocess.Process:
    """Start `reissue simulator <system>` as a process of its own; returns once it listens."""
    flags = [
        f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')}={v}"
        for k, v in knobs.items()
        if v is not False
    ]
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "reissue"),
        "simulator",
        system,
        "--port",
        str(port),
        "--state",
        str(state),
        *flags,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    if not line:
        raise RuntimeError(f"the {system} simulator did not start (exit {await proc.wait()})")
    return proc


# The partner systems a case worker calls (the notification gateway is the dispatcher's).
PARTNERS = ("bank", "payments", "bureau")


@asynccontextmanager
async def partner_simulators(
    folder: Path,
    *,
    systems: Sequence[str] = PARTNERS,
    port_base: int | None = None,
    knobs: Mapping[str, Mapping[str, float | int | bool]] | None = None,
) -> AsyncIterator[dict[str, str]]:
    """Run a simulator of each system (ports from `port_base` up, or free ones), their
    records under `folder`; yields each system's URL, stops them all on exit."""
    procs: list[asyncio.subprocess.Process] = []
    urls: dict[str, str] = {}
    try:
        for offset, system in enumerate(systems):
            port = port_base + offset if port_base is not None else free_port()
            procs.append(
                await spawn(
                    system,
                    port=port,
                    state=folder / f"simulator-{system}.sqlite",
                    **(knobs or {}).get(system, {}),
                )
            )
            urls[system] = f"http://127.0.0.1:{port}"
        yield urls
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()


def free_port() -> int:
    """A port nothing listens on now (on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
