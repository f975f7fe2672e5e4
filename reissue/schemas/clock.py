"""Times shown to people: Beijing time with the zone named. Times are stored in UTC.

China has kept UTC+8 all year since 1991, so a fixed offset is exact for every
time this system handles, and it needs no time-zone files (the workflow sandbox
reads none).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["BEIJING", "beijing", "beijing_cn", "duration_cn", "duration_text"]

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


def beijing(at: datetime | None, *, seconds: bool = False) -> str:
    """`2026-12-03 22:07 Beijing time` (for the Web UI, console, reports); `-` for no time."""
    if at is None:
        return "-"
    return (
        at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
        + " Beijing time"
    )


def beijing_cn(at: datetime | None) -> str:
    """`2026-12-03 22:07（北京时间）` (for notices to people); `-` for no time."""
    if at is None:
        return "-"
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") + "（北京时间）"


def _parts(span: timedelta) -> tuple[int, str]:
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0:
            return seconds // size, unit
    return seconds, "second"


def duration_text(span: timedelta) -> str:
    """`3 days`, `4 hours`, `90 minutes`: a policy's duration in words."""
    n, unit = _parts(span)
    return f"{n} {unit}{'' if n == 1 else 's'}"


def duration_cn(span: timedelta) -> str:
    """`3 天`, `4 小时`, `90 分钟`: a policy's duration in a notice."""
    n, unit = _parts(span)
    return f"{n} " + {"day": "天", "hour": "小时", "minute": "分钟", "second": "秒"}[unit]
