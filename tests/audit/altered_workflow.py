"""A deliberately non-deterministic change to the case workflow, for replay tests.

It waits a minute before registering the loss: a new timer command where the
recorded histories have an activity. Shipped without a `workflow.patched` guard,
this is exactly the change replay must catch before a deploy.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.case import CaseResult
    from reissue.workflows.case import CardReissueWorkflow


@workflow.defn(name="CardReissueWorkflow")
class AlteredCardReissueWorkflow(CardReissueWorkflow):
    @workflow.run
    async def run(self, raw: RawValue) -> CaseResult:
        await workflow.sleep(timedelta(minutes=1))
        return await super().run(raw)
