"""Every word a person reads: one catalogue of labels, Chinese first with English beside
it, for the console, notices, reports and documents.

A `Label` holds both languages. The console shows a page in Chinese (the staff are in
Chongqing) with English beside its labels, or in English on request; a report or a
document writes `str(label)`, "中文 · English". No enum value, field name or JSON ever
reaches a person: each enum the case uses has its labels here, and a test holds every
member of each to one.
"""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final

from reissue.schemas.enums import (
    AffiliationKind,
    AwaitingParty,
    CaseFlag,
    Channel,
    DocumentType,
    FeeExemption,
    InsuredCategory,
    ProductionMode,
    Recipient,
    ReviewVerdict,
    Stage,
)
from reissue.schemas.identifiers import CURRENT_DISTRICTS, HISTORIC_DISTRICTS

__all__ = [
    "ACTORS",
    "AFFILIATION_KINDS",
    "AFFILIATION_STATUS",
    "AUDIT_EVENTS",
    "AWAITING",
    "CATEGORIES",
    "CHANNELS",
    "DEADLINES",
    "DOCUMENTS",
    "EXEMPTIONS",
    "FLAGS",
    "HOTLINES",
    "LANGUAGES",
    "MODES",
    "NOTICES",
    "RECIPIENTS",
    "REPORT_STATES",
    "STAGES",
    "UI",
    "VERDICTS",
    "Label",
    "district",
    "listing",
    "span",
    "waiting_for",
]

LANGUAGES: Final = ("zh-CN", "en")


@dataclass(frozen=True)
class Label:
    """One thing said in both languages."""

    zh: str
    en: str

    def __str__(self) -> str:
        return f"{self.zh} · {self.en}" if self.zh != self.en else self.zh

    def text(self, lang: str) -> str:
        """The label in one language (`zh-CN` or `en`)."""
        return self.en if lang == "en" else self.zh

    def format(self, **values: object) -> Label:
        """Both texts with `{name}` filled in; a value that is a `Label` is filled in
        its own language."""

        def fill(lang: str) -> dict[str, object]:
            return {k: v.text(lang) if isinstance(v, Label) else v for k, v in values.items()}

        return Label(self.zh.format(**fill("zh-CN")), self.en.format(**fill("en")))


L = Label


def listing(labels: list[Label]) -> Label:
    """Several labels as one: `身份证复印件、照片` / `ID card copy, photo`."""
    return Label("、".join(x.zh for x in labels), ", ".join(x.en for x in labels))


STAGES: Final[Mapping[Stage, Label]] = {
    Stage.LOSS_REPORTED: L("已挂失", "Loss reported"),
    Stage.AWAITING_MATERIALS: L("等待材料", "Awaiting materials"),
    Stage.AWAITING_AFFILIATION: L("等待单位/学校确认", "Awaiting unit/school"),
    Stage.UNDER_REVIEW: L("审核中", "Under review"),
    Stage.AWAITING_PAYMENT: L("等待缴费", "Awaiting payment"),
    Stage.CARD_PRODUCTION: L("制卡中", "Card production"),
    Stage.READY_FOR_PICKUP: L("待领卡", "Ready for pickup"),
    Stage.COMPLETED: L("已办结", "Completed"),
    Stage.WITHDRAWN: L("已撤回（卡已找到）", "Withdrawn (card found)"),
    Stage.REJECTED: L("已驳回", "Rejected"),
    Stage.LAPSED: L("已失效", "Lapsed"),
    Stage.CANCELLED: L("已撤销", "Cancelled"),
}

AWAITING: Final[Mapping[AwaitingParty, Label]] = {
    AwaitingParty.APPLICANT: L("申请人", "the applicant"),
    AwaitingParty.UNIT: L("单位/学校", "the unit or school"),
    AwaitingParty.STAFF: L("工作人员", "staff"),
    AwaitingParty.PAYMENT: L("缴费", "payment"),
    AwaitingParty.BUREAU: L("制卡中心", "the card bureau"),
    AwaitingParty.SYSTEM: L("系统处理", "the system"),
    AwaitingParty.NONE: L("无", "nobody"),
}

# What a case in this stage waits for, in words (the case's own `pending_action` is an
# engineer's note in English, with names of events in it).
_WAITING: Final[Mapping[tuple[Stage, AwaitingParty], Label]] = {
    (Stage.LOSS_REPORTED, AwaitingParty.SYSTEM): L(
        "登记挂失、冻结卡片", "registering the loss, freezing the card"
    ),
    (Stage.AWAITING_MATERIALS, AwaitingParty.APPLICANT): L(
        "申请人到网点提交补卡材料", "the applicant to bring the materials to a counter"
    ),
    (Stage.AWAITING_MATERIALS, AwaitingParty.SYSTEM): L(
        "材料自动预审", "the automatic pre-check of the materials"
    ),
    (Stage.AWAITING_AFFILIATION, AwaitingParty.UNIT): L(
        "单位/学校确认参保关系", "the unit or school to confirm the applicant"
    ),
    (Stage.AWAITING_AFFILIATION, AwaitingParty.STAFF): L(
        "单位/学校逾期未复：主管可凭纸质证明函确认",
        "no answer from the unit or school: a supervisor may accept its paper letter",
    ),
    (Stage.UNDER_REVIEW, AwaitingParty.STAFF): L(
        "工作人员审核材料", "staff to review the materials"
    ),
    (Stage.AWAITING_PAYMENT, AwaitingParty.SYSTEM): L(
        "在支付平台开立缴费订单", "opening the payment order"
    ),
    (Stage.AWAITING_PAYMENT, AwaitingParty.PAYMENT): L(
        "申请人缴纳补卡费", "the applicant to pay the fee"
    ),
    (Stage.CARD_PRODUCTION, AwaitingParty.SYSTEM): L("即时制卡", "instant card printing"),
    (Stage.CARD_PRODUCTION, AwaitingParty.BUREAU): L(
        "制卡中心制卡", "the card bureau to make the card"
    ),
    (Stage.CARD_PRODUCTION, AwaitingParty.STAFF): L(
        "制卡失败：主管决定重新下单或撤销", "production failed: a supervisor decides"
    ),
    (Stage.READY_FOR_PICKUP, AwaitingParty.APPLICANT): L(
        "申请人到网点领卡", "the applicant to collect the card"
    ),
}


def waiting_for(stage: Stage, awaiting: AwaitingParty) -> Label:
    """What a case waits for, in words; a case that is closing or closed waits for nobody
    a person need name."""
    if stage.terminal:
        return L("无（已结束）", "nothing (closed)")
    found = _WAITING.get((stage, awaiting))
    if found is not None:
        return found
    if awaiting is AwaitingParty.SYSTEM:
        return L("系统处理中", "the system is working on it")
    return AWAITING[awaiting]


CATEGORIES: Final[Mapping[InsuredCategory, Label]] = {
    InsuredCategory.URBAN_EMPLOYEE: L("城镇职工", "Urban employee"),
    InsuredCategory.URBAN_RURAL_RESIDENT: L("城乡居民", "Urban and rural resident"),
    InsuredCategory.STUDENT: L("学生", "Student"),
    InsuredCategory.RETIREE: L("退休人员", "Retiree"),
}

CHANNELS: Final[Mapping[Channel, Label]] = {
    Channel.HOTLINE_12333: L("12333 人社服务热线", "Hotline 12333"),
    Channel.HOTLINE_12393: L("12393 医保服务热线", "Hotline 12393"),
    Channel.ONLINE: L("网上办理", "Online"),
    Channel.COUNTER: L("柜台办理", "At a counter"),
}

# A loss report's state in the registry (`loss_reports.status`).
REPORT_STATES: Final[Mapping[str, Label]] = {
    "open": L("有效", "In force"),
    "standing": L(
        "有效（原案件已结束，卡片仍冻结至有效期满）",
        "In force (its case ended; the card stays frozen until it expires)",
    ),
    "continued": L("已由新案件接续", "Taken over by a new case"),
    "lifted": L("已解除（卡片已解冻）", "Lifted (the card is unfrozen)"),
    "resolved_by_reissue": L("已办结（已补发新卡）", "Resolved by the reissue"),
    "closed_without_reissue": L("已关闭（原卡作废）", "Closed (the old card is void)"),
}

# FACTS: the social security card's hotline in Chongqing, and the medical security one.
HOTLINES: Final[tuple[tuple[str, Label], ...]] = (
    ("023-12333", L("重庆人社服务热线", "Human Resources and Social Security hotline")),
    ("023-12393", L("重庆医保服务热线", "Medical Security hotline")),
)

DOCUMENTS: Final[Mapping[DocumentType, Label]] = {
    DocumentType.ID_CARD_COPY: L("身份证复印件", "ID card copy"),
    DocumentType.PHOTO: L("照片", "photo"),
    DocumentType.LOSS_REPORT_PROOF: L("挂失证明", "proof of loss report"),
    DocumentType.APPLICATION_FORM: L("补卡申请表", "application form"),
    DocumentType.STUDENT_ID: L("学生证", "student ID"),
    DocumentType.EXEMPTION_PROOF: L("减免证明", "proof of fee exemption"),
    DocumentType.AFFILIATION_LETTER: L("单位/学校证明函", "letter from the unit or school"),
}

VERDICTS: Final[Mapping[ReviewVerdict, Label]] = {
    ReviewVerdict.APPROVE: L("通过", "approved"),
    ReviewVerdict.REQUEST_CORRECTION: L("要求补正", "correction requested"),
    ReviewVerdict.REJECT: L("驳回", "rejected"),
}

EXEMPTIONS: Final[Mapping[FeeExemption, Label]] = {
    FeeExemption.MINIMUM_LIVING_ALLOWANCE: L("城市低保对象", "minimum living allowance"),
    FeeExemption.SPECIAL_CARE: L("优抚对象", "special care recipient"),
}

MODES: Final[Mapping[ProductionMode, Label]] = {
    ProductionMode.INSTANT: L("即时制卡", "instant"),
    ProductionMode.STANDARD: L("制卡中心制卡", "by the card bureau"),
}

RECIPIENTS: Final[Mapping[Recipient, Label]] = {
    Recipient.APPLICANT: L("申请人", "the applicant"),
    Recipient.UNIT: L("单位/学校", "the unit or school"),
    Recipient.SUPERVISOR: L("主管", "a supervisor"),
}

FLAGS: Final[Mapping[CaseFlag, Label]] = {
    CaseFlag.AFFILIATION_ESCALATED: L("单位/学校确认已上报主管", "unit/school escalated"),
    CaseFlag.AFFILIATION_DENIED: L("单位/学校否认参保关系", "unit/school denied"),
    CaseFlag.PRODUCTION_OVERDUE: L("制卡逾期", "production overdue"),
    CaseFlag.PRODUCTION_FAILED: L("制卡失败", "production failed"),
    CaseFlag.PAYMENT_CONFLICT: L("缴费冲突", "payment conflict"),
}

AFFILIATION_KINDS: Final[Mapping[AffiliationKind, Label]] = {
    AffiliationKind.NONE: L("无", "none"),
    AffiliationKind.EMPLOYER: L("单位", "employer"),
    AffiliationKind.SCHOOL: L("学校", "school"),
}

# The case's `affiliation_status`, as the released case words it.
AFFILIATION_STATUS: Final[Mapping[str, Label]] = {
    "not required": L("无需确认", "not required"),
    "requested": L("已发函，等待确认", "requested"),
    "confirmed": L("已确认", "confirmed"),
    "denied": L("已否认", "denied"),
    "overridden": L("凭纸质证明函确认", "confirmed by paper letter"),
}

# Who acted, where it is a system rather than a person (a person is named by staff ID).
ACTORS: Final[Mapping[str, Label]] = {
    "registry": L("社保卡登记系统", "card registry"),
    "bank": L("合作银行", "bank"),
    "outbox": L("通知", "notices"),
    "payments": L("收费", "payments"),
    "payment platform": L("支付平台", "payment platform"),
    "payment-platform": L("支付平台", "payment platform"),
    "card bureau": L("制卡中心", "card bureau"),
    "card-bureau": L("制卡中心", "card bureau"),
    "system": L("系统", "system"),
    "external system": L("外部系统", "external system"),
    **{c.value: CHANNELS[c] for c in Channel},
}

# Notices the case sends, by template.
NOTICES: Final[Mapping[str, Label]] = {
    "card_frozen": L("卡已挂失冻结", "card frozen"),
    "materials_reminder": L("提醒提交补卡材料", "reminder to bring the materials"),
    "report_formal": L("已转为正式挂失", "report made formal"),
    "report_formal_at_counter": L("柜台核验后转为正式挂失", "report made formal at the counter"),
    "affiliation_request": L("请求确认参保关系", "confirmation requested"),
    "affiliation_reminder": L("提醒确认参保关系", "reminder to confirm"),
    "affiliation_escalation": L("单位/学校确认逾期", "confirmation overdue"),
    "correction_requested": L("材料需补正", "correction requested"),
    "review_sla_breached": L("审核超时", "review overdue"),
    "payment_requested": L("请缴纳补卡费", "fee to pay"),
    "payment_reminder": L("提醒缴费", "payment reminder"),
    "payment_final_reminder": L("最后缴费提醒", "final payment reminder"),
    "fee_waived": L("补卡费已免除", "fee waived"),
    "production_ordered": L("已提交制卡", "card ordered"),
    "production_overdue": L("制卡逾期", "production overdue"),
    "production_failed": L("制卡失败", "production failed"),
    "ready_for_pickup": L("新卡已制成，请领取", "card ready for pickup"),
    "pickup_reminder": L("提醒领卡", "pickup reminder"),
    "completed": L("新卡已激活", "new card active"),
    "withdrawn": L("临时挂失已解除", "report lifted"),
    "lapsed_temporary": L("临时挂失到期解除", "temporary report expired"),
    "lapsed": L("补卡申请已终止", "application lapsed"),
    "rejected": L("补卡申请未获通过", "application rejected"),
    "cancelled": L("补卡申请已撤销", "application cancelled"),
    "refund_issued": L("补卡费已退回", "fee refunded"),
    "notification_dead_letter": L("通知发送失败", "notice undeliverable"),
    "ownership_checks_locked": L("身份核验已暂停", "ownership checks locked"),
    "payment_returned": L("款项已退回", "payment returned"),
    "payment_misaddressed": L("付款通知指向了别的案件", "payment webhook named another case"),
    "payment_unrecordable": L("付款金额无法入账", "payment amount cannot be recorded"),
    "card_found_code": L("解除挂失验证码", "one-time code to lift the report"),
}

# What the case put on its audit log, by event type.
AUDIT_EVENTS: Final[Mapping[str, Label]] = {
    "case_closed": L("案件结束", "case closed"),
    "event_ignored": L("已忽略一条消息", "an event was ignored"),
    "payment_conflict": L("缴费冲突", "payment conflict"),
    "pickup_anomaly": L("领卡回执异常", "pickup anomaly"),
    "production_anomaly": L("制卡回执异常", "production anomaly"),
    "production_reordered": L("重新下单制卡", "card ordered again"),
    "report_made_formal": L("核验身份后转为正式挂失", "report made formal with the ID checked"),
    "review_released": L("退回审核队列", "released to the queue"),
    "affiliation_overridden": L(
        "凭纸质证明函确认单位/学校", "unit/school confirmed by paper letter"
    ),
    "personal_data_unmasked": L("查看个人信息", "personal data shown"),
}

# The case's deadlines, by what its timers are called.
DEADLINES: Final[Mapping[str, Label]] = {
    "materials reminder": L("材料提醒", "materials reminder"),
    "resubmission deadline": L("补正截止", "resubmission deadline"),
    "application deadline": L("申请截止", "application deadline"),
    "temporary report expires": L("临时挂失到期", "temporary report expires"),
    "unit reminder": L("单位/学校确认提醒", "unit/school reminder"),
    "unit escalation": L("单位/学校确认逾期上报", "unit/school escalation"),
    "review SLA": L("审核时限", "review SLA"),
    "review claim expires": L("审核领取到期", "review claim expires"),
    "payment reminder": L("缴费提醒", "payment reminder"),
    "final payment reminder": L("最后缴费提醒", "final payment reminder"),
    "payment deadline": L("缴费截止", "payment deadline"),
    "production overdue": L("制卡逾期", "production overdue"),
    "pickup reminder": L("领卡提醒", "pickup reminder"),
}


def _load_english_names() -> Mapping[str, str]:
    path = resources.files("reissue.schemas").joinpath("data/chongqing-district-names-en.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    return types.MappingProxyType({str(k): str(v) for k, v in data["current"].items()})


_ENGLISH_NAMES: Final = _load_english_names()


def district(code: str) -> Label:
    """A district or county by name (GB/T 2260, the packaged division codes); a former
    division's code says so; a code the list does not have is shown as it is."""
    if code in CURRENT_DISTRICTS:
        return L(CURRENT_DISTRICTS[code], _ENGLISH_NAMES.get(code, code))
    if code in HISTORIC_DISTRICTS:
        name = HISTORIC_DISTRICTS[code].split(" ", 1)[0]
        return L(f"{name}（旧区划 {code}）", f"former division {code}")
    return L(f"区划 {code}", f"division {code}")


# The console's own words.
UI: Final[Mapping[str, Label]] = {
    "title": L("医保卡补办 · 工作台", "Card reissue · staff console"),
    "login": L("登录", "Log in"),
    "logout": L("退出", "Log out"),
    "user_id": L("工号", "Staff ID"),
    "password": L("密码", "Password"),
    "login_failed": L("工号或密码不正确。", "Wrong staff ID or password."),
    "login_sso": L("使用统一身份认证登录", "Log in with single sign-on"),
    "session_ended": L("会话已结束，请重新登录。", "Your session has ended; please log in again."),
    "queue": L("审核队列", "Review queue"),
    "tab_unclaimed": L("待领取", "Unclaimed"),
    "tab_mine": L("我的", "Mine"),
    "tab_due": L("即将到期", "Due soon"),
    "tab_breached": L("已超时", "SLA breached"),
    "tab_open": L("全部在办", "All open"),
    "find": L("查找", "Find"),
    "search": L("查找案件", "Find a case"),
    "search_q": L("挂失单号、卡号或身份证号", "Loss report number, card number or resident ID"),
    "search_help": L(
        "输入挂失单号（如 LR20261206000001）、9 位卡号或 18 位身份证号。身份证号只用于计算查询密钥，不会保存。",
        "A loss report number (e.g. LR20261206000001), a 9-character card number or an 18-character resident ID. The ID is only used to compute a keyed lookup; it is never stored.",
    ),
    "search_results": L("查找结果", "Results"),
    "no_results": L("没有找到案件。", "No case found."),
    "search_invalid": L(
        "须为挂失单号（LR 加 14 位数字）、9 位卡号、18 位身份证号或案件号",
        "must be a loss report number (LR and 14 digits), a 9-character card number, an 18-character resident ID or a case ID",
    ),
    "applicant": L("申请人", "Applicant"),
    "flags": L("提示", "Flags"),
    "report_stands": L("临时挂失有效至 {at}", "temporary report stands until {at}"),
    "reported_at": L("挂失时间", "Reported"),
    "waited": L("已等待", "Waited"),
    "sla_left": L("审核时限剩余", "Review SLA left"),
    "sla_overdue": L("已超时 {span}", "overdue by {span}"),
    "sla_remaining": L("剩余 {span}", "{span} left"),
    "sla_soon": L("即将到期", "due soon"),
    "all_districts": L("全部区县", "All districts"),
    "filter": L("筛选", "Filter"),
    "sort_by": L("排序", "Sort by"),
    "sort_waited": L("等待最久在前", "Longest waiting first"),
    "sort_recent": L("最新在前", "Newest first"),
    "sort_sla": L("审核时限最紧在前", "Review SLA soonest first"),
    "sort_district": L("按区县", "By district"),
    "count": L("共 {n} 件", "{n} cases"),
    "listed_at": L("列表时间 {at}", "listed at {at}"),
    "refresh": L("刷新", "Refresh"),
    "page_of": L("第 {page} / {pages} 页", "Page {page} of {pages}"),
    "prev": L("上一页", "Previous"),
    "next": L("下一页", "Next"),
    "paging": L("翻页", "Pages"),
    "times_note": L(
        "本页时间均为北京时间（UTC+8）", "All times on this page are Beijing time (UTC+8)"
    ),
    "documents": L("文书", "Documents"),
    "loss_report_proof_pdf": L("挂失证明（PDF）", "Proof of loss report (PDF)"),
    "application_form_pdf": L(
        "医疗保险卡补办申请表（PDF，含个人信息）", "Application form (PDF, personal data)"
    ),
    "print_reason": L("打印理由（将记录在案）", "Why you print it (this is logged)"),
    "main_nav": L("主菜单", "Main menu"),
    "skip": L("跳到正文", "Skip to the content"),
    "refused_request": L("请求未被受理", "Request refused"),
    "no_cases": L("没有案件。", "No cases."),
    "case": L("案件", "Case"),
    "stage": L("阶段", "Stage"),
    "awaiting": L("等待", "Waiting for"),
    "pending_action": L("待办事项", "Pending"),
    "deadline": L("期限", "Until"),
    "district": L("区县", "District"),
    "category": L("参保类别", "Insured category"),
    "channel": L("挂失渠道", "Reported through"),
    "card": L("卡号", "Card"),
    "report": L("挂失", "Loss report"),
    "formal": L("正式挂失", "formal"),
    "temporary": L("临时挂失", "temporary"),
    "card_frozen": L("卡已冻结", "Card frozen"),
    "yes": L("是", "yes"),
    "no": L("否", "no"),
    "materials": L("材料清单", "Materials checklist"),
    "received": L("已收", "received"),
    "missing": L("缺", "missing"),
    "received_by": L("接收材料的工作人员", "Materials received by"),
    "correction_round": L("补正轮次", "Correction round"),
    "correction_reasons": L("补正原因", "Correction reasons"),
    "affiliation": L("单位/学校确认", "Unit/school confirmation"),
    "fee": L("工本费", "Fee"),
    "waived": L("已减免", "waived"),
    "assigned_to": L("领取人", "Claimed by"),
    "claim_expires": L("领取到期", "Claim expires"),
    "review_due": L("审核时限", "Review due"),
    "sla_breached": L("审核超时", "Review SLA breached"),
    "timeline": L("经过", "Timeline"),
    "time": L("时间", "Time"),
    "actor": L("操作人", "Actor"),
    "event": L("事件", "Event"),
    "detail": L("详情", "Detail"),
    "claim": L("领取", "Claim"),
    "release": L("退回队列", "Release to the queue"),
    "release_reason": L("退回原因", "Why"),
    "decide": L("审核决定", "Decision"),
    "approve": L("通过", "Approve"),
    "request_correction": L("要求补正", "Request correction"),
    "reject": L("驳回", "Reject"),
    "reasons": L(
        "原因（可多选，申请人将收到其中文说明）",
        "Reasons (one or more; the applicant is sent their Chinese text)",
    ),
    "internal_note": L("内部备注（不发送给申请人）", "Internal note (never sent to the applicant)"),
    "waive_fee": L("减免工本费（须主管）", "Waive the fee (supervisor only)"),
    "waiver_reason": L("减免理由", "Why waive"),
    "submit": L("提交", "Submit"),
    "override": L(
        "凭纸质证明确认单位/学校（须主管）", "Confirm the unit/school by paper letter (supervisor)"
    ),
    "letter_doc_id": L("证明文件编号", "Letter's document ID"),
    "letter_sha256": L("文件 SHA-256", "Letter's SHA-256"),
    "letter_pages": L("页数", "Pages"),
    "note": L("说明", "Note"),
    "reorder": L(
        "制卡失败：重新下单（须主管）", "Production failed: order the card again (supervisor)"
    ),
    "reorder_reason": L("重新下单的理由", "Why order again"),
    "cancel_case": L("撤销案件（运维）", "Cancel the case (operations)"),
    "cancel_reason": L("撤销原因", "Reason"),
    "export": L("导出经过（脱敏）", "Export the timeline (masked)"),
    "unmask": L("查看个人信息（将记录在案）", "Show personal data (this is logged)"),
    "unmask_reason": L("查看理由", "Why you need it"),
    "reason_needed": L("请说明理由（至少 4 个字）", "state why (at least 4 characters)"),
    "unmasked": L(
        "个人信息已显示；本次查看已记录在案。", "Personal data shown; this viewing is on record."
    ),
    "done": L("已完成。", "Done."),
    "refused": L("未执行", "Not done"),
    "forbidden_role": L("您的角色不能执行此操作。", "Your role may not do this."),
    "waiver_needs_supervisor": L(
        "减免工本费须由主管审批，审核员不能单独减免。",
        "A fee waiver needs a supervisor: a reviewer cannot waive alone.",
    ),
    "four_eyes": L(
        "四眼原则：您接收了本案的材料，须由另一位审核员审核。",
        "Four eyes: you received this case's materials; another reviewer must decide.",
    ),
    "claimed_by_other": L("本案已由 {who} 领取。", "This case is claimed by {who}."),
    "csrf": L(
        "表单已过期，请刷新页面后重试。", "The form has expired; reload the page and try again."
    ),
    "not_found": L("没有这个案件。", "No such case."),
    "roles": L("角色", "Roles"),
    "role_reviewer": L("审核员", "reviewer"),
    "role_supervisor": L("主管", "supervisor"),
    "role_operations": L("运维", "operations"),
    "role_auditor": L("审计", "auditor"),
    "language": L("English", "中文"),
    "none": L("无", "none"),
}


def span(seconds: float) -> Label:
    """A length of time as people say it: `3 天 4 小时`, `2 小时 5 分`, `7 分钟`."""
    minutes = max(0, int(seconds // 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return L(f"{days} 天 {hours} 小时", f"{days} d {hours} h")
    if hours:
        return L(f"{hours} 小时 {mins} 分", f"{hours} h {mins} min")
    return L(f"{mins} 分钟", f"{mins} min")
