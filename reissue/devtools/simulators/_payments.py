"""The payment platform's simulator: payment orders a payer pays, its signed webhook for each
payment, and refunds."""

from __future__ import annotations

import secrets
import sqlite3
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
from reissue.schemas.hashing import webhook_signature

__all__ = ["payments"]


def payments(app: web.Application, store: Store, knobs: Knobs) -> None:
    """The payment platform: payment orders a payer pays (`POST /_pay`), each payment
    reported to the front door's signed webhook, and refunds."""
    store.db.executescript(
        "CREATE TABLE IF NOT EXISTS refunds (refund_id TEXT PRIMARY KEY, payment_ref TEXT,"
        " amount_fen INTEGER, platform_ref TEXT, refunded_at TEXT);"
        "CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, case_id TEXT,"
        " amount_fen INTEGER, due_at TEXT, status TEXT, platform_ref TEXT, payment_ref TEXT,"
        " paid_at TEXT, updated_at TEXT)"
    )
    keyed = keyed_handler(store)
    request_counts(app, store)
    callbacks = Callbacks(app, store, "payment platform", _signed_webhook)

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
                utc_now(),
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
            utc_now(),
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
            utc_now(),
            utc_now(),
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
            utc_now(),
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
