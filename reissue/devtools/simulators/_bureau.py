"""The card bureau's simulator: makes (or fails to make) the card of each order and reports
it to the front door."""

from __future__ import annotations

import random
import secrets
import string
import time
from typing import Any

from aiohttp import web

from reissue.devtools.simulators._plumbing import (
    Callbacks,
    Knobs,
    Store,
    keyed_handler,
    request_counts,
    utc_now,
)

__all__ = ["bureau"]


def _bureau_report(report: dict[str, Any], _: dict[str, str]) -> tuple[str, dict[str, str]] | None:
    """The bureau's report of a card made (or not) on the case's event endpoint."""
    return f"/v1/cases/{report['case_id']}/{report['event']}", {
        "Idempotency-Key": f"{report['event']}:{report['order_id']}"
    }


def bureau(app: web.Application, store: Store, knobs: Knobs) -> None:
    """The card bureau: makes the card of each order after `production_delay_ms` (or
    fails to, as the knobs say) and reports it to the front door, retrying until the
    front door takes it; a killed and restarted bureau carries on where it was."""
    store.db.executescript(
        "CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, case_id TEXT,"
        " account_id TEXT, district TEXT, status TEXT, due_at REAL, new_card_number TEXT,"
        " card_id_code TEXT, reason TEXT, updated_at TEXT)"
    )
    keyed = keyed_handler(store)
    request_counts(app, store)
    callbacks = Callbacks(app, store, "card bureau", _bureau_report)
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
                utc_now(),
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
                utc_now(),
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
                    utc_now(),
                    due["order_id"],
                )
                event, report = "production-failed", {"reason": reason, "failed_at": utc_now()}
            else:
                card = "B" + "".join(chance.choices(string.digits + string.ascii_uppercase, k=8))
                code = secrets.token_hex(16).upper()
                store.write(
                    "UPDATE orders SET status = 'produced', new_card_number = ?, card_id_code = ?,"
                    " updated_at = ? WHERE order_id = ?",
                    card,
                    code,
                    utc_now(),
                    due["order_id"],
                )
                event = "card-produced"
                report = {"new_card_number": card, "card_id_code": code, "produced_at": utc_now()}
            callbacks.add(
                due["order_id"], due["case_id"], event, {"order_id": due["order_id"], **report}
            )

    callbacks.duties.append(make_due_cards)

    async def orders(_: web.Request) -> web.Response:
        return web.json_response(store.all("SELECT * FROM orders ORDER BY rowid"))

    app.router.add_post("/v1/orders", keyed(order))
    app.router.add_post("/v1/orders/cancel", keyed(cancel))
    app.router.add_get("/_orders", orders)
