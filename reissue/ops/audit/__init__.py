"""Audit a case: export its history and timeline, replay it against today's code, verify it.

The history is Temporal's own record, in the JSON format the Temporal CLI and
Web UI use. The timeline turns it into the story of the case: every stage,
actor, decision with its reasons, deadline, reminder, escalation, payment and
card event, with the policy version in force. Personal data is masked unless
the auditor asks for it and can decode the payloads.
"""

from __future__ import annotations

from reissue.ops.audit._history import LOCAL_ACTIVITY_MARKER, HistoryReader
from reissue.ops.audit._replay import ReplayOutcome, load_history_file, replay
from reissue.ops.audit._timeline import Entry, Timeline, build_timeline, export
from reissue.ops.audit._verify import verify

__all__ = [
    "LOCAL_ACTIVITY_MARKER",
    "Entry",
    "HistoryReader",
    "ReplayOutcome",
    "Timeline",
    "build_timeline",
    "export",
    "load_history_file",
    "replay",
    "verify",
]
