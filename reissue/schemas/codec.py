"""Payload encryption: AES-256-GCM with a key ID in each payload, so keys can rotate.

New payloads are sealed with the current key; payloads sealed with a retired
key still open as long as that key stays in the key ring. Keys come from
configuration (see `workers.settings`), never from code.

A payload that arrives unencrypted is passed on marked (`PLAINTEXT_MARK` in its
metadata, `mark_plaintext`, what workers use). A case started under today's
rules refuses a marked payload with a `PlaintextPayload` error (see
`schemas.converter`); a case started before payloads were encrypted replays its
plaintext history unchanged.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

__all__ = ["ENCODING", "PLAINTEXT_MARK", "EncryptionCodec", "KeyRing", "KeyRingError"]

ENCODING = b"binary/encrypted"
PLAINTEXT_MARK = "reissue-plaintext"
KEY_ID = "encryption-key-id"
_NONCE_BYTES = 12
_KEY_BYTES = 32


class KeyRingError(ValueError):
    """Keys missing, malformed, or a payload sealed with a key not in the ring."""


@dataclass(frozen=True)
class KeyRing:
    """Named AES-256 keys; `current` seals new payloads, every key opens old ones."""

    current: str
    keys: Mapping[str, bytes]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise KeyRingError(f"current key {self.current!r} is not in the key ring")
        for key_id, key in self.keys.items():
            if len(key) != _KEY_BYTES:
                raise KeyRingError(f"key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """From `id:base64key,id:base64key`; the first one is current."""
        keys: dict[str, bytes] = {}
        for item in (part.strip() for part in spec.split(",") if part.strip()):
            key_id, sep, encoded = item.partition(":")
            if not sep or not key_id:
                raise KeyRingError("codec keys must look like 'k2:<base64>,k1:<base64>'")
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except ValueError as e:
                raise KeyRingError(f"key {key_id!r} is not valid base64") from e
        if not keys:
            raise KeyRingError("no codec key given")
        return cls(current=next(iter(keys)), keys=keys)

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """From a JSON file `{"current": "k2", "keys": {"k1": "<base64>", "k2": "<base64>"}}`."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keys = {k: base64.b64decode(v, validate=True) for k, v in data["keys"].items()}
            return cls(current=data["current"], keys=keys)
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise KeyRingError(f"cannot read codec key file {path}: {e}") from e

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        return cls(current=key_id, keys={key_id: secrets.token_bytes(_KEY_BYTES)})

    def rotated(self, key_id: str) -> KeyRing:
        """A ring with a new current key; every old key stays to open old payloads."""
        if key_id in self.keys:
            raise KeyRingError(f"key {key_id!r} already exists")
        return KeyRing(current=key_id, keys={**self.keys, key_id: secrets.token_bytes(_KEY_BYTES)})

    def save(self, path: Path) -> None:
        """Write the ring as a key file readable only by its owner."""
        data = {
            "current": self.current,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)


class EncryptionCodec(PayloadCodec):
    """Seals every payload with AES-256-GCM; the key ID travels in the metadata."""

    def __init__(self, ring: KeyRing, *, mark_plaintext: bool = False) -> None:
        self._ring = ring
        self._ciphers = {k: AESGCM(v) for k, v in ring.keys.items()}
        self._mark_plaintext = mark_plaintext

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self._ring.current
        cipher = self._ciphers[key_id]
        out = []
        for p in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = cipher.encrypt(nonce, p.SerializeToString(), key_id.encode())
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID: key_id.encode()},
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                if self._mark_plaintext:  # never encrypted: the case decides (see above)
                    marked = Payload()
                    marked.CopyFrom(p)
                    marked.metadata[PLAINTEXT_MARK] = b"1"
                    p = marked
                out.append(p)
                continue
            key_id = p.metadata.get(KEY_ID, b"").decode()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise KeyRingError(
                    f"payload was encrypted with key {key_id!r}, which is not in the key "
                    f"ring ({', '.join(sorted(self._ciphers))}); add it to the codec keys"
                )
            try:
                plain = cipher.decrypt(
                    p.data[:_NONCE_BYTES], p.data[_NONCE_BYTES:], key_id.encode()
                )
            except InvalidTag as e:
                raise KeyRingError(
                    f"payload under key {key_id!r} failed authentication (wrong key or tampered)"
                ) from e
            decoded = Payload()
            decoded.ParseFromString(plain)
            out.append(decoded)
        return out
