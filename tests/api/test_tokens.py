"""Production authentication: OAuth2 client-credentials access tokens (JWTs) verified
against the identity provider's JWKS, served here over HTTP. API keys are refused
when the app takes tokens only."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from reissue.api.app import build_app
from reissue.api.credentials import TokenVerifier, create_key
from tests.api.conftest import serving
from tests.idp import OTHER, SIGNING, jwks_served, signed
from tests.support import Stack, materials

ISSUER, AUDIENCE = "https://idp.example.test/", "card-reissue"


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    with jwks_served() as url:
        yield url


@pytest.fixture
async def api(stack: Stack, jwks_url: str) -> AsyncIterator[httpx.AsyncClient]:
    tokens = TokenVerifier(jwks_url, issuer=ISSUER, audience=AUDIENCE)
    app = build_app(stack.client, stack.pool, tokens=tokens, api_keys=False)
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=60) as http:
        yield http


def _token(key: Any = SIGNING, **claims: Any) -> dict[str, str]:
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "hotline-system",
        "partner": "hotline",
        "channel": "hotline_12333",
        "scope": "report status card_found",
    } | claims
    if "partner" in claims and "channel" not in claims:
        del body["channel"]  # only a hotline's token says which hotline by default
    token = signed(body, key)
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_acts_with_its_partner_scopes(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    r = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=_token())
    assert r.status_code == 200, r.text
    assert await stack.card_status(app.card_number) == "frozen"


async def test_expired_forged_foreign_or_keyless_calls_are_refused_and_write_nothing(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    body = app.model_dump(mode="json")
    async with stack.pool.acquire() as conn:
        dev_key = await create_key(conn, "hotline")
    refused = {
        "expired": _token(exp=int(time.time()) - 60),
        "signed by another key": _token(OTHER),
        "for another audience": _token(aud="someone-else"),
        "from another issuer": _token(iss="https://evil.example.test/"),
        "no partner kind": _token(partner="root"),
        "an API key": {"Authorization": f"Bearer {dev_key}"},
        "not a token": {"Authorization": "Bearer abc.def.ghi"},
    }
    for why, headers in refused.items():
        r = await api.post("/v1/cases", json=body, headers=headers)
        assert r.status_code == 401, (why, r.text)
    # Scopes beyond what the partner kind may have are not honoured.
    bureau = _token(partner="card_bureau", scope="report card_produced")
    r = await api.post("/v1/cases", json=body, headers=bureau)
    assert r.status_code == 403, r.text
    assert (
        await stack.one("SELECT count(*) FROM loss_reports WHERE card_number = $1", app.card_number)
        == 0
    )
    assert await stack.card_status(app.card_number) == "active"


async def test_an_operations_token_cancels_as_its_subject(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    _, case, _ = await stack.open_case()
    ops = _token(partner="operations", scope="cancel status", sub="svc-ops@clients.example")
    r = await api.post(f"/v1/cases/{case}/cancel", json={"reason": "duplicate_case"}, headers=ops)
    assert r.status_code == 200, r.text
    st = await stack.status(case)
    reason = await stack.one(
        "SELECT detail->>'reason' FROM case_events WHERE case_id = $1 AND event_type = 'case_closed'",
        st.case_id,
    )
    assert reason.startswith("cancelled by operations-") and "@" not in reason


async def test_a_token_s_channel_and_person_decide_and_a_body_cannot(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """The report's channel is the token's (a hotline token must say which hotline);
    who acted is its `act` claim's subject, or the person of a per-person token."""
    app = await stack.application(channel="counter")
    body = app.model_dump(mode="json")
    r = await api.post("/v1/cases", json=body, headers=_token())  # a hotline naming counter
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "channel", r.text
    no_line = _token(channel=None)
    assert (await api.post("/v1/cases", json=body, headers=no_line)).status_code == 401
    wrong_line = _token(channel="counter")
    assert (await api.post("/v1/cases", json=body, headers=wrong_line)).status_code == 401
    assert await stack.card_status(app.card_number) == "active"

    _, case, report = await stack.open_case()
    counter = {"partner": "counter", "channel": "counter", "scope": "submit formalise"}
    submission = materials(report).model_dump(mode="json")
    system_only = _token(sub="counter-system", **counter)
    r = await api.post(f"/v1/cases/{case}/materials", json=submission, headers=system_only)
    assert r.status_code == 403 and r.json()["type"] == "urn:reissue:problem:no-acting-person"
    for_clerk = _token(sub="counter-system", act={"sub": "counter-09"}, **counter)
    r = await api.post(f"/v1/cases/{case}/materials", json=submission, headers=for_clerk)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "received_by"
    malformed = _token(sub="counter-system", act={"sub": "<script>"}, **counter)
    r = await api.post(f"/v1/cases/{case}/materials", json=submission, headers=malformed)
    assert r.status_code == 401
    # A client-credentials token's own service account names nobody (hostile review).
    service = _token(sub="counter-system", preferred_username="service-account-counter", **counter)
    r = await api.post(
        f"/v1/cases/{case}/materials",
        json=submission | {"received_by": "service-account-counter"},
        headers=service,
    )
    assert r.status_code == 403 and r.json()["type"] == "urn:reissue:problem:no-acting-person"
    clerk_s_own = _token(sub="u-7731", preferred_username="Counter-09", **counter)
    r = await api.post(
        f"/v1/cases/{case}/materials",
        json=submission | {"received_by": "counter-09"},
        headers=clerk_s_own,
    )
    assert r.status_code == 200, r.text
    assert (await stack.status(case)).received_by == ["counter-09"]
