"""Builders and probes the tests share: people in the registry, applications, materials,
the helpers that drive a case through the typed client (both layers), and `eventually`,
the one way a test waits."""

from __future__ import annotations

import asyncio
import base64
import inspect
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import httpx
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from reissue.activities.repositories import policies
from reissue.client import ReissueClient
from reissue.devtools.seed import enrol_person, scanned, standard_submission, synthetic_resident_id
from reissue.ops.audit import LOCAL_ACTIVITY_MARKER
from reissue.ops.invariants import Violation, check_invariants
from reissue.schemas.case import CaseInput, CaseResult, CaseStatus
from reissue.schemas.codec import KeyRing
from reissue.schemas.converter import data_converter
from reissue.schemas.enums import DocumentType, InsuredCategory, Stage
from reissue.schemas.events import MaterialRef
from reissue.schemas.policy import CasePolicy
from reissue.workers.settings import DEV_HASH_SECRET, Settings
from reissue.workers.worker import build_worker, partners_over_http

DEFAULT_BALANCE_FEN = 123_456
EMPLOYER = {"kind": "employer", "name": "重庆某某科技有限公司", "credit_code": "91310110666007217T"}

# Test-only keys (fake data only): fixed so that recorded histories stay readable.
TEST_KEYS_SPEC = (
    "test2:"
    + base64.b64encode(bytes(range(32, 64))).decode()
    + ",test1:"
    + base64.b64encode(bytes(range(32))).decode()
)
TEST_KEYS = KeyRing.parse(TEST_KEYS_SPEC)
TEST_CONVERTER = data_converter(TEST_KEYS)
CODEC_TOKEN = "test-codec-token"

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T] | T], timeout: float = 30, *, every: float = 0.05
) -> T:
    """Run `check` until it passes, and return what it returned: it passes once it neither
    raises `AssertionError` nor returns `False`. After `timeout` real seconds the last
    `AssertionError` is raised (the reason it never passed).

    The one way a test waits for something to happen. To show that something did *not*
    happen, wait first for an event proving the system has moved past the point where it
    would have (STYLE.md), then assert, once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result is not False:
                return result  # type: ignore[return-value]
            failure = AssertionError(f"{getattr(check, '__name__', check)} stayed False")
        except AssertionError as e:
            failure = e
        if loop.time() > deadline:
            raise failure
        await asyncio.sleep(every)


async def summary_text(payload: Payload) -> str:
    """A summary (user metadata) as the Web UI shows it after the codec decodes it."""
    [text] = await TEST_CONVERTER.decode([payload], [str])
    return str(text)


def is_step(event: HistoryEvent) -> bool:
    """An activity scheduled, or a local activity's marker: a step of the case."""
    return event.HasField("activity_task_scheduled_event_attributes") or (
        event.HasField("marker_recorded_event_attributes")
        and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
    )


async def step_summaries(events: Iterable[HistoryEvent]) -> list[str]:
    """What the Web UI shows for each step of a case (activities and local activities)."""
    return [
        await summary_text(e.user_metadata.summary)
        for e in events
        if is_step(e) and e.HasField("user_metadata")
    ]


# Not the global `random`: hypothesis seeds that one, and these must never repeat.
_UNIQUE = random.SystemRandom()


def random_card_number() -> str:
    """Unique across tests: every test's database restarts the card-number sequence."""
    return "T" + "".join(_UNIQUE.choices("0123456789ABCDEFGHJKLMNPQRTUWXY", k=8))


def random_resident_id() -> str:
    return synthetic_resident_id(random.Random(_UNIQUE.random()))


async def install_policy(
    pool: asyncpg.Pool, policy: CasePolicy, *, district: str | None = None
) -> CasePolicy:
    """Put a policy in force (from a day ago, so that it is the newest), as operations would."""
    version = f"T-{uuid.uuid4().hex[:10]}"
    policy = policy.model_copy(update={"version": version})
    async with pool.acquire() as conn:
        await policies.install(
            conn, policy, effective_from=datetime.now(UTC) - timedelta(days=1), district=district
        )
    return policy


class Cases:
    """Drives cases through the typed client, as partners, clerks and staff would: what
    both layers share. A subclass says where people and policies live (PostgreSQL, or
    the fakes in memory) and what the outbox holds."""

    env: WorkflowEnvironment
    client: ReissueClient
    policy: CasePolicy

    async def enrol(
        self,
        *,
        category: InsuredCategory = InsuredCategory.URBAN_EMPLOYEE,
        district: str = "500103",
        balance_fen: int = DEFAULT_BALANCE_FEN,
        bank: bool = True,
    ) -> tuple[str, str]:
        """A person with an active card; returns (resident_id, card_number)."""
        raise NotImplementedError

    async def use_policy(self, **changes: Any) -> CasePolicy:
        """Put in force the seeded policy with these changes."""
        raise NotImplementedError

    async def templates(self, case_id: str) -> list[str]:
        """The templates of the case's notices in the outbox, in order."""
        raise NotImplementedError

    async def application(
        self,
        *,
        category: InsuredCategory = InsuredCategory.URBAN_EMPLOYEE,
        affiliation: dict[str, Any] | None = None,
        channel: str = "hotline_12333",
        district: str = "500103",
        **policy_changes: Any,
    ) -> CaseInput:
        """A person with a card, and their loss report; policy changes are put in force."""
        category = InsuredCategory(category)
        resident_id, card = await self.enrol(category=category, district=district)
        if policy_changes:
            await self.use_policy(**policy_changes)
        return CaseInput.model_validate(
            {
                "applicant": {"name": "张三", "resident_id": resident_id, "mobile": "13800138000"},
                "card_number": card,
                "insured_category": category,
                "affiliation": affiliation or {"kind": "none"},
                "district": district,
                "channel": channel,
            }
        )

    async def open_case(self, **application: Any) -> tuple[CaseInput, str, str]:
        """Report a loss; returns (application, workflow ID, loss report number) once frozen."""
        app = await self.application(**application)
        case = (await self.client.report_loss(app)).workflow_id
        st = await self.wait_for(case, Stage.AWAITING_MATERIALS)
        assert st.loss_report_number is not None
        return app, case, st.loss_report_number

    async def submit(self, case: str, report: str, **kw: Any) -> None:
        """Hand in a complete set of materials; waits until the case is in review."""
        await self.client.submit_materials(case, materials(report, **kw))
        await self.wait_for(case, Stage.UNDER_REVIEW)

    async def approve(self, case: str, **decision: Any) -> CaseStatus:
        await self.client.review(case, {"reviewer": "rev-01", "verdict": "approve", **decision})
        return await self.status(case)

    async def pay(
        self, case: str, *, ref: str = "BANK-0001", amount_fen: int | None = None
    ) -> None:
        """The payment platform pays the case's open order (in full unless told otherwise)."""
        st = await self.wait_for(case, Stage.AWAITING_PAYMENT)
        assert st.fee is not None and st.fee.order_id is not None
        await self.client.confirm_payment(
            case,
            {
                "order_id": st.fee.order_id,
                "amount_fen": st.fee.amount_fen if amount_fen is None else amount_fen,
                "payment_ref": ref,
                "paid_at": datetime.now(UTC),
            },
        )

    async def notice_sent(self, case_id: str, template: str, *, timeout: float = 30) -> None:
        """Wait until a notice is in the outbox (what a partner reacts to)."""

        async def sent() -> None:
            assert template in await self.templates(case_id), f"no {template} notice for {case_id}"

        await eventually(sent, timeout)

    async def status(self, case: str) -> CaseStatus:
        return await self.client.status(case)

    async def wait_for(self, case: str, stage: Stage, *, timeout: float = 30) -> CaseStatus:
        """Wait (real seconds) until the `status` query shows the case settled in `stage`."""

        async def there() -> CaseStatus:
            st = await self.status(case)
            assert st.settled_in(stage), (
                f"case stayed in {st.stage} ({st.awaiting.value}: {st.pending_action}), "
                f"expected {stage}"
            )
            return st

        return await eventually(there, timeout)

    async def until(
        self, case: str, seen: Callable[[CaseStatus], bool], *, timeout: float = 30
    ) -> CaseStatus:
        """Wait until the case's status shows what `seen` looks for; that status."""

        async def shown() -> CaseStatus:
            st = await self.status(case)
            assert seen(st), f"case {case} never got there: {st.stage} ({st.pending_action})"
            return st

        return await eventually(shown, timeout)

    async def fast_forward(self, case: str, by: timedelta) -> None:
        """Let `by` of the case's virtual time pass (its timers fire)."""
        await self.env.fast_forward(self.client.handle(case), by)

    async def result(self, case: str) -> CaseResult:
        return await self.client.result(case)


@dataclass
class Stack(Cases):
    """The real stack: a worker with the real activities against PostgreSQL and the
    partner simulators, on the dev server."""

    env: WorkflowEnvironment
    pool: asyncpg.Pool
    client: ReissueClient
    settings: Settings
    policy: CasePolicy = field(default_factory=CasePolicy)
    """The policy in force for this test's cases (the seeded CQ-2026.1 unless changed)."""

    @asynccontextmanager
    async def another_worker(
        self, queue: str, *, client: Client | None = None, **settings: Any
    ) -> AsyncIterator[Stack]:
        """This stack with a worker of its own on the task queue `<ours>-<queue>`, set up
        with these settings (say, another partner's URL) and on `client` (default: the
        environment's); its cases are driven through the stack it yields."""
        temporal = client or self.env.client
        own = self.settings.model_copy(
            update={"task_queue": f"{self.settings.task_queue}-{queue}", **settings}
        )
        partners = partners_over_http(own)
        worker = build_worker(temporal, self.pool, own, partners=partners)
        running = asyncio.create_task(worker.run())
        try:
            yield Stack(
                env=self.env,
                pool=self.pool,
                client=ReissueClient(
                    temporal, task_queue=own.task_queue, hash_secret=DEV_HASH_SECRET
                ),
                settings=own,
                policy=self.policy,
            )
        finally:
            await worker.shutdown()
            await running
            await partners.aclose()

    async def use_policy(self, **changes: Any) -> CasePolicy:
        """Put in force the seeded policy with these changes."""
        self.policy = await install_policy(self.pool, CasePolicy().model_copy(update=changes))
        return self.policy

    async def enrol(
        self,
        *,
        category: InsuredCategory = InsuredCategory.URBAN_EMPLOYEE,
        district: str = "500103",
        balance_fen: int = DEFAULT_BALANCE_FEN,
        bank: bool = True,
    ) -> tuple[str, str]:
        """A person with an active card; returns (resident_id, card_number)."""
        resident_id = random_resident_id()
        async with self.pool.acquire() as conn:
            card = await enrol_person(
                conn,
                secret=DEV_HASH_SECRET,
                resident_id=resident_id,
                insured_category=category.value,
                district=district,
                balance_fen=balance_fen,
                bank="Test Bank" if bank else None,
                bank_url=self.settings.bank_url,
                card_number=random_card_number(),
            )
        return resident_id, card

    @asynccontextmanager
    async def holding(self, case: str, step: str) -> AsyncIterator[None]:
        """Hold one step of a case mid-flight: its idempotency key is taken by an open
        transaction, so the activity waits on it (and retries) until the block ends."""
        case_id = f"{case}:{(await self.client.handle(case).describe()).run_id}"
        conn = await self.pool.acquire()
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                "INSERT INTO activity_runs (key, activity) VALUES ($1, 'held')",
                f"{case_id}:{step}",
            )
            yield
        finally:
            await tx.rollback()
            await self.pool.release(conn)

    async def pending(self, case: str, activity: str, *, timeout: float = 30) -> None:
        """Wait until the case is running this activity: a partner call among its pending
        activities; a step on the registry (a local activity, not listed there) waiting on
        the key `holding` took."""
        handle = self.client.handle(case)

        async def running() -> None:
            pending = (await handle.describe()).raw_description.pending_activities
            if any(p.activity_type.name == activity for p in pending):
                return
            assert await self.one(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE NOT l.granted AND a.query LIKE 'INSERT INTO activity_runs%'"
            ), f"{activity} never ran for {case}"

        await eventually(running, timeout)

    async def violations(self) -> list[Violation]:
        """Every broken invariant across this test's cases (histories checked too)."""
        return await check_invariants(
            self.client.temporal,
            self.pool,
            task_queue=self.settings.task_queue,
            verify_closed_since=datetime(2000, 1, 1, tzinfo=UTC),
        )

    async def one(self, sql: str, *args: Any) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def rows(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.pool.acquire() as conn:
            return await conn.fetch(sql, *args)

    async def card_status(self, card: str) -> str:
        return str(await self.one("SELECT status FROM cards WHERE card_number = $1", card))

    async def authorised(self, card: str) -> bool:
        """Would a payment with this card go through at a pharmacy or hospital now?"""
        return bool(
            await self.one("SELECT authorised FROM authorise_card_transaction($1, 100)", card)
        )

    async def assert_old_card_void(self, card: str, case_id: str) -> None:
        """A formal case ended without a new card: the loss stands, the card is void for good."""
        assert await self.card_status(card) == "void"
        assert await self.bank_status(card) == "frozen"
        assert await self.one("SELECT status FROM loss_reports WHERE case_id = $1", case_id) == (
            "closed_without_reissue"
        )
        assert not await self.authorised(card)

    async def bank_status(self, card: str) -> str | None:
        """The card's account as the bank (its simulator) has it; None: no account."""
        async with httpx.AsyncClient(base_url=self.settings.require_partner_url("bank")) as bank:
            r = await bank.get(f"/_accounts/{card}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return str(r.json()["status"])

    async def bank_knobs(self, **knobs: Any) -> None:
        """Slow the bank down or take it down (`down=True`), or bring it back."""
        async with httpx.AsyncClient(base_url=self.settings.require_partner_url("bank")) as bank:
            (await bank.put("/_knobs", json=knobs)).raise_for_status()

    async def templates(self, case_id: str) -> list[str]:
        rows = await self.rows(
            "SELECT template FROM notifications WHERE case_id = $1 ORDER BY id", case_id
        )
        return [r["template"] for r in rows]

    async def messages(self, case_id: str, template: str) -> list[str]:
        rows = await self.rows(
            "SELECT message FROM notifications WHERE case_id = $1 AND template = $2 ORDER BY id",
            case_id,
            template,
        )
        return [r["message"] for r in rows]


def doc(doc_type: DocumentType, n: int = 0, **extra: Any) -> MaterialRef:
    return scanned(doc_type, f"{doc_type.value}-{n}", **extra)


materials = standard_submission
