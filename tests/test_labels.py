"""The catalogue of labels: every value of every enum a person may read has its words in
both languages, every district its name, every notice its title; every step a case's
timeline shows has its sentence, and no sentence the recorded cases tell holds a code."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import asyncpg
import pytest

from reissue.activities.notifications import TEMPLATES, render
from reissue.ops.audit import build_timeline, load_history_file
from reissue.schemas import labels, story
from reissue.schemas.activities import definitions
from reissue.schemas.enums import (
    AffiliationKind,
    AwaitingParty,
    CaseFlag,
    Channel,
    DocumentType,
    FeeExemption,
    InsuredCategory,
    ProductionMode,
    Recipient,
    ReviewVerdict,
    Stage,
)
from reissue.schemas.identifiers import CURRENT_DISTRICTS
from tests.console.test_worklist import raw_codes
from tests.support import TEST_CONVERTER

CJK = re.compile(r"[\u4e00-\u9fff]")
CORPUS = Path(__file__).resolve().parent / "histories"


@pytest.mark.parametrize(
    ("enum", "catalogue"),
    [
        (Stage, labels.STAGES),
        (AwaitingParty, labels.AWAITING),
        (InsuredCategory, labels.CATEGORIES),
        (Channel, labels.CHANNELS),
        (DocumentType, labels.DOCUMENTS),
        (ReviewVerdict, labels.VERDICTS),
        (FeeExemption, labels.EXEMPTIONS),
        (ProductionMode, labels.MODES),
        (Recipient, labels.RECIPIENTS),
        (CaseFlag, labels.FLAGS),
        (AffiliationKind, labels.AFFILIATION_KINDS),
    ],
)
def test_every_value_has_its_words_in_both_languages(
    enum: type[StrEnum], catalogue: dict[StrEnum, labels.Label]
) -> None:
    assert set(catalogue) == set(enum)
    for value, label in catalogue.items():
        assert CJK.search(label.zh) and label.en.strip(), value
        assert raw_codes(label.zh) == [] and raw_codes(label.en) == [], value


def test_what_a_case_waits_for_is_said_in_words_for_every_stage_and_party() -> None:
    for stage in Stage:
        for party in AwaitingParty:
            said = labels.waiting_for(stage, party)
            assert CJK.search(said.zh) and raw_codes(str(said)) == [], (stage, party)


def test_districts_by_name_from_the_packaged_division_codes() -> None:
    for code in CURRENT_DISTRICTS:
        name = labels.district(code)
        assert name.zh == CURRENT_DISTRICTS[code] and name.en.endswith(("District", "County"))
    assert str(labels.district("500108")) == "南岸区 · Nan'an District"
    assert labels.district("500222").zh == "綦江县（旧区划 500222）"
    assert labels.district("600999").en == "division 600999"


def test_every_notice_has_its_title() -> None:
    assert set(labels.NOTICES) == set(TEMPLATES)


def test_every_step_the_timeline_shows_has_its_sentence() -> None:
    shown = {d for d in definitions().values() if d.on_timeline}
    assert shown - story.told() == set()


async def test_no_sentence_of_the_recorded_cases_holds_a_code() -> None:
    """Every sentence the 1.0.0 corpus tells, in Chinese (the English of a refusal or a
    failure quotes the case's own message, for engineers)."""
    found = []
    for path in sorted(CORPUS.rglob("*.json")):
        timeline = await build_timeline(load_history_file(path), TEST_CONVERTER)
        for e in timeline.entries:
            if e.said is not None:
                assert e.by is not None
                codes = raw_codes(e.said.zh) + raw_codes(e.by.zh)
                found += [f"{path.name}: {e.said.zh} {codes}"] if codes else []
    assert found == []


def test_notices_name_the_district() -> None:
    text = render("review_sla_breached", {"case": "reissue-0", "district": "500108", "sla": "5 天"})
    assert "南岸区" in text and "500108" not in text


def test_every_event_into_the_case_has_its_words() -> None:
    from reissue.schemas import contract

    assert {e.name for e in contract.EVENTS} <= set(story.EVENTS)


async def test_every_state_a_loss_report_can_be_in_has_its_words(pool: asyncpg.Pool) -> None:
    """The proof of a loss report prints its state in the registry: each one the
    registry's own rule allows (migrations may add one) has its words."""
    rule = await pool.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conname = 'loss_reports_status_check'"
    )
    states = set(re.findall(r"'([a-z_]+)'", rule))
    assert "open" in states, rule
    assert set(labels.REPORT_STATES) == states
    for state, label in labels.REPORT_STATES.items():
        assert CJK.search(label.zh) and label.en.strip(), state


def test_a_card_number_is_masked_even_in_an_unmasked_story() -> None:
    """An auditor's unmasked case page shows the applicant, never a whole card number:
    the handover's sentence masks the new card as every step's sentence does."""
    said = story.event(
        "card_collected", {"new_card_number": "A12345678", "handed_over_by": "counter-01"}
    )
    assert said is not None
    for text in (said.zh, said.en):
        assert "A12345678" not in text and "*****5678" in text and "counter-01" in text
