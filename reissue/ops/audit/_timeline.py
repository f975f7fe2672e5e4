"""A case's timeline: its history told as the story of the case, for auditors (export)
and the console."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter

from reissue.ops.audit._history import HistoryReader, typed
from reissue.schemas import story
from reissue.schemas.activities import definitions
from reissue.schemas.clock import BEIJING, beijing
from reissue.schemas.identifiers import (
    mask_card_id_code,
    mask_card_number,
    mask_mobile,
    mask_name,
    mask_personal_text,
    mask_resident_id,
)
from reissue.schemas.labels import Label
from reissue.schemas.reasons import known, label
from reissue.schemas.timeline import TimelineLine, line

__all__ = ["Entry", "Timeline", "build_timeline", "export"]


@dataclass(frozen=True)
class Entry:
    """One line of the story: when, who, what; `said` is the line as a sentence a
    reviewer reads (None: a line only an auditor needs), `by` who acted, in words."""

    at: datetime
    actor: str
    what: str
    detail: str = ""
    said: Label | None = None
    by: Label | None = None


@dataclass
class Timeline:
    workflow_id: str
    run_id: str
    entries: list[Entry] = field(default_factory=list)
    policy_version: str = "?"
    outcome: str = "open"

    def to_markdown(self) -> str:
        lines = [
            f"# Case {self.workflow_id}",
            "",
            f"- Run: `{self.run_id}`",
            f"- Policy in force: **{self.policy_version}**",
            f"- Outcome: **{self.outcome}**",
            "",
            "| time (Beijing, UTC+8) | actor | event | detail |",
            "|---|---|---|---|",
        ]
        for e in self.entries:
            cells = [_local(e.at), e.actor, e.what, e.detail]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        rows = "\n".join(
            f"<tr><td>{_local(e.at)}</td><td>{html.escape(e.actor)}</td>"
            f"<td>{html.escape(e.what)}</td><td>{html.escape(e.detail)}</td></tr>"
            for e in self.entries
        )
        title = html.escape(f"Case {self.workflow_id}")
        return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #ccc; padding: .3rem .5rem; vertical-align: top; text-align: left; }}
th {{ background: #f0f0f0; }}
</style></head><body>
<h1>{title}</h1>
<p>Run <code>{html.escape(self.run_id)}</code> · policy in force
<b>{html.escape(self.policy_version)}</b> · outcome <b>{html.escape(self.outcome)}</b></p>
<table><thead><tr><th>time (Beijing, UTC+8)</th><th>actor</th><th>event</th><th>detail</th></tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
"""


def _local(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _mask_applicant(applicant: dict[str, Any], *, unmask: bool) -> str:
    if unmask:
        return f"{applicant['name']}, ID {applicant['resident_id']}, mobile {applicant['mobile']}"
    return (
        f"{mask_name(applicant['name'])}, ID {mask_resident_id(applicant['resident_id'])}, "
        f"mobile {mask_mobile(applicant['mobile'])}"
    )


def _card(value: Any) -> str:
    return mask_card_number(str(value)) if value else "-"


def _step_line(name: str, arg: Any, result: Any) -> tuple[TimelineLine | None, Label | None]:
    """What a completed step says on the timeline, as its definition tells it (None: the
    timeline does not show it), and its sentence for a reader; a step this code does not
    define, or whose payloads cannot be read, still shows that it was done."""
    activity = definitions().get(name)
    if activity is None:
        done = TimelineLine("?", f"Activity {name} completed", "not an activity of this version")
        return done, Label("完成了一个旧版本的步骤", "A step of an older version completed")
    if not activity.on_timeline:
        return None, None
    read = typed(activity, arg, result)
    if read is None:
        return TimelineLine(
            "?", f"Activity {name} completed", "input or result not readable (encrypted or invalid)"
        ), Label("完成了一个步骤（内容已加密）", "A step completed (its content is encrypted)")
    return line(activity, *read), story.said(activity, *read)


def _applicant_story(applicant: dict[str, Any], *, unmask: bool) -> str:
    """The applicant as a reader's sentence names them (masked unless unmasked)."""
    name, rid, mobile = applicant["name"], applicant["resident_id"], applicant["mobile"]
    if not unmask:
        name, rid, mobile = mask_name(name), mask_resident_id(rid), mask_mobile(mobile)
    return f"{name}（{rid}，{mobile}）"


# Personal data an event may carry, and how each is masked in a timeline.
_MASKS = {
    "resident_id": mask_resident_id,
    "name": mask_name,
    "mobile": mask_mobile,
    "card_number": mask_card_number,
    "new_card_number": mask_card_number,
    "card_id_code": mask_card_id_code,
}
_REASON_KEYS = ("reason", "reasons")


def _labelled(value: Any) -> Any:
    """A reason's code as its label (what it is in words), free text as it is."""
    if isinstance(value, list):
        return [_labelled(v) for v in value]
    return label(reason) if (reason := known(value)) else value


def _masked(value: Any) -> Any:
    """`value` with every personal field masked, however deep."""
    if isinstance(value, dict):
        return {k: _MASKS[k](str(v)) if k in _MASKS and v else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _event_input(arg: Any, *, unmask: bool = False) -> str:
    """An update's or signal's input as a timeline shows it: personal data masked
    (unless an auditor unmasked it), documents by type."""
    if not isinstance(arg, dict):
        return "(payload not readable without the decryption key)"
    shown = {
        k: _labelled(v) if k in _REASON_KEYS else v
        for k, v in arg.items()
        if k not in ("documents", "letter")
    }
    if not unmask:
        shown = _masked(shown)
    if "documents" in arg:
        shown["documents"] = [d.get("type") for d in arg["documents"]]
    return json.dumps(shown, ensure_ascii=False, default=str)


def _shown(arg: Any, *, unmask: bool) -> Any:
    """An event's input as a reader's sentence may use it: personal data masked (unless
    unmasked), documents by type."""
    if not isinstance(arg, dict):
        return arg
    shown = dict(arg) if unmask else _masked(arg)
    if "documents" in arg:
        shown["documents"] = [d.get("type") for d in arg["documents"]]
    return shown


def _actor_of(arg: Any) -> str:
    if not isinstance(arg, dict):
        return "?"
    for key in (
        "reviewer",
        "operator",
        "staff_id",
        "supervisor",
        "received_by",
        "responder",
        "handed_over_by",
        "channel",
    ):
        if arg.get(key):
            return str(arg[key])
    return "external system"


async def build_timeline(
    history: WorkflowHistory, converter: DataConverter, *, unmask: bool = False
) -> Timeline:
    """The story of a case from its history."""
    dec = HistoryReader(converter)
    first = history.events[0]
    timeline = Timeline(
        workflow_id=history.workflow_id,
        run_id=first.workflow_execution_started_event_attributes.original_execution_run_id,
    )
    timers: dict[int, str] = {}
    updates: dict[str, str] = {}
    stage = None

    def add(
        event: HistoryEvent,
        actor: str,
        what: str,
        detail: str = "",
        *,
        said: Label | None,
        name: str | None = None,
    ) -> None:
        # Free text (a note, a reason someone typed) may hold an ID or mobile number.
        shown = detail if unmask else mask_personal_text(detail)
        if said is not None and not unmask:
            said = Label(mask_personal_text(said.zh), mask_personal_text(said.en))
        at = event.event_time.ToDatetime(tzinfo=UTC)
        by = story.actor(actor, event=name) if said is not None else None
        timeline.entries.append(Entry(at, actor, what, shown, said, by))

    for ev in history.events:
        t = ev.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            inp = await dec.one(ev.workflow_execution_started_event_attributes.input.payloads)
            if isinstance(inp, dict) and "applicant" in inp:
                # Cases started before the policy table carried it in their input.
                given = (inp.get("policy") or {}).get("version")
                timeline.policy_version = given or timeline.policy_version
                aff = inp.get("affiliation") or {"kind": "none"}
                add(
                    ev,
                    str(inp.get("channel")),
                    f"Loss of card {_card(inp.get('card_number'))} reported",
                    f"applicant {_mask_applicant(inp['applicant'], unmask=unmask)}; "
                    f"{inp.get('insured_category')}; district {inp.get('district')}; "
                    f"affiliation {aff.get('kind')} {aff.get('name', '')}"
                    + (f"; policy {given}" if given else ""),
                    said=story.loss_reported(
                        inp, _applicant_story(inp["applicant"], unmask=unmask)
                    ),
                )
            else:
                add(
                    ev,
                    "?",
                    "Case started",
                    "input not readable (encrypted or invalid)",
                    said=Label("案件开始（内容已加密）", "Case started (its content is encrypted)"),
                )
        elif step := await dec.step(ev):
            told, said = _step_line(*step)
            if told is not None:
                timeline.policy_version = told.policy_in_force or timeline.policy_version
                add(ev, told.actor, told.what, told.detail, said=said)
        elif t in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        ):
            attrs = (
                ev.activity_task_failed_event_attributes
                if t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                else ev.activity_task_timed_out_event_attributes
            )
            kind = dec.scheduled(attrs.scheduled_event_id)
            add(ev, "system", f"Activity {kind} failed", attrs.failure.message, said=None)
        elif t == EventType.EVENT_TYPE_TIMER_STARTED:
            timer = ev.timer_started_event_attributes
            summary = (
                await dec.text(ev.user_metadata.summary) if ev.HasField("user_metadata") else None
            )
            label = summary or "timer"
            fires = ev.event_time.ToDatetime(tzinfo=UTC) + timer.start_to_fire_timeout.ToTimedelta()
            timers[ev.event_id] = label
            add(
                ev,
                "system",
                f"Deadline set: {label}",
                f"fires {beijing(fires, seconds=True)}",
                said=story.deadline(label, fires=fires),
            )
        elif t == EventType.EVENT_TYPE_TIMER_FIRED:
            label = timers.get(ev.timer_fired_event_attributes.started_event_id, "timer")
            add(ev, "system", f"Deadline reached: {label}", said=story.deadline(label, fires=None))
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signal = ev.workflow_execution_signaled_event_attributes
            arg = await dec.one(signal.input.payloads)
            add(
                ev,
                _actor_of(arg),
                f"Signal {signal.signal_name}",
                _event_input(arg, unmask=unmask),
                said=story.event(signal.signal_name, _shown(arg, unmask=unmask)),
                name=signal.signal_name,
            )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            req = ev.workflow_execution_update_accepted_event_attributes.accepted_request
            updates[req.meta.update_id] = req.input.name
            arg = await dec.one(req.input.args.payloads)
            add(
                ev,
                _actor_of(arg),
                f"Update {req.input.name} accepted",
                _event_input(arg, unmask=unmask),
                said=story.event(req.input.name, _shown(arg, unmask=unmask)),
            )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            answered = ev.workflow_execution_update_completed_event_attributes
            name = updates.get(answered.meta.update_id, "update")
            if answered.outcome.HasField("failure"):
                message = answered.outcome.failure.message
                add(
                    ev,
                    "system",
                    f"Update {name} refused",
                    message,
                    said=story.refused(name, message),
                )
            else:
                result = await dec.one(answered.outcome.success.payloads)
                add(
                    ev,
                    "system",
                    f"Update {name} answered",
                    json.dumps(
                        result if unmask else _masked(result), ensure_ascii=False, default=str
                    ),
                    said=None,
                )
        elif t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = ev.upsert_workflow_search_attributes_event_attributes.search_attributes
            raw = fields.indexed_fields.get("CaseStage")
            if raw is not None:
                new_stage = json.loads(raw.data)
                if new_stage != stage:
                    stage = new_stage
                    add(ev, "system", f"Stage → {new_stage}", said=story.stage_entered(new_stage))
            sla = fields.indexed_fields.get("SlaBreached")
            if sla is not None and json.loads(sla.data) is True and "sla" not in timers.values():
                timers[-1] = "sla"
                add(
                    ev,
                    "system",
                    "Review SLA breached",
                    "supervisor notified",
                    said=story.sla_breached(),
                )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            res = await dec.one(ev.workflow_execution_completed_event_attributes.result.payloads)
            if isinstance(res, dict):
                timeline.outcome = str(res.get("outcome"))
                add(
                    ev,
                    "system",
                    f"Case closed: {res.get('outcome')}",
                    str(res.get("reason")),
                    said=story.case_closed(res.get("outcome")),
                )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            failure = ev.workflow_execution_failed_event_attributes.failure
            timeline.outcome = "failed"
            add(
                ev,
                "system",
                "Case failed",
                failure.message,
                said=story.case_failed(failure.message),
            )
    return timeline


async def export(
    client: Client, workflow_id: str, out: Path, *, unmask: bool = False
) -> list[Path]:
    """Write <id>.history.json, <id>.timeline.md and <id>.timeline.html into `out`."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    timeline = await build_timeline(history, client.data_converter, unmask=unmask)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        out / f"{workflow_id}.history.json": history.to_json(),
        out / f"{workflow_id}.timeline.md": timeline.to_markdown(),
        out / f"{workflow_id}.timeline.html": timeline.to_html(),
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)
