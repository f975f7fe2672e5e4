"""Notification templates. Messages name cards by their masked number and carry no personal data.

A notice to the applicant that gives reasons says them in the words of the reasons
catalogue (`reissue.schemas.reasons`): the case passes codes, and the renderer puts
in their Chinese text; whatever else stands in such a parameter reads as "other".
Nothing a person typed reaches the applicant through the official channel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from reissue.schemas.labels import district
from reissue.schemas.reasons import notice_text

__all__ = ["REASON_PARAMS", "TEMPLATES", "render"]

APPEAL_RIGHTS = (
    "如对本决定不服，可依照《中华人民共和国社会保险法》第八十三条依法申请行政复议或者提起行政诉讼；"
    "与用人单位发生社会保险争议的，可以依法申请调解、仲裁，提起诉讼。"
    " (Social Insurance Law of the PRC, Art. 83: administrative reconsideration or lawsuit; "
    "mediation, arbitration or lawsuit in disputes with an employer.)"
)

TEMPLATES: Mapping[str, str] = {
    "card_frozen": (
        "您的医保卡 {card} 已于 {reported_at} 挂失并冻结（社保与银行功能）。挂失前发生的医疗费用由本人承担。"
        "补卡期间可使用医保电子凭证就医购药。{temporary_note}"
    ),
    "materials_reminder": "请携带身份证原件及复印件、一寸免冠照片、挂失证明和补卡申请表到服务网点办理补卡（第 {n} 次提醒，截止 {deadline}）。",
    "report_formal": "您的医保卡 {card} 挂失已转为正式挂失，原卡作废，补卡申请已受理。",
    "report_formal_at_counter": "您的医保卡 {card} 已在柜台核验身份后转为正式挂失，原卡作废、不能恢复使用。请于 {deadline} 前提交补卡申请材料。",
    "affiliation_request": "请确认参保人与贵单位/学校的关系，以便为其补办医保卡（卡号 {card}，案件 {case}）。",
    "affiliation_reminder": "提醒（第 {n} 次）：请尽快确认参保人关系（卡号 {card}，案件 {case}）。",
    "affiliation_escalation": "单位/学校确认逾期未复（案件 {case}，{district}）。请督办，或凭纸质证明函人工确认。",
    "correction_requested": "您的补卡材料需补正（第 {round} 次）：{reasons}。请于 {deadline} 前重新提交。",
    "review_sla_breached": "补卡审核已超时（案件 {case}，{district}，时限 {sla}）。请尽快处理。",
    "payment_requested": "补卡费 {amount} 元，请于 {deadline} 前缴纳（订单 {order}）。",
    "payment_reminder": "提醒：补卡费 {amount} 元尚未缴纳，截止 {deadline}（订单 {order}）。",
    "payment_final_reminder": "最后提醒：补卡费 {amount} 元将于 {deadline} 截止缴纳，逾期申请将终止（订单 {order}）。",
    "fee_waived": "您的补卡费已免除（{ground}）。",
    "production_ordered": "新卡已提交制卡（订单 {order}），制成后将通知您领取。",
    "production_overdue": "制卡逾期（案件 {case}，订单 {order}，{district}）。请与制卡中心核实。",
    "production_failed": "制卡中心已 {failures} 次制卡失败（案件 {case}，最近订单 {order}：{reason}）。"
    "请主管决定重新下单或撤销案件。",
    "ready_for_pickup": "您的新医保卡 {card} 已制成，请携带身份证和领卡凭条到网点领取。",
    "pickup_reminder": "提醒（第 {n} 次）：您的新医保卡 {card} 尚未领取。",
    "completed": "新医保卡 {card} 已激活，原卡已注销，账户余额不变。",
    # Sent by the front door straight to the mobile on record, never through the outbox
    # (the code is stored nowhere but as its keyed hash).
    "card_found_code": "您正在申请解除医保卡 {card} 的临时挂失，验证码 {code}，{minutes} 分钟内有效，"
    "仅可使用一次。如非本人操作，请勿将验证码告诉任何人。",
    "withdrawn": "已为您解除医保卡 {card} 的临时挂失，卡片恢复正常使用。",
    "lapsed_temporary": "您的医保卡 {card} 临时挂失已到期自动解除，卡片恢复正常使用。",
    "lapsed": "您的补卡申请因逾期未办理已终止（{reason}）。原卡已挂失作废，不能恢复使用；如需补卡请重新申请。",
    "rejected": "您的补卡申请未获通过：{reasons}。原卡已挂失作废，不能恢复使用。" + APPEAL_RIGHTS,
    "cancelled": "您的补卡申请已撤销（{reason}）。{refund_note}{report_note}",
    "refund_issued": "补卡费 {amount} 元已原路退回（订单 {order}）。",
    "notification_dead_letter": "通知发送失败（案件 {case}，已尝试 {n} 次，{error}），已转入死信，请人工处理。",
    "ownership_checks_locked": "{what}的持卡人身份核验 {minutes} 分钟内已失败 {n} 次，暂停核验至 {until}。"
    "请核查是否有人在试探身份证号（案件 {case}）。",
    "payment_misaddressed": "支付平台的付款通知（订单 {order}，付款 {ref}）指向了案件 {named}，"
    "但该订单属于案件 {case}，已拒收。请与支付平台核实。",
    "payment_unrecordable": "案件 {case} 收到付款 {ref}（订单 {order}）的金额 {amount} 分无法入账"
    "（须大于 0 且不超过账本上限），未入账、未退款。请与支付平台核实。",
    "payment_returned": "您支付的 {amount} 元未能用于补卡费（金额或订单不符、已缴清或已无需缴费），已原路退回。",
}


# The applicant's notices that give reasons, and the parameter that holds their codes.
REASON_PARAMS: Final[Mapping[str, str]] = {
    "correction_requested": "reasons",
    "rejected": "reasons",
    "cancelled": "reason",
    "lapsed": "reason",
}


class _Params(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, params: Mapping[str, str]) -> str:
    """The message text for a template; unknown templates are a programming error. A
    district is named, never given by its code."""
    given = _Params(params)
    if (key := REASON_PARAMS.get(template)) is not None:
        given[key] = notice_text(given[key])
    if "district" in given:
        given["district"] = district(given["district"]).zh
    return TEMPLATES[template].format_map(given)
