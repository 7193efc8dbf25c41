"""An application's history (办理记录), from the audit log, in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select

from .clock import CHINA_TZ, china_date
from .extensions import db
from .models import (
    Application,
    ApplicationStatus,
    AttachmentKind,
    AuditLog,
    ChangeKind,
    ChangeStatus,
    Role,
)


def change_events(change_id: int) -> list[tuple[AuditLog, str, str]]:
    """A change request's 办理记录: (row, action in words, detail in words), oldest first."""
    rows = db.session.scalars(
        select(AuditLog)
        .where(AuditLog.object_type == "change_request", AuditLog.object_id == str(change_id))
        .order_by(AuditLog.at, AuditLog.id)
    )
    return [
        (row, AUDIT_ACTION_LABELS.get(row.action, row.action), describe_for_audit_log(row))
        for row in rows
    ]


def events(application: Application) -> list[AuditLog]:
    """Every audited step of the application, oldest first."""
    return list(
        db.session.scalars(
            select(AuditLog)
            .where(AuditLog.object_type == "application", AuditLog.object_id == str(application.id))
            .order_by(AuditLog.at, AuditLog.id)
        )
    )


ACTION_LABELS = {
    "application_created": "创建申请",
    "application_updated": "修改单位基本信息",
    "application_import": "导入气瓶信息",
    "application_import_queued": "上传气瓶信息（后台导入）",
    "application_import_interrupted": "后台导入意外中断（未导入任何气瓶）",
    "application_import_retried": "重试后台导入",
    "application_item_updated": "修改气瓶信息",
    "application_item_deleted": "删除气瓶",
    "application_submitted": "提交申请",
    "application_copied": "由作废申请复制",
    "photo_added": "上传照片",
    "photo_replaced": "替换照片",
    "photo_deleted": "删除照片",
    "photos_bulk_uploaded": "批量上传照片",
    "attachment_audit_saved": "审核附件（保存审核结果）",
    "attachment_audit_completed": "附件审核完成",
    "application_accepted": "受理",
    "application_reviewed": "审核通过",
    "application_approved": "审批通过",
    "application_voided": "驳回（退件）",
    "application_returned": "退回补正（一次性告知）",
    "application_resubmitted": "补正后重新提交",
    "application_withdrawn": "撤回申请",
    "certificate_generated": "证书生成",
    "certificate_voided": "注销使用登记证",
    "application_deadline_recomputed": "期限按节假日安排重新计算",
    "unit_identity_confirmed": "确认单位信息变更",
}

# Change requests after registration (change_workflow), on the audit log page.
CHANGE_ACTION_LABELS = {
    "change_submitted": "提交变更申请",
    "change_received": "接收单位确认接收（过户）",
    "change_accepted": "受理变更申请",
    "change_approved": "批准变更申请（已生效）",
    "change_rejected": "驳回变更申请",
    "change_opened_by_inspection": "检验判废，生成注销任务",
    "change_withdrawn": "使用单位撤回变更申请",
    "change_scrap_record_held": "检验机构已判废（气瓶在本申请中，本申请办结后生成注销任务）",
    "certificate_version_issued": "换发使用登记证（新版本）",
}


# Every audit action in words, for the audit log page (the application history uses the
# ones above; these add sign-in, administration, certificates and the JSON API).
AUDIT_ACTION_LABELS = {
    **ACTION_LABELS,
    **CHANGE_ACTION_LABELS,
    "login": "登录",
    "logout": "退出",
    "account_locked": "账号锁定",
    "account_unlocked": "账号解锁",
    "login_address_locked": "地址登录暂停（连续失败）",
    "password_reset": "重置密码",
    "password_change_required": "须修改弱密码",
    "password_changed": "修改本人密码",
    "user_created": "新建用户",
    "user_updated": "修改用户",
    "user_enabled": "启用用户",
    "user_disabled": "停用用户",
    "role_changed": "变更角色",
    "role_denied": "越权访问（拒绝）",
    "read_only_denied": "只读用户修改（拒绝）",
    "unit_created": "新建单位",
    "unit_updated": "修改单位",
    "application_deleted": "删除草稿",
    "certificate_rendered": "证书文件已生成",
    "certificate_render_failed": "证书文件生成失败",
    "certificate_render_retried": "重试生成证书文件",
    "certificates_printed": "打印证书",
    "api_client_issued": "签发接口客户端",
    "api_client_rotated": "轮换接口密钥",
    "api_client_revoked": "吊销接口客户端",
    "api_client_enabled": "启用接口客户端",
    "api_token_issued": "接口身份鉴权",
    "api_auth_failed": "接口鉴权失败",
    "api_auth_throttled": "接口鉴权限流",
    "api_auth_locked": "接口鉴权地址暂停（连续失败）",
    "api_auth_alert": "接口鉴权告警",
    "api_call": "接口调用",
    "tag_bound": "信息化标签绑定",
    "access_denied": "越权访问（拒绝）",
    "audit_pruned": "清理过期审计日志",
    "cylinder_inspection_applied": "检验记录更新气瓶档案",
    "export": "导出数据",
    "work_calendar_entered": "录入节假日安排",
}


DETAIL_LABELS = {
    "product_no": "产品编号",
    "kind": "照片类型",
    "imported": "成功",
    "failed": "失败",
    "rows": "行数",
    "items": "气瓶数",
    "files": "文件数",
    "stored": "成功",
    "number": "申请编号",
    "copied_from": "复制自申请",
    "reason": "原因",
    "note": "说明",
    "registered": "登记气瓶",
    "excluded": "排除气瓶",
    "total": "气瓶数",
    "wrong": "错误",
    "certificate_no": "使用登记证编号",
    "cylinders": "气瓶数",
    "step": "环节",
    "old_due_on": "原期限",
    "new_due_on": "新期限",
    "name_typed": "申请填写单位",
    "name_registered": "登记单位",
    "credit_code_typed": "申请填写信用代码",
    "credit_code_registered": "登记信用代码",
    "round": "补正轮次",
    "correction_items": "补正事项",
    "remaining_workdays": "期限剩余工作日",
    "document_no": "文书编号",
    "paused_workdays": "期限暂停工作日",
    "paused_rounds_recounted": "重新计算暂停工作日的补正次数",
    "returned_workdays": "待补正工作日",
    "changed_items": "修改气瓶",
    "added_items": "新增气瓶",
    "removed_items": "删除气瓶",
}

# Further detail fields, shown on the audit log page (not in an application's 办理记录).
AUDIT_DETAIL_LABELS = {
    **DETAIL_LABELS,
    "changed": "保存气瓶",
    "conflicts": "与他人修改冲突",
    "bytes": "文件大小（字节）",
    "change": "变更",
    "conclusion": "检验结论",
    "cutoff": "清理截止时间",
    "deleted": "删除条数",
    "older_than_days": "保留天数",
    "end": "截止",
    "start": "起始",
    "error": "错误信息",
    "from_status": "原状态",
    "import_job": "导入任务",
    "info_code": "信息化编码",
    "inspect_type": "检验类型",
    "numbers": "证书编号",
    "overdue": "仅超期",
    "path": "访问地址",
    "role": "角色",
    "scope_changed": "管辖范围变更",
    "scopes": "接口权限",
    "status": "状态",
    "table": "表格",
    "tag_type": "信息化管理情况",
    "until": "锁定至",
    "username": "用户名",
    "calendar_year": "年份",
    "deadlines_moved": "期限变动（件）",
    "document": "文号",
    "holidays": "放假天数",
    "replaced": "替换原安排",
    "version": "版本",
    "workdays": "调休上班天数",
    "account_was_locked": "账号曾被锁定",
    "addresses_cleared": "解除锁定的地址数",
    "failures": "连续失败次数",
    "forced": "因密码过弱被要求修改",
    "filter": "筛选条件",
    "change_kind": "变更类型",
    "from_change_status": "原状态",
    "reported_late": "逾期报停（停用后超过30日）",
    "reissued": "补发",
    "cylinder": "气瓶档案ID",
    "record_no": "记录编号",
}
# Detail fields that are technical evidence, not words for the reader (kept in the row).
HIDDEN_DETAILS = frozenset({"sha256"})

OBJECT_LABELS = {
    "api_client": "接口客户端",
    "calendar_year": "节假日安排年份",
    "application": "申请",
    "audit_log": "审计日志",
    "certificate": "使用登记证",
    "certificates": "使用登记证",
    "change_request": "变更申请",
    "cylinder": "气瓶",
    "cylinders": "气瓶档案",
    "dashboard": "监管看板",
    "district_applications": "区县申请列表",
    "unit": "单位",
    "user": "用户",
}
_KIND_LABELS = {k.value: k.label for k in AttachmentKind}
_STATUS_LABELS = {s.value: s.label for s in ApplicationStatus}
_ROLE_LABELS = {r.value: r.label for r in Role}
_CHANGE_KIND_LABELS = {k.value: k.label for k in ChangeKind}
_CHANGE_STATUS_LABELS = {s.value: s.label for s in ChangeStatus}


def _value_in_words(key: str, value: object) -> object:
    if key == "kind":
        return _KIND_LABELS.get(str(value), value)
    if key == "from_status":
        return _STATUS_LABELS.get(str(value), value)
    if key == "role":
        return _ROLE_LABELS.get(str(value), value)
    if key == "change_kind":
        return _CHANGE_KIND_LABELS.get(str(value), value)
    if key == "from_change_status":
        return _CHANGE_STATUS_LABELS.get(str(value), value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(map(str, value))
    return value


def _audit_saved(detail: dict) -> str:
    text = f"保存{detail.get('changed', 0)}只气瓶的审核结果"
    if detail.get("conflicts"):
        text += f"，{detail['conflicts']}只已被他人修改，未覆盖"
    return text


# Actions whose detail reads better as one sentence than as label：value pairs.
_SENTENCES = {"attachment_audit_saved": _audit_saved}


def describe_event(event: AuditLog, labels: dict[str, str] = DETAIL_LABELS) -> str:
    """An audit row's detail in words (technical fields such as hashes are left out)."""
    detail = event.detail or {}
    if event.action in _SENTENCES:
        return _SENTENCES[event.action](detail)
    parts = []
    for key, value in detail.items():
        if key in labels and key not in HIDDEN_DETAILS:
            parts.append(f"{labels[key]}：{_value_in_words(key, value)}")
    return "，".join(parts)


def describe_for_audit_log(event: AuditLog) -> str:
    """Every detail field in words, for the audit log page; unknown fields by their key."""
    words = describe_event(event, AUDIT_DETAIL_LABELS)
    unknown = [
        f"{key}：{value}"
        for key, value in (event.detail or {}).items()
        if key not in AUDIT_DETAIL_LABELS
        and key not in HIDDEN_DETAILS
        and event.action not in _SENTENCES
    ]
    return "，".join(filter(None, [words, *unknown]))


def object_in_words(event: AuditLog, application_numbers: dict[str, str]) -> str:
    """The audited object as the clerk names it: 申请 SQ2026…, 使用登记证 12 …"""
    if not event.object_type:
        return ""
    label = OBJECT_LABELS.get(event.object_type, event.object_type)
    object_id = event.object_id or ""
    if event.object_type == "application":
        object_id = application_numbers.get(object_id, object_id)
    return f"{label} {object_id}".strip()


def application_numbers(events: list[AuditLog]) -> dict[str, str]:
    """Application numbers for the application ids the events name (one query)."""
    ids = {
        int(e.object_id)
        for e in events
        if e.object_type == "application" and e.object_id and e.object_id.isdigit()
    }
    if not ids:
        return {}
    rows = db.session.execute(
        select(Application.id, Application.number).where(Application.id.in_(ids))
    )
    return {str(i): number for i, number in rows if number}


# ---------------------------------------------------------------- 办理记录 at 1,000 cylinders
# Uploading 2,000 photos or saving 1,000 verdicts one by one writes a row each; the history
# shows them as one line per kind, person and day, while every step and decision keeps its own.
ROUTINE_ACTIONS = {
    "photo_added": "张",
    "photo_replaced": "张",
    "photo_deleted": "张",
    "attachment_audit_saved": "次",
}


@dataclass
class HistoryEntry:
    """One line of 办理记录: an audit row, or a day's routine rows of one person folded."""

    at: datetime
    until: datetime
    actor_name: str
    action: str
    outcome: str
    label: str
    words: str
    count: int = 1
    detail: dict | None = None


def _folded_words(entry: HistoryEntry) -> str:
    span = f"{entry.at.astimezone(CHINA_TZ).strftime('%H:%M')}–"
    span += entry.until.astimezone(CHINA_TZ).strftime("%H:%M")
    detail = entry.detail or {}
    if entry.action == "attachment_audit_saved":
        text = f"保存{detail.get('changed', 0)}只气瓶的审核结果，分{entry.count}次"
        if detail.get("conflicts"):
            text += f"，{detail['conflicts']}只已被他人修改，未覆盖"
        return f"{text}，{span}"
    return f"{entry.count}{ROUTINE_ACTIONS[entry.action]}，{span}"


def timeline(application: Application) -> list[HistoryEntry]:
    """办理记录 in words, oldest first, routine rows folded (see ROUTINE_ACTIONS)."""
    entries: list[HistoryEntry] = []
    folds: dict[tuple[str, str, date, str], HistoryEntry] = {}
    for event in events(application):
        at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
        label = ACTION_LABELS.get(event.action, event.action)
        if event.action in ROUTINE_ACTIONS:
            key = (event.action, event.actor_name, china_date(at), event.outcome)
            fold = folds.get(key)
            if fold is not None:
                fold.count += 1
                fold.until = at
                if fold.detail is not None and event.action == "attachment_audit_saved":
                    for field in ("changed", "conflicts"):
                        fold.detail[field] = fold.detail.get(field, 0) + event.detail.get(field, 0)
                continue
            detail = dict(event.detail or {})
            fold = HistoryEntry(
                at, at, event.actor_name, event.action, event.outcome, label, "", detail=detail
            )
            fold.words = describe_event(event)
            folds[key] = fold
            entries.append(fold)
            continue
        entries.append(
            HistoryEntry(
                at, at, event.actor_name, event.action, event.outcome, label, describe_event(event)
            )
        )
    for entry in entries:
        if entry.count > 1:
            entry.words = _folded_words(entry)
    return entries
