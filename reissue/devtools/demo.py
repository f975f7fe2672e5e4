"""Demo data: people in the registry and a realistic mix of cases at every stage.

The cases are driven through the same typed client other services use. Two run
on a fast demo policy (`REISSUE_DEMO_PACE_SECONDS`, 45 s by default) so that
within a minute or two one shows a review SLA breach and one lapses on its own,
as the Web UI would show them over days in real life.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import structlog

from reissue.activities.repositories import policies
from reissue.client import ReissueClient
from reissue.devtools.seed import enrol_person, standard_submission, synthetic_resident_id
from reissue.schemas.case import CaseInput
from reissue.schemas.enums import InsuredCategory, Stage
from reissue.schemas.events import MaterialsSubmission
from reissue.schemas.policy import CasePolicy

__all__ = [
    "DEMO_PLAN",
    "fast_policy",
    "install_fast_policies",
    "run_demo",
]

log = structlog.get_logger(__name__)


def fast_policy(pace_seconds: float, district: str) -> CasePolicy:
    """A demo policy on which a review SLA breaches after `pace_seconds`, a report lapses after twice that."""
    pace = timedelta(seconds=pace_seconds)
    return CasePolicy(
        version=f"DEMO-{pace_seconds:g}s-{district}",
        temporary_report_validity=2 * pace,
        materials_reminder_interval=pace / 1.5,
        review_sla=pace,
    )


async def install_fast_policies(pool: asyncpg.Pool, pace_seconds: float) -> list[str]:
    """Put the fast demo policy in force in the districts of the fast demo cases only."""
    installed = []
    async with pool.acquire() as conn:
        for district in sorted({p.district for p in DEMO_PLAN if p.fast}):
            policy = fast_policy(pace_seconds, district)
            await policies.install(
                conn,
                policy,
                effective_from=datetime.now(UTC) - timedelta(minutes=1),
                district=district,
            )
            installed.append(policy.version)
    return installed


_SURNAMES = "王李张刘陈杨黄赵吴周"
_GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军"]


@dataclass(frozen=True)
class DemoCase:
    target: Stage
    category: InsuredCategory
    district: str
    channel: str
    affiliation: dict[str, Any] | None = None
    fast: bool = False
    mode: str = "standard"
    exemption: str | None = None
    correction: bool = False


_UNIT = {"kind": "employer", "name": "重庆山城机电有限公司", "credit_code": "91310110666007217T"}
_SCHOOL = {"kind": "school", "name": "重庆市第八中学校", "code": "4150010611"}

DEMO_PLAN: list[DemoCase] = [
    DemoCase(Stage.AWAITING_MATERIALS, InsuredCategory.URBAN_EMPLOYEE, "500103", "hotline_12333"),
    DemoCase(Stage.AWAITING_MATERIALS, InsuredCategory.URBAN_RURAL_RESIDENT, "500112", "online"),
    DemoCase(
        Stage.AWAITING_AFFILIATION,
        InsuredCategory.URBAN_EMPLOYEE,
        "500105",
        "counter",
        affiliation=_UNIT,
    ),
    DemoCase(
        Stage.AWAITING_AFFILIATION,
        InsuredCategory.STUDENT,
        "500106",
        "hotline_12393",
        affiliation=_SCHOOL,
    ),
    DemoCase(Stage.UNDER_REVIEW, InsuredCategory.RETIREE, "500108", "counter"),
    DemoCase(Stage.UNDER_REVIEW, InsuredCategory.URBAN_EMPLOYEE, "500104", "counter", fast=True),
    DemoCase(
        Stage.AWAITING_MATERIALS,
        InsuredCategory.URBAN_EMPLOYEE,
        "500107",
        "counter",
        correction=True,
    ),
    DemoCase(Stage.AWAITING_PAYMENT, InsuredCategory.URBAN_RURAL_RESIDENT, "500113", "counter"),
    DemoCase(Stage.CARD_PRODUCTION, InsuredCategory.URBAN_EMPLOYEE, "500101", "hotline_12333"),
    DemoCase(
        Stage.READY_FOR_PICKUP,
        InsuredCategory.URBAN_RURAL_RESIDENT,
        "500102",
        "counter",
        mode="instant",
        exemption="minimum_living_allowance",
    ),
    DemoCase(
        Stage.COMPLETED,
        InsuredCategory.URBAN_EMPLOYEE,
        "500116",
        "counter",
        affiliation=_UNIT,
        mode="instant",
    ),
    DemoCase(Stage.WITHDRAWN, InsuredCategory.RETIREE, "500117", "hotline_12333"),
    DemoCase(Stage.REJECTED, InsuredCategory.URBAN_EMPLOYEE, "500118", "counter"),
    DemoCase(Stage.CANCELLED, InsuredCategory.URBAN_RURAL_RESIDENT, "500120", "counter"),
    DemoCase(Stage.LAPSED, InsuredCategory.URBAN_RURAL_RESIDENT, "500154", "online", fast=True),
]


def _person(rng: random.Random) -> tuple[str, str]:
    address = "500" + rng.choice(["101", "103", "106", "112", "222"])
    name = rng.choice(_SURNAMES) + rng.choice(_GIVEN) + rng.choice(["", *_GIVEN])
    return synthetic_resident_id(rng, address=address), name


def _materials(report: str, plan: DemoCase, n: int) -> MaterialsSubmission:
    return standard_submission(
        report,
        category=plan.category,
        mode=plan.mode,
        exemption=plan.exemption,
        received_by="counter-demo",
        n=n,
    )


async def _until(probe: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await probe():
        if loop.time() > deadline:
            raise TimeoutError("demo case did not reach the expected stage")
        await asyncio.sleep(0.2)


async def _drive(
    client: ReissueClient,
    pool: asyncpg.Pool,
    plan: DemoCase,
    rng: random.Random,
    secret: str,
    bank_url: str | None,
    payments_url: str | None,
) -> tuple[str, Stage]:
    resident_id, name = _person(rng)
    balance_fen = rng.randrange(0, 500_000)
    mobile = f"139{rng.randrange(10**8):08d}"
    async with pool.acquire() as conn:
        card = await enrol_person(
            conn,
            secret=secret,
            resident_id=resident_id,
            insured_category=plan.category.value,
            district=plan.district,
            balance_fen=balance_fen,
            bank_url=bank_url,
            mobile=mobile,  # on record: one-time codes for lifting the report go to it
        )
    app = CaseInput.model_validate(
        {
            "applicant": {
                "name": name,
                "resident_id": resident_id,
                "mobile": mobile,
            },
            "card_number": card,
            "insured_category": plan.category,
            "affiliation": plan.affiliation or {"kind": "none"},
            "district": plan.district,
            "channel": plan.channel,
        }
    )
    case = (await client.report_loss(app)).workflow_id

    async def at(stage: Stage, timeout: float = 30) -> None:
        async def probe() -> bool:
            return (await client.status(case)).settled_in(stage)

        await _until(probe, timeout)

    await at(Stage.AWAITING_MATERIALS)
    target = plan.target
    if target in (Stage.AWAITING_MATERIALS, Stage.LAPSED) and not plan.correction:
        return case, target
    if target is Stage.WITHDRAWN:
        await client.card_found(case, {"channel": "hotline_12333", "note": "found at home"})
        return case, target
    report = (await client.status(case)).loss_report_number
    assert report is not None
    await client.submit_materials(case, _materials(report, plan, 0))
    if target is Stage.AWAITING_AFFILIATION:
        return case, target
    if plan.affiliation:
        await at(Stage.AWAITING_AFFILIATION)
        await client.respond_affiliation(case, {"confirmed": True, "responder": "hr-demo"})
    await at(Stage.UNDER_REVIEW)
    if target is Stage.UNDER_REVIEW:
        return case, target
    if plan.correction:
        await client.review(
            case,
            {
                "reviewer": "reviewer-demo",
                "verdict": "request_correction",
                "reasons": ["photo_not_compliant"],
                "note": "照片背景不是纯色",
            },
        )
        return case, target
    if target is Stage.REJECTED:
        await client.review(
            case,
            {
                "reviewer": "reviewer-demo",
                "verdict": "reject",
                "reasons": ["not_card_holder"],
            },
        )
        return case, target
    outcome = await client.review(case, {"reviewer": "reviewer-demo", "verdict": "approve"})
    if outcome.stage is Stage.AWAITING_PAYMENT:
        if target is Stage.AWAITING_PAYMENT:
            return case, target
        await at(Stage.AWAITING_PAYMENT)  # (its order open at the payment platform)
        fee = (await client.status(case)).fee
        assert fee is not None and fee.order_id is not None
        if payments_url is not None:
            # The applicant pays at the payment platform, which tells the front door
            # (its signed webhook), which tells the case.
            async with httpx.AsyncClient(base_url=payments_url) as platform:
                paid = await platform.post("/_pay", json={"order_id": fee.order_id})
                paid.raise_for_status()
        else:
            await client.confirm_payment(
                case,
                {
                    "order_id": fee.order_id,
                    "amount_fen": fee.amount_fen,
                    "payment_ref": f"BANK-{rng.randrange(10**10):010d}",
                    "paid_at": datetime.now(UTC),
                },
            )
        # (an instant card is printed at once: its case passes CARD_PRODUCTION)
        await at(Stage.CARD_PRODUCTION if plan.mode == "standard" else Stage.READY_FOR_PICKUP)
    if target is Stage.CANCELLED:
        await client.cancel(case, {"operator": "ops-demo", "reason": "applicant_request"})
        return case, target
    if target is Stage.CARD_PRODUCTION:
        return case, target
    await at(Stage.READY_FOR_PICKUP)
    if target is Stage.READY_FOR_PICKUP:
        return case, target
    st = await client.status(case)
    new_card = await _new_card(pool, st.case_id)
    await client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-demo"}
    )
    return case, target


async def _new_card(pool: asyncpg.Pool, case_id: str) -> str:
    async with pool.acquire() as conn:
        return str(
            await conn.fetchval(
                "SELECT new_card_number FROM production_orders WHERE case_id = $1"
                " AND status = 'produced'",
                case_id,
            )
        )


async def run_demo(
    client: ReissueClient,
    pool: asyncpg.Pool,
    *,
    secret: str,
    seed: int | None = None,
    pace_seconds: float = 45.0,
    bank_url: str | None = None,
    payments_url: str | None = None,
) -> list[tuple[str, Stage]]:
    """Start the demo mix; returns (workflow ID, stage it was driven to) per case. With
    `payments_url`, applicants pay at that payment platform (which must be pointed at
    the front door); without, the payments are confirmed to the cases directly."""
    rng = random.Random(seed)
    await install_fast_policies(pool, pace_seconds)
    results = await asyncio.gather(
        *(_drive(client, pool, plan, rng, secret, bank_url, payments_url) for plan in DEMO_PLAN)
    )
    for case, stage in results:
        log.info("demo case", case_id=case, stage=stage.value)
    return list(results)
