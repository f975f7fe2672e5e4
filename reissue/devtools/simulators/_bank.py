"""The cooperating bank's simulator: the financial accounts of third-generation cards."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from reissue.devtools.simulators._plumbing import (
    Handler,
    Store,
    keyed_handler,
    request_counts,
    utc_now,
)

__all__ = ["bank"]


def bank(app: web.Application, store: Store) -> None:
    """The cooperating bank: the financial accounts of third-generation cards.

    Every change is keyed (`Idempotency-Key`): a repeated key gets the first answer."""
    store.db.executescript(
        "CREATE TABLE IF NOT EXISTS accounts (card_number TEXT PRIMARY KEY, account_ref TEXT,"
        " status TEXT, updated_at TEXT);"
    )
    keyed = keyed_handler(store)
    request_counts(app, store)

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
                    utc_now(),
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
        store.write("INSERT INTO accounts VALUES (?, ?, 'active', ?)", card, ref, utc_now())
        return 200, {"card_number": card, "account_ref": ref, "mode": mode}

    async def enrol(request: web.Request) -> web.Response:
        """The bank's own enrolment of a card (seed data: not part of its API to us)."""
        card = request.match_info["card"]
        if account(card) is None:
            store.write(
                "INSERT INTO accounts VALUES (?, ?, 'active', ?)",
                card,
                "BA-" + secrets.token_hex(6),
                utc_now(),
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
