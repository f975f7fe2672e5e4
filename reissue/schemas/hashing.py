"""Keyed hashes that stand in for personal data in IDs, search attributes and lookups."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["case_workflow_id", "person_key", "webhook_signature"]


def _digest(secret: str, purpose: str, value: str) -> str:
    # The purpose prefix keeps a card's hash from ever equalling a person's.
    return hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def case_workflow_id(card_number: str, *, secret: str) -> str:
    """Workflow ID of the case for a card: the same card always maps to the same ID."""
    return "reissue-" + _digest(secret, "card", card_number.strip().upper())[:16]


def person_key(resident_id: str, *, secret: str) -> str:
    """Lookup key for a person in the registry, in place of the resident ID number."""
    return _digest(secret, "person", resident_id.strip().upper())


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", as the payment platform signs its webhooks
    (`X-Reissue-Signature`)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()
