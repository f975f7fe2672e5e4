"""A case's timeline as sentences a reviewer reads, in both languages (the console's case
page); `reissue.schemas.timeline` tells the same steps for auditors, with the names of
Temporal's events and activities.

Every activity the timeline shows has its sentence here (`says`), or none when another
line already says it; events into the case, deadlines and stages have theirs below.
Every word comes from the catalogue of labels; personal data arrives here masked (the
card numbers always), and no enum value or JSON is ever part of a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, TypeAlias, TypeVar

from pydantic import BaseModel

from reissue.schemas.activities import (
    ACTIVATE_NEW_CARD,
    APPEND_AUDIT_EVENT,
    ASSESS_FEE,
    CANCEL_CARD_PRODUCTION,
    CANCEL_PAYMENT_ORDER,
    CLOSE_PAYMENT_ORDER,
    FORMALISE_LOSS_REPORT,
    FREEZE_BANK_ACCOUNT,
    FREEZE_CARD,
    LIFT_LOSS_REPORT,
    NOTIFY,
    OPEN_PAYMENT_ORDER,
    ORDER_CARD_PRODUCTION,
    PRECHECK_MATERIALS,
    RECEIVE_PAYMENT,
    RECORD_CARD_PRODUCED,
    RECORD_PRODUCTION_FAILED,
    RECORD_REVIEW_DECISION,
    REFUND_PAYMENT,
    REGISTER_LOSS,
    REQUEST_AFFILIATION_CONFIRMATION,
    UNFREEZE_BANK_ACCOUNT,
    VOID_OLD_CARD,
    ActivateCardInput,
    ActivateCardResult,
    ActivityDef,
    AffiliationRequestInput,
    AssessFeeInput,
    AuditInput,
    CardProducedInput,
    CaseStep,
    CreatePaymentInput,
    Done,
    FeeAssessment,
    FormaliseInput,
    FreezeInput,
    FreezeResult,
    LiftLossInput,
    LiftResult,
    NotifyInput,
    OrderInput,
    PaymentAtPlatform,
    PaymentOrder,
    PaymentReceipt,
    PrecheckInput,
    PrecheckResult,
    ProductionFailedInput,
    ProductionInput,
    ProductionOrder,
    ReceivePaymentInput,
    RefundInput,
    RefundResult,
    RegisterLossInput,
    RegisterLossResult,
    ReviewRecordInput,
    VoidCardInput,
)
from reissue.schemas.clock import BEIJING
from reissue.schemas.enums import (
    AffiliationKind,
    Channel,
    DocumentType,
    FeeExemption,
    InsuredCategory,
    ProductionMode,
    Stage,
)
from reissue.schemas.identifiers import mask_card_number
from reissue.schemas.labels import (
    ACTORS,
    AFFILIATION_KINDS,
    AUDIT_EVENTS,
    CATEGORIES,
    CHANNELS,
    DEADLINES,
    DOCUMENTS,
    EXEMPTIONS,
    MODES,
    NOTICES,
    RECIPIENTS,
    STAGES,
    VERDICTS,
    Label,
    district,
    listing,
)
from reissue.schemas.reasons import TEXTS, known

__all__ = [
    "EVENTS",
    "actor",
    "case_closed",
    "case_failed",
    "deadline",
    "event",
    "loss_reported",
    "refused",
    "said",
    "says",
    "sla_breached",
    "stage_entered",
    "told",
]

L = Label
In = TypeVar("In", bound=CaseStep)
Out = TypeVar("Out", bound=BaseModel)
Say: TypeAlias = Callable[[In, Out], Label | None]

_SAID: dict[ActivityDef[Any, Any], Say[Any, Any]] = {}


def says(activity: ActivityDef[In, Out]) -> Callable[[Say[In, Out]], Say[In, Out]]:
    """Register the decorated function as the sentence a completed `activity` reads as."""

    def register(say: Say[In, Out]) -> Say[In, Out]:
        assert activity not in _SAID, f"{activity.name} says twice"
        _SAID[activity] = say
        return say

    return register


def said(activity: ActivityDef[In, Out], arg: In, result: Out) -> Label | None:
    """The sentence of a completed step; None for a step a reader need not see."""
    say = _SAID.get(activity)
    return say(arg, result) if say is not None and activity.on_timeline else None


def told() -> frozenset[ActivityDef[Any, Any]]:
    """The activities that have their sentence here."""
    return frozenset(_SAID)


def _at(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:.2f}"


def _card(number: str | None) -> str:
    return mask_card_number(number) if number else "—"


def _docs(types: list[DocumentType]) -> Label:
    return listing([DOCUMENTS[t] for t in types])


def _enum(kind: type[Any], value: Any, labels: Mapping[Any, Label]) -> Label | None:
    try:
        return labels[kind(value)]
    except (ValueError, KeyError):
        return None


# Who sends an event that names nobody in it.
_SENDERS: Final = {
    "payment_confirmed": "payment platform",
    "card_produced": "card bureau",
    "production_failed": "card bureau",
}


def _reasons(given: Any) -> Label:
    """Reasons as words: a code of the catalogue by its text, anything else (the free
    text of a case recorded before the catalogue) as it was written."""
    items = given if isinstance(given, list) else [given] if given else []
    said = []
    for item in items:
        reason = known(item)
        said.append(L(TEXTS[reason].zh, TEXTS[reason].en) if reason else L(str(item), str(item)))
    return (
        Label("；".join(x.zh for x in said), "; ".join(x.en for x in said)) if said else L("—", "—")
    )


def actor(name: str, *, event: str | None = None) -> Label:
    """Who acted: a system or channel by its label, a person by staff ID; an event that
    names nobody, by the partner that sends it."""
    if name == "external system" and event in _SENDERS:
        name = _SENDERS[event]
    return ACTORS.get(name) or L(name, name)


# ----------------------------------------------------------------------------- the system of record


@says(REGISTER_LOSS)
def _loss_registered(_: RegisterLossInput, r: RegisterLossResult) -> Label:
    kind = L("正式挂失", "formal") if r.formal else L("临时挂失", "temporary")
    return L(
        "挂失已登记：挂失单号 {n}，{kind}，挂失时间 {at}（此前发生的费用由本人承担），适用政策 {p}",
        "Loss registered: report {n}, {kind}, reported {at} (costs before then are the "
        "holder's), policy {p}",
    ).format(n=r.report_number, kind=kind, at=_at(r.reported_at), p=r.policy.version)


@says(FREEZE_CARD)
def _card_frozen(arg: FreezeInput, _: FreezeResult) -> Label:
    return L("卡 {c} 已在社保系统冻结", "Card {c} frozen in the registry").format(
        c=_card(arg.card_number)
    )


@says(FORMALISE_LOSS_REPORT)
def _report_formal(_: FormaliseInput, __: Done) -> Label:
    return L("已转为正式挂失，原卡作废", "The report is formal: the old card is void")


@says(LIFT_LOSS_REPORT)
def _report_lifted(_: LiftLossInput, r: LiftResult) -> Label:
    if not r.changed:
        return L("挂失未解除（不是临时挂失）", "The report stays (it is not temporary)")
    if r.standing_until is not None:
        return L(
            "临时挂失继续有效至 {at}，卡片仍冻结（除非持卡人本人解除）",
            "The temporary report stands until {at}, the card frozen (unless its owner lifts it)",
        ).format(at=_at(r.standing_until))
    return L("临时挂失已解除，卡片恢复使用", "Temporary report lifted: the card works again")


@says(VOID_OLD_CARD)
def _old_card_void(arg: VoidCardInput, _: Done) -> Label:
    return L("挂失已结案，原卡 {c} 保持作废", "Report closed: the old card {c} stays void").format(
        c=_card(arg.card_number)
    )


@says(ACTIVATE_NEW_CARD)
def _new_card_active(arg: ActivateCardInput, r: ActivateCardResult) -> Label:
    return L(
        "新卡 {new} 已激活，原卡 {old} 注销；账户余额 {b} 不变",
        "New card {new} active, old card {old} replaced; balance {b} unchanged",
    ).format(new=_card(arg.new_card_number), old=_card(arg.old_card_number), b=_yuan(r.balance_fen))


# ----------------------------------------------------------------------------- the bank


def _bank(status: str, *, frozen: bool) -> Label:
    if status == "none":
        return L("该卡没有银行账户，无需处理", "The card has no bank account: nothing to do")
    if frozen:
        return L("银行账户已冻结", "Bank account frozen")
    return L("银行账户已解冻", "Bank account unfrozen")


@says(FREEZE_BANK_ACCOUNT)
def _account_frozen(_: FreezeInput, r: FreezeResult) -> Label:
    return _bank(r.status, frozen=True)


@says(UNFREEZE_BANK_ACCOUNT)
def _account_unfrozen(_: FreezeInput, r: FreezeResult) -> Label:
    return _bank(r.status, frozen=False)


# ----------------------------------------------------------------------------- materials, review


@says(REQUEST_AFFILIATION_CONFIRMATION)
def _confirmation_requested(arg: AffiliationRequestInput, _: Done) -> Label:
    kind = _enum(AffiliationKind, arg.kind, AFFILIATION_KINDS) or L("单位/学校", "unit/school")
    return L(
        "已请{kind}“{name}”确认参保关系", "Asked the {kind} “{name}” to confirm the applicant"
    ).format(kind=kind, name=arg.org_name)


@says(PRECHECK_MATERIALS)
def _materials_prechecked(arg: PrecheckInput, r: PrecheckResult) -> Label:
    if r.passed:
        return L("材料预审通过", "Materials pre-check passed")
    handed = {d.type for d in arg.documents}
    missing = [t for t in arg.required if t not in handed]
    if missing:
        return L("材料预审未通过：缺少{m}", "Materials pre-check failed: missing {m}").format(
            m=_docs(missing)
        )
    return L(
        "材料预审未通过（{n} 处问题：照片规格或挂失证明编号）",
        "Materials pre-check failed ({n} problems: photo format or proof number)",
    ).format(n=len(r.problems))


@says(RECORD_REVIEW_DECISION)
def _review_recorded(arg: ReviewRecordInput, _: Done) -> Label:
    text = L("审核决定：{v}", "Review decision: {v}").format(v=VERDICTS[arg.verdict])
    if arg.reasons:
        text = L("{t}；原因：{r}", "{t}; reasons: {r}").format(t=text, r=_reasons(arg.reasons))
    if arg.waive_fee:
        text = L("{t}；减免工本费：{w}", "{t}; fee waived: {w}").format(
            t=text, w=arg.waiver_reason or "—"
        )
    return text


# ----------------------------------------------------------------------------- fee, money


@says(ASSESS_FEE)
def _fee_assessed(_: AssessFeeInput, r: FeeAssessment) -> Label:
    if r.waived:
        return L("工本费已减免（原价 {b}）", "Fee waived (normally {b})").format(
            b=_yuan(r.base_fen)
        )
    if r.exemption is not None:
        return L("工本费 {a}（免收：{e}）", "Fee {a} (exempt: {e})").format(
            a=_yuan(r.amount_fen), e=EXEMPTIONS[r.exemption]
        )
    return L("工本费 {a}", "Fee {a}").format(a=_yuan(r.amount_fen))


@says(OPEN_PAYMENT_ORDER)
def _order_opened(arg: CreatePaymentInput, r: PaymentOrder) -> Label:
    return L(
        "已开立缴费订单 {o}，金额 {a}，缴费截止 {d}", "Payment order {o} for {a}, due {d}"
    ).format(o=r.order_id, a=_yuan(r.amount_fen), d=_at(arg.due_at))


@says(CLOSE_PAYMENT_ORDER)
def _order_closed(_: OrderInput, r: PaymentAtPlatform) -> Label:
    if r.payment:
        return L(
            "支付平台订单 {o} 已关闭（已付 {a}）", "Order {o} closed at the platform (paid {a})"
        ).format(o=r.order_id, a=_yuan(r.payment.amount_fen))
    return L(
        "支付平台订单 {o} 已关闭（未付款）", "Order {o} closed at the platform (unpaid)"
    ).format(o=r.order_id)


@says(CANCEL_PAYMENT_ORDER)
def _order_cancelled(_: OrderInput, r: PaymentOrder) -> Label:
    return L("缴费订单 {o} 已取消", "Payment order {o} cancelled").format(o=r.order_id)


@says(RECEIVE_PAYMENT)
def _payment_received(arg: ReceivePaymentInput, r: PaymentReceipt) -> Label:
    if not r.new and r.amount_fen == 0:  # (the ledger holds no payment of 0 fen)
        return L(
            "一笔缴费金额异常，未能入账（订单 {o}），已通知运维",
            "A payment no ledger can hold was not recorded (order {o}); operations told",
        ).format(o=arg.order_id)
    if r.applied:
        return L(
            "收到缴费 {a}，已用于工本费（订单 {o}）", "Payment of {a} applied (order {o})"
        ).format(a=_yuan(r.amount_fen), o=arg.order_id)
    return L(
        "收到缴费 {a}，不能用于本案，将原路退回", "Payment of {a} received, to be refunded"
    ).format(a=_yuan(r.amount_fen))


@says(REFUND_PAYMENT)
def _refunded(_: RefundInput, r: RefundResult) -> Label:
    return L("已原路退款 {a}（支付流水 {p}）", "Refunded {a} (payment {p})").format(
        a=_yuan(r.amount_fen), p=r.payment_ref
    )


# ----------------------------------------------------------------------------- the card bureau


@says(ORDER_CARD_PRODUCTION)
def _production_ordered(arg: ProductionInput, r: ProductionOrder) -> Label:
    text = L("已下单制卡（{m}），订单 {o}", "Card ordered ({m}), order {o}").format(
        m=MODES[arg.mode], o=r.order_id
    )
    if r.new_card_number:
        text = L("{t}，新卡 {c}", "{t}, new card {c}").format(t=text, c=_card(r.new_card_number))
    return text


@says(RECORD_CARD_PRODUCED)
def _card_produced(arg: CardProducedInput, _: Done) -> Label:
    return L("新卡 {c} 已制成", "New card {c} made").format(c=_card(arg.new_card_number))


@says(RECORD_PRODUCTION_FAILED)
def _production_failed(arg: ProductionFailedInput, _: Done) -> Label:
    return L("制卡失败（订单 {o}）：{r}", "Card production failed (order {o}): {r}").format(
        o=arg.order_id, r=arg.reason
    )


@says(CANCEL_CARD_PRODUCTION)
def _production_cancelled(arg: OrderInput, _: Done) -> Label:
    return L("制卡订单 {o} 已取消", "Production order {o} cancelled").format(o=arg.order_id)


# ----------------------------------------------------------------------------- notices, audit log


@says(NOTIFY)
def _notice(arg: NotifyInput, _: Done) -> Label:
    what = NOTICES.get(arg.template, L("通知", "a notice"))
    return L("已通知{who}：{what}", "Notice to {who}: {what}").format(
        who=RECIPIENTS[arg.recipient], what=what
    )


# Audit events that an event into the case already tells (its update's line says it).
_TOLD_BY_THEIR_EVENT = frozenset(
    {
        "case_closed",
        "report_made_formal",
        "review_released",
        "affiliation_overridden",
        "production_reordered",
    }
)


@says(APPEND_AUDIT_EVENT)
def _audit_event(arg: AuditInput, _: Done) -> Label | None:
    if arg.event_type in _TOLD_BY_THEIR_EVENT:
        return None
    d = arg.detail
    if arg.event_type == "event_ignored":
        name = EVENTS.get(str(d.get("event")), (L("消息", "event"), None))[0]
        stage = _enum(Stage, d.get("stage"), STAGES) or L("—", "—")
        return L(
            "已忽略一条“{e}”消息（当时阶段：{s}），未改变案件",
            "Ignored a “{e}” event (in stage {s}); nothing changed",
        ).format(e=name, s=stage)
    if arg.event_type == "production_anomaly":
        return L(
            "制卡回执与本案订单不符（订单 {o}），已记录", "A bureau report for another order ({o})"
        ).format(o=d.get("order_id", "—"))
    if arg.event_type == "payment_conflict":
        return L("缴费冲突已记录，须人工核对", "Payment conflict recorded, for a person to check")
    return AUDIT_EVENTS.get(arg.event_type, L("已记录一条审计事件", "An audit event recorded"))


# ----------------------------------------------------------------------------- events into the case


def _who(arg: Mapping[str, Any], key: str) -> str:
    return str(arg.get(key) or "—")


def _materials(a: Mapping[str, Any]) -> Label:
    kinds = [DOCUMENTS.get(DocumentType(t)) for t in a.get("documents") or [] if t in _DOC_VALUES]
    text = L(
        "材料已提交：{d}（柜员 {by} 接收）", "Materials submitted: {d} (received by {by})"
    ).format(d=listing([k for k in kinds if k is not None]), by=_who(a, "received_by"))
    mode = _enum(ProductionMode, a.get("production_mode"), MODES)
    if mode is not None:
        text = L("{t}，{m}", "{t}; {m}").format(t=text, m=mode)
    exemption = _enum(FeeExemption, a.get("fee_exemption"), EXEMPTIONS)
    if exemption is not None:
        text = L("{t}；申请免收工本费：{e}", "{t}; fee exemption: {e}").format(t=text, e=exemption)
    return text


_DOC_VALUES = frozenset(t.value for t in DocumentType)


def _affiliation(a: Mapping[str, Any]) -> Label:
    if a.get("confirmed"):
        return L("{who} 确认了参保关系", "{who} confirmed the applicant").format(
            who=_who(a, "responder")
        )
    return L("{who} 否认参保关系：{r}", "{who} denied the applicant: {r}").format(
        who=_who(a, "responder"), r=a.get("reason") or "—"
    )


def _cancelled(a: Mapping[str, Any]) -> Label:
    return L("{who} 撤销案件：{r}", "{who} cancelled the case: {r}").format(
        who=_who(a, "operator"), r=_reasons(a.get("reason"))
    )


def _with_note(a: Mapping[str, Any], text: Label) -> Label:
    """A sentence with the staff's internal note, if there is one (never sent out)."""
    if not a.get("note"):
        return text
    return L("{t}（内部备注：{n}）", "{t} (internal note: {n})").format(t=text, n=a["note"])


def _note_of(a: Mapping[str, Any], by: str) -> Label | None:
    if not a.get("note"):
        return None
    return L("{who} 的内部备注：{n}", "{who}'s internal note: {n}").format(
        who=_who(a, by), n=a["note"]
    )


def _found(a: Mapping[str, Any]) -> Label:
    via = _enum(Channel, a.get("channel"), CHANNELS) or L("—", "—")
    return L("报告卡已找到（{c}）", "Card reported found ({c})").format(c=via)


# Each event into the case by its name: what it is, and its sentence (None: another line
# tells it). The input arrives with its personal data masked.
EVENTS: Final[Mapping[str, tuple[Label, Callable[[Mapping[str, Any]], Label | None] | None]]] = {
    "registration": (L("挂失", "loss report"), None),
    "make_report_formal": (
        L("转为正式挂失", "report made formal"),
        lambda a: L(
            "柜员 {by} 核验身份证后申请转为正式挂失",
            "{by} checked the ID at the counter: the report is to be formal",
        ).format(by=_who(a, "received_by")),
    ),
    "submit_materials": (L("提交材料", "materials"), _materials),
    "affiliation_response": (L("单位/学校答复", "unit/school answer"), _affiliation),
    "override_affiliation": (
        L("凭纸质证明函确认", "paper letter"),
        lambda a: L(
            "{who} 凭纸质证明函确认单位/学校：{n}", "{who} accepted the paper letter: {n}"
        ).format(who=_who(a, "staff_id"), n=a.get("note") or "—"),
    ),
    "claim_review": (
        L("领取审核", "claim"),
        lambda a: L("{who} 领取了审核", "{who} claimed the review").format(who=_who(a, "reviewer")),
    ),
    "release_review": (
        L("退回队列", "release"),
        lambda a: L("{who} 将案件退回审核队列：{r}", "{who} released the case: {r}").format(
            who=_who(a, "supervisor"), r=a.get("reason") or "—"
        ),
    ),
    # (the decision itself is told as recorded; the reviewer's internal note here)
    "review": (L("审核决定", "review decision"), lambda a: _note_of(a, "reviewer")),
    "payment_confirmed": (
        L("缴费通知", "payment"),
        lambda a: L(
            "支付平台通知已缴费 {a}（订单 {o}）", "The platform reports {a} paid (order {o})"
        ).format(a=_yuan(int(a.get("amount_fen") or 0)), o=a.get("order_id") or "—"),
    ),
    "card_produced": (L("制卡完成", "card produced"), None),
    "production_failed": (L("制卡失败", "production failed"), None),
    "reorder_card": (
        L("重新下单", "order again"),
        lambda a: L("{who} 决定重新下单制卡：{r}", "{who} ordered the card again: {r}").format(
            who=_who(a, "supervisor"), r=a.get("reason") or "—"
        ),
    ),
    "card_collected": (
        L("领卡", "card collected"),
        lambda a: L(
            "新卡 {c} 已交给申请人（经办 {by}）", "New card {c} handed over by {by}"
        ).format(c=_card(a.get("new_card_number")), by=_who(a, "handed_over_by")),
    ),
    "card_found": (L("卡已找到", "card found"), _found),
    "cancel": (L("撤销案件", "cancel"), lambda a: _with_note(a, _cancelled(a))),
}


def event(name: str, arg: Any) -> Label | None:
    """The sentence of an update or signal the case accepted (its input masked)."""
    found = EVENTS.get(name)
    if found is None:
        return L("收到一条外部消息", "An event arrived")
    say = found[1]
    if say is None:
        return None
    if not isinstance(arg, Mapping):
        return L("收到“{e}”（内容已加密）", "“{e}” arrived (encrypted)").format(e=found[0])
    return say(arg)


def refused(name: str, message: str) -> Label:
    """An update the case refused; the case's reason is an engineer's text, in English."""
    what = EVENTS.get(name, (L("请求", "a request"), None))[0]
    return L("“{e}”未被受理", "“{e}” refused: {m}").format(e=what, m=message)


# ----------------------------------------------------------------------------- the case itself


def loss_reported(inp: Mapping[str, Any], applicant: str) -> Label:
    """The case's start: the loss as reported (`applicant`: as the page may show it)."""
    category = _enum(InsuredCategory, inp.get("insured_category"), CATEGORIES) or L("—", "—")
    channel = _enum(Channel, inp.get("channel"), CHANNELS) or L("—", "—")
    aff = inp.get("affiliation") or {}
    text = L(
        "挂失卡 {c}：申请人 {who}，{cat}，{d}，经{ch}报失",
        "Loss of card {c} reported: applicant {who}, {cat}, {d}, through {ch}",
    ).format(
        c=_card(str(inp.get("card_number") or "")),
        who=applicant,
        cat=category,
        d=district(str(inp.get("district"))),
        ch=channel,
    )
    kind = _enum(AffiliationKind, aff.get("kind"), AFFILIATION_KINDS)
    if kind is not None and aff.get("kind") != "none":
        text = L("{t}；{k}：{n}", "{t}; {k}: {n}").format(t=text, k=kind, n=aff.get("name", "—"))
    return text


def stage_entered(value: str) -> Label | None:
    found = _enum(Stage, value, STAGES)
    return None if found is None else L("进入阶段：{s}", "Stage: {s}").format(s=found)


def sla_breached() -> Label:
    return L("审核超时，已通知主管", "Review SLA breached; a supervisor was told")


_REMINDER = re.compile(r"^(.*) reminder( \d+ of \d+)?$")


def deadline(summary: str, *, fires: datetime | None) -> Label | None:
    """A deadline the case set (`fires`) or reached (None), by its timer's summary;
    reminders are told by the notices they send, and inner waits not at all."""
    if _REMINDER.match(summary):
        return None
    name = next((v for k, v in DEADLINES.items() if summary.startswith(k)), None)
    if name is None:
        return None
    if fires is None:
        return L("期限已到：{n}", "Deadline reached: {n}").format(n=name)
    return L("设定期限：{n}，至 {at}", "Deadline set: {n}, {at}").format(n=name, at=_at(fires))


def case_closed(outcome: Any) -> Label:
    found = _enum(Stage, outcome, STAGES)
    if found is None:
        return L("案件结束", "Case closed")
    return L("案件结束：{o}", "Case closed: {o}").format(o=found)


def case_failed(message: str) -> Label:
    return L("案件因错误终止（详见审计导出）", "Case failed: {m}").format(m=message)
