"""An application's history (办理记录), from the audit log, in words."""

from __future__ import annotations

from sqlalchemy import select

from .extensions import db
from .models import Application, AttachmentKind, AuditLog


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
    "certificate_generated": "证书生成",
    "certificate_voided": "注销使用登记证",
    "unit_identity_confirmed": "确认单位信息变更",
}


# Every audit action in words, for the audit log page (the application history uses the
# ones above; these add sign-in, administration, certificates and the JSON API).
AUDIT_ACTION_LABELS = {
    **ACTION_LABELS,
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
    "changed": "更新",
    "conflicts": "冲突",
    "total": "气瓶数",
    "wrong": "错误",
    "certificate_no": "使用登记证编号",
    "cylinders": "气瓶数",
    "name_typed": "申请填写单位",
    "name_registered": "登记单位",
    "credit_code_typed": "申请填写信用代码",
    "credit_code_registered": "登记信用代码",
}
_KIND_LABELS = {k.value: k.label for k in AttachmentKind}


def describe_event(event: AuditLog) -> str:
    """An audit row's detail in words (technical fields such as hashes are left out)."""
    parts = []
    for key, value in (event.detail or {}).items():
        if key not in DETAIL_LABELS:
            continue
        if key == "kind":
            value = _KIND_LABELS.get(value, value)
        parts.append(f"{DETAIL_LABELS[key]}：{value}")
    return "，".join(parts)
