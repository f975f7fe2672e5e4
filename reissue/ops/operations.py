"""What the operations console reads from Temporal visibility: case lists, the morning report.

Every filter becomes a Web UI query string, so what the CLI shows an operator can
paste into the UI and see the same cases.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import SearchAttributeIndexedValueType

from reissue.client._client import WORKFLOW_TYPE
from reissue.schemas.clock import beijing
from reissue.schemas.enums import AwaitingParty, Stage
from reissue.schemas.visibility import (
    ALL_KEYS,
    ASSIGNED_TO,
    AWAITING_PARTY,
    CASE_STAGE,
    CORRECTION_ROUND,
    DISTRICT,
    INSURED_CATEGORY,
    NEXT_DEADLINE,
    SLA_BREACHED,
)

__all__ = [
    "AGE_BUCKETS",
    "CaseFilter",
    "CaseRow",
    "Report",
    "build_report",
    "ensure_search_attributes",
    "list_cases",
]

AGE_BUCKETS = (("0–3 days", 0, 3), ("4–7 days", 4, 7), ("8–30 days", 8, 30), (">30 days", 31, None))


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CaseFilter:
    """Filters an operator applies to the case list."""

    stage: Stage | None = None
    district: str | None = None
    awaiting: AwaitingParty | None = None
    assigned_to: str | None = None
    unclaimed: bool = False
    overdue: bool = False
    sla_breached: bool | None = None
    older_than_days: int | None = None
    review_due_before: datetime | None = None
    include_closed: bool = False
    task_queue: str | None = None

    def query(self, *, now: datetime) -> str:
        """The visibility query, exactly as it can be pasted into the Web UI."""
        parts = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
        if self.task_queue:
            parts.append(f"TaskQueue = '{self.task_queue}'")
        if not self.include_closed:
            parts.append("ExecutionStatus = 'Running'")
        if self.stage:
            parts.append(f"CaseStage = '{self.stage.value}'")
        if self.district:
            parts.append(f"District = '{self.district}'")
        if self.awaiting:
            parts.append(f"AwaitingParty = '{self.awaiting.value}'")
        if self.assigned_to:
            parts.append(f"AssignedTo = '{self.assigned_to}'")
        if self.unclaimed:
            parts.append("AssignedTo IS NULL")
        if self.overdue:
            parts.append(f"NextDeadline < '{_ts(now)}'")
        if self.sla_breached is not None:
            parts.append(f"SlaBreached = {'true' if self.sla_breached else 'false'}")
        if self.review_due_before is not None:
            parts.append(f"ReviewDueAt < '{_ts(self.review_due_before)}'")
        if self.older_than_days is not None:
            parts.append(f"StartTime < '{_ts(now - timedelta(days=self.older_than_days))}'")
        return " AND ".join(parts)


@dataclass(frozen=True)
class CaseRow:
    """One case as visibility sees it (no personal data: none is indexed)."""

    workflow_id: str
    stage: str
    awaiting: str
    district: str
    category: str
    correction_round: int
    sla_breached: bool
    assigned_to: str | None
    deadline: datetime | None
    started: datetime
    closed: bool

    @classmethod
    def of(cls, wf: WorkflowExecution) -> CaseRow:
        sa = wf.typed_search_attributes
        return cls(
            workflow_id=wf.id,
            stage=sa.get(CASE_STAGE) or "?",
            awaiting=sa.get(AWAITING_PARTY) or "-",
            district=sa.get(DISTRICT) or "-",
            category=sa.get(INSURED_CATEGORY) or "-",
            correction_round=sa.get(CORRECTION_ROUND) or 0,
            sla_breached=bool(sa.get(SLA_BREACHED)),
            assigned_to=sa.get(ASSIGNED_TO),
            deadline=sa.get(NEXT_DEADLINE),
            started=wf.start_time,
            closed=wf.status is not WorkflowExecutionStatus.RUNNING,
        )

    def age_days(self, now: datetime) -> int:
        return (now - self.started).days


async def list_cases(client: Client, query: str, *, limit: int | None = None) -> list[CaseRow]:
    rows: list[CaseRow] = []
    async for wf in client.list_workflows(query, limit=limit):
        rows.append(CaseRow.of(wf))
    return rows


@dataclass
class Report:
    """The supervisor's morning figures."""

    generated_at: datetime
    query: str
    by_stage: Counter[str] = field(default_factory=Counter)
    by_district: Counter[str] = field(default_factory=Counter)
    by_stage_district: Counter[tuple[str, str]] = field(default_factory=Counter)
    sla_breached_open: int = 0
    sla_breached_total: int = 0
    ageing: Counter[str] = field(default_factory=Counter)
    total: int = 0

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["section", "key", "district", "count"])
        for (stage, district), n in sorted(self.by_stage_district.items()):
            w.writerow(["stage_by_district", stage, district, n])
        for stage, n in sorted(self.by_stage.items()):
            w.writerow(["stage", stage, "", n])
        for district, n in sorted(self.by_district.items()):
            w.writerow(["district", district, "", n])
        w.writerow(["sla_breached", "open", "", self.sla_breached_open])
        w.writerow(["sla_breached", "all", "", self.sla_breached_total])
        for label, _, _ in AGE_BUCKETS:
            w.writerow(["ageing_open", label, "", self.ageing[label]])
        w.writerow(["total", "cases", "", self.total])
        return out.getvalue()

    def to_png(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        stages = [s.value for s in Stage if self.by_stage[s.value]]
        districts = sorted(self.by_district)
        fig, (left, right) = plt.subplots(
            1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [3, 1.4]}
        )
        bottom = [0] * len(districts)
        colours = plt.get_cmap("tab20")
        for i, stage in enumerate(stages):
            counts = [self.by_stage_district[(stage, d)] for d in districts]
            left.bar(districts, counts, bottom=bottom, label=stage, color=colours(i))
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        left.set_title("Cases by district and stage")
        left.set_xlabel("district code")
        left.set_ylabel("cases")
        left.tick_params(axis="x", rotation=45)
        left.legend(fontsize=8, ncols=2)
        left.yaxis.set_major_locator(MaxNLocator(integer=True))
        labels = [label for label, _, _ in AGE_BUCKETS]
        right.bar(labels, [self.ageing[label] for label in labels], color="#4c72b0")
        right.set_title(
            f"Open cases by age · SLA breaches: {self.sla_breached_open} open, "
            f"{self.sla_breached_total} in all",
            fontsize=10,
        )
        right.set_ylabel("open cases")
        right.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.suptitle(f"Card reissue cases — {self.total} in all — {beijing(self.generated_at)}")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _bucket(days: int) -> str:
    for label, low, high in AGE_BUCKETS:
        if days >= low and (high is None or days <= high):
            return label
    return AGE_BUCKETS[-1][0]


async def build_report(client: Client, query: str, *, now: datetime) -> Report:
    report = Report(generated_at=now, query=query)
    for row in await list_cases(client, query):
        report.total += 1
        report.by_stage[row.stage] += 1
        report.by_district[row.district] += 1
        report.by_stage_district[(row.stage, row.district)] += 1
        if row.sla_breached:
            report.sla_breached_total += 1
            report.sla_breached_open += not row.closed
        if not row.closed:
            report.ageing[_bucket(row.age_days(now))] += 1
    return report


_PROTO_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.BOOL: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    SearchAttributeIndexedValueType.INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    SearchAttributeIndexedValueType.DATETIME: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}


async def ensure_search_attributes(client: Client) -> tuple[list[str], list[str]]:
    """Register the custom search attributes on the client's namespace; (added, already there).

    Safe to run again: attributes that exist with the right type are left alone;
    one that exists with another type is an error an operator must resolve.
    """
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    have = dict(existing.custom_attributes)
    missing: dict[str, IndexedValueType.ValueType] = {}
    present: list[str] = []
    for key in ALL_KEYS:
        want = _PROTO_TYPES[key.indexed_value_type]
        if key.name in have:
            if have[key.name] != want:
                raise SystemExit(
                    f"search attribute {key.name} exists with another type "
                    f"({IndexedValueType.Name(have[key.name])}); expected "
                    f"{IndexedValueType.Name(want)}"
                )
            present.append(key.name)
        else:
            missing[key.name] = want
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing), present
