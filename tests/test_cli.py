"""The `reissue` command line, run as a user runs it, against the test server and database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from schemas.enums import Stage
from tests.support import TEST_KEYS_SPEC, Stack, random_resident_id
from workers.seed import enrol_person
from workers.settings import DEV_HASH_SECRET

REISSUE = str(Path(sys.prefix) / "bin" / "reissue")


async def reissue(stack: Stack, *args: str) -> tuple[int, str, str]:
    env = os.environ | {
        "TEMPORAL_ADDRESS": stack.env.client.service_client.config.target_host,
        "REISSUE_TASK_QUEUE": stack.settings.task_queue,
        "DATABASE_URL": stack.settings.require_database_url(),
        "COLUMNS": "200",
        "REISSUE_CODEC_KEYS": TEST_KEYS_SPEC,
    }
    proc = await asyncio.create_subprocess_exec(
        REISSUE,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
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
