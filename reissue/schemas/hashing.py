"""Keyed hashes that stand in for personal data in IDs, search attributes and lookups,
and the seal on the one contact the registry keeps (the owner's mobile number)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "case_workflow_id",
    "one_time_code_hash",
    "open_mobile",
    "person_key",
    "seal_mobile",
    "webhook_signature",
]


def _digest(secret: str, purpose: str, value: str) -> str:
    # The purpose prefix keeps a card's hash from ever equalling a person's.
    return hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def case_workflow_id(card_number: str, *, secret: str) -> str:
    """Workflow ID of the case for a card: the same card always maps to the same ID."""
    return "reissue-" + _digest(secret, "card", card_number.strip().upper())[:16]


def person_key(resident_id: str, *, secret: str) -> str:
    """Lookup key for a person in the registry, in place of the resident ID number."""
    return _digest(secret, "person", resident_id.strip().upper())


def one_time_code_hash(case_id: str, code: str, *, secret: str) -> str:
    """What is stored of a one-time code: its keyed hash, bound to the case it was sent
    for (the same digits for another case never match)."""
    return _digest(secret, "card-found-code", f"{case_id}:{code}")


_SEAL = "s1:"


def _mobile_cipher(secret: str) -> AESGCM:
    # A key of its own, derived from the secret (never the HMAC key itself).
    return AESGCM(hmac.new(secret.encode(), b"seal:registry-mobile", hashlib.sha256).digest())


def seal_mobile(mobile: str, *, account_id: str, secret: str) -> str:
    """The owner's mobile number as the registry stores it: AES-256-GCM, bound to the
    account (a sealed number copied to another account does not open)."""
    nonce = os.urandom(12)
    sealed = _mobile_cipher(secret).encrypt(nonce, mobile.encode(), account_id.encode())
    return _SEAL + base64.b64encode(nonce + sealed).decode()


def open_mobile(sealed: str, *, account_id: str, secret: str) -> str:
    """The mobile number a seal holds; ValueError if it is not one of this account's."""
    try:
        raw = base64.b64decode(sealed.removeprefix(_SEAL), validate=True)
        if not sealed.startswith(_SEAL) or len(raw) < 12:
            raise ValueError
        return _mobile_cipher(secret).decrypt(raw[:12], raw[12:], account_id.encode()).decode()
    except (ValueError, binascii.Error, InvalidTag):
        raise ValueError("the sealed mobile number does not open for this account") from None


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "<timestamp>.<body>", as the payment platform signs its webhooks
    (`X-Reissue-Signature`)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()
