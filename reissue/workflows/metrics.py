"""Business metrics of the cases, through the Temporal SDK's metric meter (served with
the SDK's own metrics, on the worker's Prometheus endpoint). The SDK does not emit
them while a workflow replays, and they issue no commands: adding one changes no
history. Attributes are low-cardinality facts (outcome, stage, district, kind),
never anything about a person."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

__all__ = ["CaseMetrics"]


class CaseMetrics:
    """The instruments one case reports to."""

    def __init__(self) -> None:
        meter = workflow.metric_meter()
        self._opened = meter.create_counter(
            "reissue_cases_opened", "Cases opened (loss reported, card frozen)"
        )
        self._closed = meter.create_counter("reissue_cases_closed", "Cases closed, by outcome")
        self._stage = meter.create_histogram_timedelta(
            "reissue_stage_duration", "Time a case spent in a stage", unit="ms"
        )
        self._sla = meter.create_counter("reissue_sla_breaches", "Review SLAs breached")
        self._reminders = meter.create_counter("reissue_reminders", "Reminders sent, by kind")
        self._anomalies = meter.create_counter(
            "reissue_anomalies", "Partner reports a case could not accept, by kind"
        )
        self._production_failures = meter.create_counter(
            "reissue_production_failures", "Card productions the bureau reported failed"
        )

    def opened(self, *, district: str, channel: str) -> None:
        self._opened.add(1, {"district": district, "channel": channel})

    def closed(self, *, outcome: str, district: str) -> None:
        self._closed.add(1, {"outcome": outcome, "district": district})

    def left_stage(self, stage: str, spent: timedelta) -> None:
        self._stage.record(spent, {"stage": stage})

    def sla_breached(self, *, district: str) -> None:
        self._sla.add(1, {"district": district})

    def reminded(self, kind: str) -> None:
        self._reminders.add(1, {"kind": kind})

    def anomaly(self, kind: str) -> None:
        self._anomalies.add(1, {"kind": kind})

    def production_failed(self, *, district: str) -> None:
        self._production_failures.add(1, {"district": district})
