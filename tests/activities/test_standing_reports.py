"""The owner's report stands (issue 24, finding 3): a case cancelled while its temporary
report is valid leaves the card frozen, in the registry and at the bank, until the report
runs out by the registry's own clock; a new case on the card takes the report over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from reissue.activities import BankActivities, RegistryActivities
from reissue.activities.partners import HttpBank
from reissue.activities.standing import lapse_standing_reports
from reissue.schemas import activities as a
from reissue.schemas.enums import Channel
from reissue.workers.settings import DEV_HASH_SECRET
from tests.activities.test_idempotency import _person, _step, case_of
from tests.activities.test_registry import _loss


async def _pays(pool: asyncpg.Pool, card: str) -> tuple[bool, str]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM authorise_card_transaction($1, 100)", card)
    return row["authorised"], row["reason"]


async def _report(pool: asyncpg.Pool, number: str) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM loss_reports WHERE report_number = $1", number)
    assert row is not None
    return row


async def _card(pool: asyncpg.Pool, card: str) -> str:
    async with pool.acquire() as conn:
        return str(await conn.fetchval("SELECT status FROM cards WHERE card_number = $1", card))


async def _opened_and_frozen(
    pool: asyncpg.Pool, bank_url: str, registry: RegistryActivities, bank: BankActivities
) -> tuple[str, str, a.RegisterLossResult]:
    rid, card = await _person(pool, bank_url)
    now = datetime.now(UTC)
    loss = await registry.register_loss(
        _loss(card, rid, channel=Channel.HOTLINE_12333, reported_at=now, opened_at=now)
    )
    await bank.freeze_bank_account(
        a.FreezeInput(
            **_step(case_of(card), "freeze_bank"),
            card_number=card,
            report_number=loss.report_number,
        )
    )
    return rid, card, loss


def _lift(card: str, report: str, reason: str) -> a.LiftLossInput:
    return a.LiftLossInput(
        **_step(case_of(card), "lift_loss_report"),
        card_number=card,
        report_number=report,
        reason=reason,
    )


def _unfreeze(card: str, report: str) -> a.FreezeInput:
    return a.FreezeInput(
        **_step(case_of(card), "unfreeze_bank_account"), card_number=card, report_number=report
    )


async def test_a_cancellation_leaves_the_report_standing_until_it_runs_out(
    pool: asyncpg.Pool, bank_url: str
) -> None:
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    gateway = HttpBank(bank_url)
    bank = BankActivities(pool, gateway)
    _, card, loss = await _opened_and_frozen(pool, bank_url, registry, bank)
    report = await _report(pool, loss.report_number)
    assert report["valid_until"] == loss.reported_at + loss.policy.temporary_report_validity

    # The case is cancelled: the registry keeps the report, the bank keeps the account.
    lifted = await registry.lift_loss_report(_lift(card, loss.report_number, "cancelled"))
    assert lifted.changed and lifted.standing_until == report["valid_until"]
    assert await registry.lift_loss_report(_lift(card, loss.report_number, "cancelled")) == lifted
    kept = await bank.unfreeze_bank_account(_unfreeze(card, loss.report_number))
    assert kept.status == "frozen" and not kept.changed
    assert (await _report(pool, loss.report_number))["status"] == "standing"
    assert await _card(pool, card) == "frozen"
    assert await _pays(pool, card) == (False, "card is frozen")
    async with httpx.AsyncClient(base_url=bank_url) as sim:
        assert (await sim.get(f"/_accounts/{card}")).json()["status"] == "frozen"

        # Nothing lapses while the report is valid.
        assert await lapse_standing_reports(pool, gateway) == 0

        # Its validity runs out (by the registry's clock): the card pays again at once,
        # before anyone has lifted it; the sweep then lifts it, once.
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE loss_reports SET valid_until = now() - interval '1 second'"
                " WHERE report_number = $1",
                loss.report_number,
            )
        assert await _pays(pool, card) == (True, "ok: the temporary loss report has run out")
        assert await lapse_standing_reports(pool, gateway) == 1
        assert await lapse_standing_reports(pool, gateway) == 0
        assert (await _report(pool, loss.report_number))["status"] == "lifted"
        assert await _card(pool, card) == "active"
        assert await _pays(pool, card) == (True, "ok")
        assert (await sim.get(f"/_accounts/{card}")).json()["status"] == "active"
    await gateway.aclose()


async def test_the_owner_s_word_lifts_at_once(pool: asyncpg.Pool, bank_url: str) -> None:
    """Found the card (withdrawn) or ran out (lapsed): lifted and unfrozen, nothing stands."""
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    gateway = HttpBank(bank_url)
    bank = BankActivities(pool, gateway)
    for reason in sorted(a.OWNER_LIFTS):
        _, card, loss = await _opened_and_frozen(pool, bank_url, registry, bank)
        lifted = await registry.lift_loss_report(_lift(card, loss.report_number, reason))
        assert lifted.changed and lifted.standing_until is None
        unfrozen = await bank.unfreeze_bank_account(_unfreeze(card, loss.report_number))
        assert unfrozen.status == "active" and unfrozen.changed
        assert (await _report(pool, loss.report_number))["status"] == "lifted"
        assert await _pays(pool, card) == (True, "ok")
    await gateway.aclose()


async def test_a_new_case_takes_a_standing_report_over(pool: asyncpg.Pool, bank_url: str) -> None:
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    gateway = HttpBank(bank_url)
    bank = BankActivities(pool, gateway)
    rid, card, loss = await _opened_and_frozen(pool, bank_url, registry, bank)
    await registry.lift_loss_report(_lift(card, loss.report_number, "cancelled"))

    later = datetime.now(UTC) + timedelta(minutes=5)
    again = await registry.register_loss(
        _loss(
            card,
            rid,
            case_id=case_of(card, "run-2"),
            channel=Channel.ONLINE,
            reported_at=later,
            opened_at=later,
        )
    )
    assert again.reported_at == loss.reported_at  # the owner's cut-off, kept
    assert (await _report(pool, loss.report_number))["status"] == "continued"
    assert (await _report(pool, again.report_number))["status"] == "open"
    assert await _card(pool, card) == "frozen"
    # The first case's bank step, late (retried through an outage), keeps the account
    # frozen: the card is under the new case's report now.
    kept = await bank.unfreeze_bank_account(_unfreeze(card, loss.report_number))
    assert kept.status == "frozen" and not kept.changed
    async with httpx.AsyncClient(base_url=bank_url) as sim:
        assert (await sim.get(f"/_accounts/{card}")).json()["status"] == "frozen"
    # The sweep leaves a report a case took over alone.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE loss_reports SET valid_until = now() - interval '1 second'"
            " WHERE report_number = $1",
            loss.report_number,
        )
    assert await lapse_standing_reports(pool, gateway) == 0
    assert await _card(pool, card) == "frozen"
    await gateway.aclose()


async def test_the_sweep_skips_a_card_a_registry_step_holds(
    pool: asyncpg.Pool, bank_url: str
) -> None:
    """The registry's steps lock the card, then its report (`register_loss` taking a
    standing report over); the sweep must not take them the other way round and wait on
    the card (a deadlock, after it has already unfrozen the bank account): it skips a
    report whose card is held and lifts it, once, on a later sweep."""
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    gateway = HttpBank(bank_url)
    bank = BankActivities(pool, gateway)
    _, card, loss = await _opened_and_frozen(pool, bank_url, registry, bank)
    await registry.lift_loss_report(_lift(card, loss.report_number, "cancelled"))
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE loss_reports SET valid_until = now() - interval '1 second'"
            " WHERE report_number = $1",
            loss.report_number,
        )
    async with httpx.AsyncClient(base_url=bank_url) as sim:
        async with pool.acquire() as held, held.transaction():
            await held.fetchrow(  # as a registry step holds it
                "SELECT status FROM cards WHERE card_number = $1 FOR UPDATE", card
            )
            assert await lapse_standing_reports(pool, gateway) == 0
            assert (await sim.get(f"/_accounts/{card}")).json()["status"] == "frozen"
        assert await lapse_standing_reports(pool, gateway) == 1
        assert (await sim.get(f"/_accounts/{card}")).json()["status"] == "active"
    assert (await _report(pool, loss.report_number))["status"] == "lifted"
    assert await _card(pool, card) == "active"
    await gateway.aclose()


async def test_a_frozen_card_pays_only_when_every_report_on_it_has_run_out(
    pool: asyncpg.Pool, bank_url: str
) -> None:
    """The registry's own clock: a frozen card pays again only when each open or standing
    report on it is temporary and past its validity (a report from before validities
    were kept, with none, never runs out; a frozen card under no report stays frozen)."""
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    bank = BankActivities(pool, HttpBank(bank_url))
    _, card, loss = await _opened_and_frozen(pool, bank_url, registry, bank)
    past, future = "now() - interval '1 second'", "now() + interval '1 hour'"
    cases = [  # (status, kind, valid_until): pays
        ("open", "temporary", past, True),
        ("standing", "temporary", past, True),
        ("open", "temporary", future, False),
        ("open", "temporary", "NULL", False),
        ("open", "formal", past, False),
        ("lifted", "temporary", past, False),  # no report on it: frozen for another reason
    ]
    for status, kind, until, pays in cases:
        async with pool.acquire() as conn:
            await conn.execute(
                f"UPDATE loss_reports SET status = $2, kind = $3, valid_until = {until}"
                " WHERE report_number = $1",
                loss.report_number,
                status,
                kind,
            )
        assert (await _pays(pool, card))[0] is pays, (status, kind, until)


class _CountingPool:
    """The pool, counting how often a step takes a connection from it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool, self.taken = pool, 0

    def acquire(self) -> Any:
        self.taken += 1
        return self._pool.acquire()

    async def fetchval(self, *args: Any) -> Any:
        self.taken += 1
        return await self._pool.fetchval(*args)


async def test_a_bank_step_reads_the_registry_in_one_go(pool: asyncpg.Pool, bank_url: str) -> None:
    """An unfreeze takes the pool three times, however many facts it reads: whether it
    was done, what the registry says (does the report stand, which bank), its record."""
    registry = RegistryActivities(pool, hash_secret=DEV_HASH_SECRET)
    gateway = HttpBank(bank_url)
    _, card, loss = await _opened_and_frozen(
        pool, bank_url, registry, BankActivities(pool, gateway)
    )
    await registry.lift_loss_report(_lift(card, loss.report_number, "withdrawn"))
    counting = _CountingPool(pool)
    bank = BankActivities(counting, gateway)  # type: ignore[arg-type]
    unfrozen = await bank.unfreeze_bank_account(_unfreeze(card, loss.report_number))
    assert unfrozen.status == "active" and unfrozen.changed
    assert counting.taken == 3
    await gateway.aclose()
