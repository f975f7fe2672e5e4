"""The words the documents print, in Chinese with English beside them.

Kept here until the console's catalogue of labels takes them (one catalogue for the
console, notices, reports and documents): categories, channels, the states of a loss
report, and districts by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from reissue.schemas.enums import Channel, InsuredCategory
from reissue.schemas.identifiers import CURRENT_DISTRICTS, HISTORIC_DISTRICTS

__all__ = ["CATEGORIES", "CHANNELS", "HOTLINES", "REPORT_STATES", "district_name"]

CATEGORIES: Final[Mapping[str, str]] = {
    InsuredCategory.URBAN_EMPLOYEE: "城镇职工 Urban employee",
    InsuredCategory.URBAN_RURAL_RESIDENT: "城乡居民 Urban and rural resident",
    InsuredCategory.STUDENT: "学生 Student",
    InsuredCategory.RETIREE: "退休人员 Retiree",
}
CHANNELS: Final[Mapping[str, str]] = {
    Channel.HOTLINE_12333: "12333 人社服务热线 Hotline 12333",
    Channel.HOTLINE_12393: "12393 医保服务热线 Hotline 12393",
    Channel.ONLINE: "网上办理 Online",
    Channel.COUNTER: "柜台办理 At a counter",
}
# `loss_reports.status`.
REPORT_STATES: Final[Mapping[str, str]] = {
    "open": "有效 In force",
    "lifted": "已解除（卡片已解冻）Lifted (the card is unfrozen)",
    "resolved_by_reissue": "已办结（已补发新卡）Resolved by the reissue",
    "closed_without_reissue": "已关闭（原卡作废）Closed (the old card is void)",
}
# FACTS: the social security card's hotline in Chongqing, and the medical security one.
HOTLINES: Final = (
    ("023-12333", "重庆人社服务热线 Human Resources and Social Security hotline"),
    ("023-12393", "重庆医保服务热线 Medical Security hotline"),
)


def district_name(code: str) -> str:
    """`渝中区 (500103)`; the code alone if it is not a Chongqing code."""
    name = CURRENT_DISTRICTS.get(code) or HISTORIC_DISTRICTS.get(code)
    return f"{name}（{code}）" if name else code
