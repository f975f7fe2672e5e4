"""The notification gateway's simulator: SMS and app messages, delivered once per message ID."""

from __future__ import annotations

import secrets

from aiohttp import web

from reissue.devtools.simulators._plumbing import (
    Store,
    utc_now,
)

__all__ = ["notifications"]


def notifications(app: web.Application, store: Store) -> None:
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
                utc_now(),
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
