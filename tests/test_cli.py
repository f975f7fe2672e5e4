"""The `reissue` command line, run as a user runs it, against the test server and database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reissue.devtools.seed import enrol_person
from reissue.schemas.enums import Stage
from reissue.schemas.hashing import open_mobile
from reissue.schemas.policy import CasePolicy
from reissue.workers.settings import DEV_HASH_SECRET
from tests.support import TEST_KEYS_SPEC, Stack, random_resident_id

REISSUE = str(Path(sys.prefix) / "bin" / "reissue")


async def reissue(stack: Stack, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    env = os.environ | {
        "TEMPORAL_ADDRESS": stack.env.client.service_client.config.target_host,
        "REISSUE_TASK_QUEUE": stack.settings.task_queue,
        "DATABASE_URL": stack.settings.require_database_url(),
        "COLUMNS": "200",
        "REISSUE_CODEC_KEYS": TEST_KEYS_SPEC,
        **stack.settings.partner_environment(),
    }
    proc = await asyncio.create_subprocess_exec(
        REISSUE,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_report_status_and_withdraw_from_the_command_line(stack: Stack) -> None:
    resident_id = random_resident_id()
    async with stack.pool.acquire() as conn:
        card = await enrol_person(
            conn,
            secret=DEV_HASH_SECRET,
            resident_id=resident_id,
            insured_category="retiree",
            district="500101",
            balance_fen=500,
            card_number="C" + resident_id[-8:-1] + "Q",
        )
    code, out, err = await reissue(
        stack,
        "case",
        "report",
        "--card",
        card,
        "--name",
        "赵六",
        "--resident-id",
        resident_id,
        "--mobile",
        "13700001111",
        "--district",
        "500101",
        "--category",
        "retiree",
        "--channel",
        "hotline_12393",
    )
    assert code == 0, err
    case = stack.client.case_id_for(card)
    assert f"Opened case {case}" in out
    await stack.wait_for(case, Stage.AWAITING_MATERIALS)

    code, out, err = await reissue(stack, "case", "status", card, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["stage"] == "AWAITING_MATERIALS" and shown["card_masked"].endswith(card[-4:])
    assert resident_id not in out

    code, out, _ = await reissue(stack, "case", "status", case)
    assert "AWAITING_MATERIALS" in out and "liability cut-off" in out

    code, out, err = await reissue(stack, "case", "found", case, "--channel", "counter")
    assert code == 0, err
    assert "WITHDRAWN" in out
    assert await stack.card_status(card) == "active"


async def test_bad_input_names_the_fields_and_starts_nothing(stack: Stack) -> None:
    code, out, err = await reissue(
        stack,
        "case",
        "report",
        "--card",
        "A1234567",
        "--name",
        "赵六",
        "--resident-id",
        "110105194912310021",
        "--mobile",
        "13700001111",
        "--district",
        "500999",
    )
    assert code == 2
    assert "applicant.resident_id" in err and "check character" in err
    assert "district" in err and "card_number" in err
    assert "110105194912310021" not in err + out  # the refused ID is not echoed


async def test_refused_update_exits_with_the_reason(stack: Stack) -> None:
    app = await stack.application(channel="counter")
    case = (await stack.client.report_loss(app)).workflow_id
    await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    code, _, err = await reissue(stack, "case", "found", case)
    assert code == 3 and "formal" in err
    code, out, err = await reissue(
        stack, "case", "submit", case, "--standard-set", "--mode", "instant"
    )
    assert code == 0, err
    await stack.wait_for(case, Stage.UNDER_REVIEW)
    code, out, err = await reissue(
        stack,
        "case",
        "review",
        case,
        "approve",
        "--reviewer",
        "rev-5",
        "--waive-fee",
        "--waiver-reason",
        "hardship",
    )
    assert code == 0, err
    assert "approve" in out
    await stack.wait_for(case, Stage.READY_FOR_PICKUP)


async def test_a_new_user_enrols_a_card_reports_it_and_a_counter_makes_it_formal(
    stack: Stack,
) -> None:
    """What README tells a new user to do on a dev stack, step by step."""
    resident_id = random_resident_id()
    enrol = ("registry", "enrol", "--resident-id", resident_id, "--district", "500112")
    code, out, err = await reissue(stack, *enrol, "--mobile", "1370000111")
    assert code == 2 and "mobile number must be 11 digits" in err
    code, out, err = await reissue(stack, *enrol, "--mobile", "137-0000-1111")
    assert code == 0, err
    card = out.strip()
    assert len(card) == 9 and await stack.card_status(card) == "active"
    # The mobile on record (one-time codes go to it) is sealed, bound to the account.
    [(account, sealed)] = await stack.rows(
        "SELECT account_id, mobile_sealed FROM insured_accounts JOIN cards USING (account_id)"
        " WHERE card_number = $1",
        card,
    )
    assert "13700001111" not in sealed
    assert open_mobile(sealed, account_id=account, secret=DEV_HASH_SECRET) == "13700001111"
    with pytest.raises(ValueError):
        open_mobile(sealed, account_id="AC" + card[:-1] + "X", secret=DEV_HASH_SECRET)

    code, out, err = await reissue(stack, "case", "id", card)
    assert code == 0, err
    case = out.strip()
    assert case == stack.client.case_id_for(card) and card not in case

    code, out, err = await reissue(
        stack,
        "case",
        "report",
        "--card",
        card,
        "--name",
        "钱七",
        "--resident-id",
        resident_id,
        "--mobile",
        "13700001111",
        "--district",
        "500112",
    )
    assert code == 0, err
    await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    code, out, err = await reissue(
        stack, "case", "formal", case, "--resident-id", random_resident_id()
    )
    assert code == 3 and "does not match the applicant" in err
    code, out, err = await reissue(stack, "case", "formal", case, "--resident-id", resident_id)
    assert code == 0, err
    assert (await stack.status(case)).report_formal
    code, out, err = await reissue(stack, "case", "show", case)
    assert "Beijing time" in out and "CQ-2026.1" in out


async def test_operations_put_a_policy_in_force(stack: Stack, tmp_path: Path) -> None:
    policy = CasePolicy(version="CQ-2027.1", temporary_report_validity=timedelta(days=10))
    path = tmp_path / "policy.json"
    path.write_text(policy.model_dump_json(), encoding="utf-8")
    code, out, err = await reissue(
        stack,
        "policy",
        "add",
        str(path),
        "--effective-from",
        (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "--district",
        "500101",
    )
    assert code == 0, err
    assert "CQ-2027.1" in out and "sha256" in out
    code, out, err = await reissue(
        stack, "policy", "add", str(path), "--effective-from", "2027-01-01T00:00:00+08:00"
    )
    assert code == 3 and "never changed" in err
    code, out, err = await reissue(stack, "policy", "list")
    assert code == 0, err
    assert "CQ-2026.1" in out and "CQ-2027.1" in out and "500101" in out
    _, case, _ = await stack.open_case(district="500101")
    assert (await stack.status(case)).policy_version == "CQ-2027.1"


async def test_api_keys_are_shown_once_and_stored_hashed(stack: Stack) -> None:
    code, out, err = await reissue(stack, "api-key", "create", "hotline")
    assert code == 0, err
    key = out.strip()
    assert key.startswith("rk_")
    _, key_id, secret = key.split("_", 2)
    row = await stack.rows(
        "SELECT key_sha256, partner, scopes FROM api_credentials WHERE key_id = $1", key_id
    )
    assert row and row[0]["partner"] == "hotline"
    assert secret not in row[0]["key_sha256"]  # only its hash is kept
    assert set(row[0]["scopes"]) == {"report", "card_found", "status"}
    code, out, err = await reissue(stack, "api-key", "create", "unit_portal")
    assert code == 2 and "org_code" in err  # a portal acts only for its own code
    code, out, err = await reissue(stack, "api-key", "create", "root")
    assert code == 2 and "partner: one of" in err
    # The channel a report is made on, and the clerk a dev key acts for, are the key's.
    code, out, err = await reissue(stack, "api-key", "create", "hotline", "--channel", "counter")
    assert code == 2 and "channel: a hotline credential reports on" in err
    code, out, err = await reissue(
        stack, "api-key", "create", "counter", "--acts-for", "Counter-05"
    )
    assert code == 0, err
    code, out, err = await reissue(
        stack, "api-key", "create", "hotline", "--channel", "hotline_12393"
    )
    assert code == 0, err
    rows = await stack.rows(
        "SELECT partner, channel, acts_for FROM api_credentials ORDER BY created_at, key_id"
    )
    assert sorted(tuple(r) for r in rows) == [
        ("counter", "counter", "counter-05"),
        ("hotline", "hotline_12333", None),
        ("hotline", "hotline_12393", None),
    ]


async def test_staff_users_are_added_with_hashed_passwords_and_disabled(stack: Stack) -> None:
    password = b"a long staff password\n"
    code, out, err = await reissue(
        stack,
        "staff-user",
        "add",
        "Li-Reviewer",
        "--role",
        "reviewer",
        "--password-stdin",
        stdin=password,
    )
    assert code == 0, err
    assert out.strip() == "li-reviewer: reviewer"
    row = await stack.rows("SELECT user_id, roles, password_argon2 FROM staff_users")
    assert [(r["user_id"], r["roles"]) for r in row] == [("li-reviewer", ["reviewer"])]
    assert row[0]["password_argon2"].startswith("$argon2id$")
    assert b"long staff" not in row[0]["password_argon2"].encode()
    code, _, err = await reissue(stack, "staff-user", "add", "x1", "--role", "root", "--sso")
    assert code == 2 and "role: one of" in err
    code, _, err = await reissue(
        stack,
        "staff-user",
        "add",
        "wang.sup",
        "--role",
        "supervisor",
        "--sso",
        "--oidc-subject",
        "https://sso.internal.example/realms/staff 1234",
    )
    assert code == 0, err
    assert await stack.one(
        "SELECT password_argon2 IS NULL AND oidc_subject LIKE '% 1234'"
        " FROM staff_users WHERE user_id = 'wang.sup'"
    )
    code, _, err = await reissue(stack, "staff-user", "disable", "LI-REVIEWER")
    assert code == 0, err
    code, _, err = await reissue(stack, "staff-user", "disable", "li-reviewer")
    assert code == 1
    assert await stack.one(
        "SELECT disabled_at IS NOT NULL FROM staff_users WHERE user_id = 'li-reviewer'"
    )


async def test_a_failed_production_and_the_supervisor_s_reorder_from_the_command_line(
    stack: Stack,
) -> None:
    await stack.use_policy(max_production_reorders=0)
    _, case, report = await stack.open_case(channel="counter")
    await stack.submit(case, report)
    await stack.approve(case, waive_fee=True, waiver_reason="hardship")
    order = (await stack.wait_for(case, Stage.CARD_PRODUCTION)).production_order_id
    assert order is not None
    code, _, err = await reissue(
        stack, "case", "reorder", case, "--supervisor", "sup-1", "--reason", "early"
    )
    assert code == 3 and "allowed only after the bureau failed" in err
    code, _, err = await reissue(
        stack, "case", "production-failed", case, "--order", order, "--reason", "chip failed"
    )
    assert code == 0, err
    for _ in range(300):
        if "production_failed" in (await stack.status(case)).flags:
            break
        await asyncio.sleep(0.1)
    code, out, err = await reissue(
        stack, "case", "reorder", case, "--supervisor", "sup-1", "--reason", "printer fixed"
    )
    assert code == 0, err
    assert "CARD_PRODUCTION" in out
    st = await stack.status(case)
    assert st.failed_production_orders == [order] and st.production_order_id != order


async def test_every_event_command_takes_the_whole_event_as_json(stack: Stack) -> None:
    _, case, _ = await stack.open_case()
    code, _, err = await reissue(stack, "case", "cancel", case, "--operator", "ops-1")
    assert code == 2 and "reason" in err  # the missing field is named; nothing is sent
    event = b'{"operator": "ops-1", "reason": "duplicate_case"}'
    code, out, err = await reissue(stack, "case", "cancel", case, "--json", "-", stdin=event)
    assert code == 0, err
    assert "Case ended: CANCELLED" in out
