"""Soak: many cases down randomised paths, with duplicate and late events, then the invariants,
then every history the run produced replayed against the worker's code.

Used by `reissue soak` (1,000 cases on its own stack) and by the test suite
(about 100 cases). Timers run in real time on short policies, so lapses and
reminders happen within seconds.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
from temporalio.service import RPCError

from reissue.activities.repositories import policies
from reissue.client._client import ReissueClient
from reissue.devtools.seed import enrol_person, standard_submission, synthetic_resident_id
from reissue.ops.audit import replay
from reissue.ops.invariants import Violation, check_invariants
from reissue.schemas.case import CaseInput, CaseStatus
from reissue.schemas.enums import Stage
from reissue.schemas.events import MaterialsSubmission
from reissue.schemas.policy import CasePolicy

if TYPE_CHECKING:
    from collections.abc import Sequence

    from reissue.devtools.chaos import CaseProgram

__all__ = ["PATHS", "SoakResult", "run_soak"]

PATHS = (
    "complete_standard",
    "complete_instant_exempt",
    "unit_confirms_then_complete",
    "correction_then_complete",
    "reject",
    "withdraw",
    "cancel_after_payment",
    "lapse_temporary",
    "lapse_unpaid",
)


@dataclass
class SoakResult:
    cases: int
    finished: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    duplicates_sent: int = 0
    late_events_sent: int = 0
    events_sent: int = 0
    events_refused: int = 0
    errors: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    replayed: int = 0
    diverged: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def clean(self) -> bool:
        """Every case finished, no error, no broken invariant, every history replayed."""
        return (
            not self.errors
            and not self.violations
            and not self.diverged
            and self.finished == self.cases
        )

    @property
    def cases_per_s(self) -> float:
        return self.finished / self.elapsed_s if self.elapsed_s else 0.0


# Each path runs in a district of its own, whose policy sets its pace.
_DISTRICTS = dict(
    zip(
        PATHS,
        ("500101", "500102", "500103", "500104", "500105", "500106", "500107", "500108", "500109"),
        strict=True,
    )
)


async def _put_in_force(pool: asyncpg.Pool, by_district: dict[str, CasePolicy]) -> None:
    """Each district its own pace (the soak's stack is its own: nothing else runs there)."""
    async with pool.acquire() as conn:
        for district, policy in by_district.items():
            await policies.install(
                conn,
                policy,
                effective_from=datetime.now(UTC) - timedelta(minutes=1),
                district=district,
            )


def _policy(path: str) -> CasePolicy:
    quick = timedelta(seconds=2)
    roomy = timedelta(minutes=10)
    return CasePolicy(
        version=f"SOAK-{_DISTRICTS[path]}",
        temporary_report_validity=quick if path == "lapse_temporary" else roomy,
        materials_reminder_interval=timedelta(seconds=1),
        max_materials_reminders=1,
        payment_reminder_after=timedelta(seconds=1),
        payment_deadline=quick + timedelta(seconds=1) if path == "lapse_unpaid" else roomy,
        payment_final_reminder_before=timedelta(seconds=1),
        review_sla=timedelta(seconds=1),  # many breach: the flag must not disturb the case
        pickup_reminder_interval=timedelta(seconds=1),
        max_pickup_reminders=1,
    )


class _Driver:
    def __init__(
        self,
        client: ReissueClient,
        pool: asyncpg.Pool,
        rng: random.Random,
        secret: str,
        result: SoakResult,
        bank_url: str | None = None,
    ) -> None:
        self.c, self.pool, self.rng, self.secret, self.result = client, pool, rng, secret, result
        self.bank_url = bank_url

    async def twice(self, send: Any, *args: Any) -> None:
        """Send an event, and now and then send it again: duplicates must change nothing."""
        await send(*args)
        if self.rng.random() < 0.3:
            self.result.duplicates_sent += 1
            await send(*args)

    async def at(self, case: str, *stages: Stage, timeout: float = 60) -> CaseStatus:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            st = await self.c.status(case)
            if any(st.settled_in(stage) for stage in stages):
                return st
            if loop.time() > deadline:
                raise TimeoutError(f"{case} stuck in {st.stage}, expected {stages}")
            await asyncio.sleep(0.1)

    async def person(self, path: str) -> CaseInput:
        rng = self.rng
        resident_id = synthetic_resident_id(rng)
        affiliated = path == "unit_confirms_then_complete"
        async with self.pool.acquire() as conn:
            card = await enrol_person(
                conn,
                secret=self.secret,
                resident_id=resident_id,
                insured_category="urban_employee",
                district=rng.choice(["500103", "500112"]),
                balance_fen=rng.randrange(100_000),
                bank_url=self.bank_url,  # a third-generation card, when a bank is given
                mobile="13800138000",
            )
        return CaseInput.model_validate(
            {
                "applicant": {"name": "测试", "resident_id": resident_id, "mobile": "13800138000"},
                "card_number": card,
                "insured_category": "urban_employee",
                "affiliation": {
                    "kind": "employer",
                    "name": "重庆某某有限公司",
                    "credit_code": "91310110666007217T",
                }
                if affiliated
                else {"kind": "none"},
                "district": _DISTRICTS[path],
                "channel": rng.choice(["hotline_12333", "online", "counter"])
                if path != "withdraw" and path != "lapse_temporary"
                else "hotline_12393",
            }
        )

    def materials(self, report: str, *, instant: bool, exempt: bool, n: int) -> MaterialsSubmission:
        return standard_submission(
            report,
            mode="instant" if instant else "standard",
            exemption="minimum_living_allowance" if exempt else None,
            received_by="soak-clerk",
            n=n,
        )

    async def pay(self, case: str) -> None:
        st = await self.at(case, Stage.AWAITING_PAYMENT)
        assert st.fee is not None and st.fee.order_id is not None
        await self.twice(
            self.c.confirm_payment,
            case,
            {
                "order_id": st.fee.order_id,
                "amount_fen": st.fee.amount_fen,
                "payment_ref": f"SOAK-{self.rng.randrange(10**12)}",
                "paid_at": datetime.now(UTC),
            },
        )

    async def run(self, path: str) -> Stage:
        c = self.c
        app = await self.person(path)
        case = (await c.report_loss(app)).workflow_id
        st = await self.at(case, Stage.AWAITING_MATERIALS)
        report = st.loss_report_number
        assert report is not None
        if path == "lapse_temporary":
            return (await c.result(case)).outcome
        if path == "withdraw":
            await c.card_found(case, {"channel": "hotline_12333"})
            return (await c.result(case)).outcome
        instant = path in ("complete_instant_exempt", "reject", "correction_then_complete")
        exempt = path == "complete_instant_exempt"
        await c.submit_materials(case, self.materials(report, instant=instant, exempt=exempt, n=0))
        if path == "unit_confirms_then_complete":
            await self.at(case, Stage.AWAITING_AFFILIATION)
            await self.twice(c.respond_affiliation, case, {"confirmed": True, "responder": "hr"})
        await self.at(case, Stage.UNDER_REVIEW)
        if path == "reject":
            await c.review(case, {"reviewer": "soak", "verdict": "reject", "reasons": ["other"]})
            return (await c.result(case)).outcome
        if path == "correction_then_complete":
            await c.review(
                case,
                {"reviewer": "soak", "verdict": "request_correction", "reasons": ["form_unsigned"]},
            )
            await self.at(case, Stage.AWAITING_MATERIALS)
            await c.submit_materials(case, self.materials(report, instant=True, exempt=False, n=1))
            await self.at(case, Stage.UNDER_REVIEW)
        await c.review(case, {"reviewer": "soak", "verdict": "approve"})
        if path == "lapse_unpaid":
            return (await c.result(case)).outcome
        if not exempt:
            await self.pay(case)
        st = await self.at(case, Stage.CARD_PRODUCTION, Stage.READY_FOR_PICKUP)
        if path == "cancel_after_payment":
            await c.cancel(case, {"operator": "soak", "reason": "duplicate_case"})
            await self.late(case, st)
            return (await c.result(case)).outcome
        if st.stage is Stage.CARD_PRODUCTION:
            async with self.pool.acquire() as conn:
                new = str(await conn.fetchval("SELECT next_card_number()"))
            await self.twice(
                c.card_produced,
                case,
                {
                    "order_id": st.production_order_id,
                    "new_card_number": new,
                    "produced_at": datetime.now(UTC),
                },
            )
        st = await self.at(case, Stage.READY_FOR_PICKUP)
        async with self.pool.acquire() as conn:
            new = str(
                await conn.fetchval(
                    "SELECT new_card_number FROM production_orders WHERE case_id = $1"
                    " AND status = 'produced'",
                    st.case_id,
                )
            )
        await self.twice(c.card_collected, case, {"new_card_number": new, "handed_over_by": "soak"})
        outcome = (await c.result(case)).outcome
        await self.late(case, st)
        return outcome

    async def late(self, case: str, st: CaseStatus) -> None:
        """An event after the case moved on: refused or ignored, never acted on."""
        self.result.late_events_sent += 1
        try:
            await self.c.respond_affiliation(case, {"confirmed": True, "responder": "late"})
        except RPCError:
            pass  # the case has closed: Temporal refuses the signal


async def run_soak(
    client: ReissueClient,
    pool: asyncpg.Pool,
    *,
    cases: int,
    secret: str,
    concurrency: int = 20,
    seed: int = 1,
    task_queue: str | None = None,
    bank_url: str | None = None,
) -> SoakResult:
    """Drive `cases` cases, `concurrency` at a time, then check every invariant."""
    rng = random.Random(seed)
    result = SoakResult(cases=cases)
    await _put_in_force(pool, {_DISTRICTS[path]: _policy(path) for path in PATHS})
    paths = [PATHS[i % len(PATHS)] for i in range(cases)]
    rng.shuffle(paths)
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    since = datetime.now(UTC) - timedelta(seconds=5)

    async def one(path: str, n: int) -> None:
        async with gate:
            driver = _Driver(
                client, pool, random.Random(seed * 100_003 + n), secret, result, bank_url
            )
            try:
                outcome = await driver.run(path)
            except Exception as e:  # reported, not raised: the soak counts every failure
                result.errors.append(f"{path}: {type(e).__name__}: {e}")
                return
            result.finished += 1
            result.paths[path] += 1
            result.outcomes[outcome.value] += 1

    await asyncio.gather(*(one(path, n) for n, path in enumerate(paths)))
    result.elapsed_s = time.monotonic() - started
    result.violations = await check_invariants(
        client.temporal, pool, task_queue=task_queue, verify_closed_since=since
    )
    await replay_all(client, result, since=since, task_queue=task_queue)
    return result


async def replay_all(
    client: ReissueClient, result: SoakResult, *, since: datetime, task_queue: str | None
) -> None:
    """Replay every history the run produced (open cases too, and the intruders' and
    late payments') against the worker's code: a divergence is an error."""
    temporal = client.temporal
    query = f"StartTime >= '{since.isoformat()}'"
    if task_queue:
        query += f" AND TaskQueue = '{task_queue}'"
    histories = [
        (wf.id, await temporal.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history())
        async for wf in temporal.list_workflows(query)
    ]
    outcomes = await replay(histories, temporal.data_converter)
    result.replayed = len(outcomes)
    result.diverged = [f"{o.workflow_id}: {o.error}" for o in outcomes if not o.ok]


# Chaos: each case in one of two paces, so that some lapse and expire while others run.
_CHAOS_DISTRICTS = {"500110": timedelta(seconds=3), "500111": timedelta(minutes=10)}


def _chaos_policy(district: str) -> CasePolicy:
    pace = _CHAOS_DISTRICTS[district]
    return CasePolicy(
        version=f"CHAOS-{district}",
        temporary_report_validity=pace,
        materials_reminder_interval=pace / 2,
        max_materials_reminders=1,
        resubmission_deadline=pace,
        formal_materials_deadline=pace * 2,
        affiliation_reminder_interval=pace / 2,
        affiliation_reminders_before_escalation=1,
        review_sla=pace / 2,
        payment_reminder_after=pace / 2,
        payment_deadline=pace * 2,
        payment_final_reminder_before=pace / 4,
        production_overdue_after=pace,
        pickup_reminder_interval=pace / 2,
        max_pickup_reminders=1,
    )


async def _let_time_pass(case: str, span: timedelta) -> None:
    # Real time on a soak stack: a day of the program is half a second here.
    await asyncio.sleep(min(span.days, 6) * 0.5)


async def run_chaos(
    client: ReissueClient,
    pool: asyncpg.Pool,
    *,
    cases: int,
    secret: str,
    concurrency: int = 20,
    seed: int = 1,
    task_queue: str | None = None,
    bank_url: str | None = None,
    programs: Sequence[CaseProgram] = (),
) -> SoakResult:
    """Random programs of events (races, early ends, Temporal cancellation, wrong and late
    payments, intruders, plaintext, time passing) on `cases` cases — or the `programs`
    given, one case each; then every invariant, then every history replayed."""
    from reissue.devtools.chaos import ChaosDriver, expected_card, random_program

    result = SoakResult(cases=cases)
    await _put_in_force(pool, {d: _chaos_policy(d) for d in _CHAOS_DISTRICTS})
    driver = ChaosDriver(client, pool, jump=_let_time_pass)
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    since = datetime.now(UTC) - timedelta(seconds=5)

    async def one(n: int) -> None:
        case_rng = random.Random(seed * 100_003 + n)
        program = programs[n] if programs else random_program(case_rng)
        district = case_rng.choice(sorted(_CHAOS_DISTRICTS))
        async with gate:
            resident_id = synthetic_resident_id(case_rng)
            async with pool.acquire() as conn:
                card = await enrol_person(
                    conn,
                    secret=secret,
                    resident_id=resident_id,
                    insured_category="urban_employee",
                    district=district,
                    balance_fen=case_rng.randrange(100_000),
                    bank_url=bank_url,
                    mobile="13800138000",
                )
            app = CaseInput.model_validate(
                {
                    "applicant": {
                        "name": "混沌",
                        "resident_id": resident_id,
                        "mobile": "13800138000",
                    },
                    "card_number": card,
                    "insured_category": "urban_employee",
                    "affiliation": {
                        "kind": "employer",
                        "name": "重庆某某有限公司",
                        "credit_code": "91310110666007217T",
                    }
                    if program.affiliated
                    else {"kind": "none"},
                    "district": district,
                    "channel": program.channel,
                }
            )
            try:
                st = await driver.run(app, program)
                if st is not None:
                    async with pool.acquire() as conn:
                        card_now = await conn.fetchval(
                            "SELECT status FROM cards WHERE card_number = $1", card
                        )
                    # On a fast policy the case may move on meanwhile (a report lapses):
                    # judge the card by a state that held before and after it was read.
                    again = await client.status(st.case_id.split(":")[0])
                    if again.stage is st.stage and card_now not in expected_card(st):
                        result.errors.append(f"{program}: card {card_now} in {st.stage.value}")
            except Exception as e:  # reported, not raised: the soak counts every failure
                result.errors.append(f"{program}: {type(e).__name__}: {e}")
                return
            result.finished += 1
            result.paths["chaos"] += 1
            result.outcomes[st.stage.value if st else "refused"] += 1

    await asyncio.gather(*(one(n) for n in range(cases)))
    result.elapsed_s = time.monotonic() - started
    result.events_sent, result.events_refused = driver.events, driver.refusals
    result.violations = await check_invariants(
        client.temporal, pool, task_queue=task_queue, verify_closed_since=since
    )
    await replay_all(client, result, since=since, task_queue=task_queue)
    return result
