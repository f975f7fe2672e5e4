"""Made-up people, cards and materials: demo data, soak, benchmark and tests share this."""

from __future__ import annotations

import hashlib
import random
from datetime import date, timedelta
from typing import Any

import httpx

from reissue.activities.db import Connection
from reissue.schemas.enums import DocumentType, InsuredCategory, ProductionMode
from reissue.schemas.events import MaterialRef, MaterialsSubmission
from reissue.schemas.hashing import person_key, seal_mobile
from reissue.schemas.identifiers import normalise_mobile, resident_id_check_char
from reissue.schemas.policy import CasePolicy

__all__ = [
    "enrol_person",
    "new_card_number",
    "scanned",
    "standard_submission",
    "synthetic_resident_id",
]


async def new_card_number(conn: Connection) -> str:
    return str(await conn.fetchval("SELECT next_card_number()"))


async def enrol_person(
    conn: Connection,
    *,
    secret: str,
    resident_id: str,
    insured_category: str,
    district: str,
    balance_fen: int,
    bank: str | None = "Chongqing Rural Commercial Bank",
    bank_url: str | None = None,
    card_number: str | None = None,
    mobile: str | None = None,
) -> str:
    """An account with one active card. With `bank` and `bank_url` (a simulator) it is a
    third-generation card: the bank enrols its account as it did when it issued the
    card. Without a bank to enrol it at, the card has no bank account. `mobile`: the
    owner's mobile number on record (sealed; one-time codes go to it), if any."""
    number = normalise_mobile(mobile) if mobile is not None else None
    async with conn.transaction():
        card = card_number or await new_card_number(conn)
        account_id = "AC" + card
        await conn.execute(
            "INSERT INTO insured_accounts (account_id, person_key, insured_category, district,"
            " balance_fen, mobile_sealed) VALUES ($1, $2, $3, $4, $5, $6)",
            account_id,
            person_key(resident_id, secret=secret),
            insured_category,
            district,
            balance_fen,
            None if number is None else seal_mobile(number, account_id=account_id, secret=secret),
        )
        await conn.execute(
            "INSERT INTO cards (card_number, account_id, status, bank)"
            " VALUES ($1, $2, 'active', $3)",
            card,
            account_id,
            bank if bank_url else None,
        )
        if bank and bank_url:
            async with httpx.AsyncClient(base_url=bank_url, timeout=10) as http:
                (await http.put(f"/_accounts/{card}")).raise_for_status()
    return card


def synthetic_resident_id(rng: random.Random, *, address: str = "500103") -> str:
    """A valid, made-up resident ID number (random birth date and sequence) for demo and test data."""
    born = date(1945, 1, 1) + timedelta(days=rng.randrange(365 * 60))
    body = f"{address}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return body + resident_id_check_char(body)


def scanned(doc_type: DocumentType, doc_id: str, **extra: Any) -> MaterialRef:
    """A reference to a scanned document as the counter system would send it."""
    fields: dict[str, Any] = {
        "doc_id": doc_id,
        "type": doc_type,
        "sha256": hashlib.sha256(doc_id.encode()).hexdigest(),
    }
    if doc_type is DocumentType.PHOTO:
        fields |= {"photo_width_px": 295, "photo_height_px": 413}  # one inch at 300 dpi
    return MaterialRef.model_validate(fields | extra)


def standard_submission(
    report_number: str,
    *,
    category: InsuredCategory | str = InsuredCategory.URBAN_EMPLOYEE,
    policy: CasePolicy | None = None,
    mode: ProductionMode | str = ProductionMode.STANDARD,
    exemption: str | None = None,
    received_by: str = "counter-01",
    omit: tuple[DocumentType, ...] = (),
    n: int = 0,
) -> MaterialsSubmission:
    """A complete set of materials for the category (and exemption), as a counter hands it in."""
    types = list((policy or CasePolicy()).materials_for(InsuredCategory(category)))
    if exemption:
        types.append(DocumentType.EXEMPTION_PROOF)
    return MaterialsSubmission.model_validate(
        {
            "documents": [
                # The counter's own references: numbered, as its document store numbers them.
                scanned(t, f"{report_number}-{i + 1:02d}-{n}")
                for i, t in enumerate(types)
                if t not in omit
            ],
            "loss_proof_number": report_number,
            "received_by": received_by,
            "production_mode": mode,
            "fee_exemption": exemption,
        }
    )
