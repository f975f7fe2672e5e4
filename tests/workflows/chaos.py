"""The chaos programs (`reissue.devtools.chaos`) against the fakes: the card bureau's
report and the counter's hand-over read the fakes' records instead of PostgreSQL, and a
program settles once nothing is in flight (the fakes know their own steps, local ones
included)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reissue.devtools.chaos import CaseProgram, ChaosDriver
from reissue.schemas.case import CaseInput, CaseStatus
from tests.workflows.harness import FakeStack

__all__ = ["FakeChaosDriver"]


@dataclass
class FakeChaosDriver(ChaosDriver):
    cases: FakeStack | None = None

    @classmethod
    def on(cls, cases: FakeStack) -> FakeChaosDriver:
        return cls(cases.client, None, jump=cases.fast_forward, cases=cases)  # type: ignore[arg-type]

    async def settle(self, case: str, *, timeout: float = 30) -> CaseStatus | None:
        assert self.cases is not None
        return await self.cases.settle(case, timeout=timeout)

    async def _act(self, case: str, app: CaseInput, program: CaseProgram, action: str) -> None:
        if action not in ("produced", "collected"):
            return await super()._act(case, app, program, action)
        assert self.cases is not None
        f = self.cases.fakes
        st = await self._status(case)
        if action == "produced":
            if st.production_order_id is None:
                return None
            report: dict[str, Any] = {
                "order_id": st.production_order_id,
                "new_card_number": f.next_card_number(),
                "produced_at": datetime.now(UTC),
            }
            await self.client.card_produced(case, report)
            return None
        made = [p.new_card_number for p in f.productions_of(st.case_id) if p.status == "produced"]
        if made and made[0]:
            await self.client.card_collected(
                case, {"new_card_number": made[0], "handed_over_by": "counter-1"}
            )
        return None
