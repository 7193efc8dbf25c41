"""The /api/v1 endpoints: parse and authorise here, the work happens in domain modules."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

from flask import Response, current_app, g, jsonify, render_template, request

from ... import api_auth, api_records, cylinder_changes, interlock, record_quota, tag_binding
from ...api_validation import (
    BEIJING,
    CHANGES_DEFAULT_LIMIT,
    CHANGES_REQUEST,
    CYLINDER_ID,
    CYLINDER_LOOKUP,
    CYLINDER_REF,
    FILLING_CHECK,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_BATCH,
    TAG_BIND,
    TOKEN_REQUEST,
    RecordSpec,
    field_checker,
    today,
)
from ...errors import api_envelope
from ...extensions import csrf
from ...models import (
    ApiCaller,
    ApiClient,
    Cylinder,
    FillingRecord,
    InspectionRecord,
    TagType,
    TraceEvent,
    UnitKind,
)
from . import bp, openapi
from .envelope import Answer, ApiError, endpoint, validation_error

csrf.exempt(bp)

BEIJING_FORMAT = "%Y-%m-%d %H:%M:%S"


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def cylinder_dict(c: Cylinder) -> dict[str, Any]:
    """The archive record under the section 3 keys."""
    return {
        "id": c.id,
        "use_unit_name": c.use_unit_name,
        "district_code": c.district_code,
        "variety_code": c.variety_code,
        "product_no": c.product_no,
        "medium_code": c.medium_code,
        "manufacturer": c.manufacturer,
        "manufacture_month": c.manufacture_month,
        "nominal_pressure_mpa": _money(c.nominal_pressure_mpa),
        "volume_l": _money(c.volume_l),
        "last_inspection_date": c.last_inspection_date.isoformat()
        if c.last_inspection_date
        else None,
        "next_inspection_month": c.next_inspection_month,
        "internal_no": c.internal_no,
        "status": c.status.label,
        "tag_type": c.tag_type.label if c.tag_type else None,
        "info_code": c.info_code,
        "qr_content": c.qr_content,
        "certificate_no": c.certificate_no,
        "registration_date": c.registration_date.isoformat() if c.registration_date else None,
        "registration_authority": c.registration_authority,
    }


def _validated(spec: RecordSpec, body: dict[str, Any]) -> dict[str, Any]:
    clean, errors = spec.validate(body)
    if errors:
        raise validation_error(errors)
    return clean


LOOKUP_LABELS = {
    "id": "ID",
    "info_code": "信息化编码",
    "qr_content": "二维码",
    "identity": "制造单位+产品编号+制造年月",
}


def _find(clean: dict[str, Any], finder: Callable[..., Any] = api_records.find_cylinder) -> Any:
    """The cylinder named by the lookup keys given; None when none of them is known.

    ``finder`` loads one cylinder by one key (default: the ORM ``Cylinder``; the check
    passes ``api_records.interlock_facts``, a Core row of the interlock's columns).

    Several keys may be given only if they name the same cylinder: keys that name different
    cylinders, or one known and one unknown, are refused (400) rather than answered with
    whichever matched first.
    """
    found: dict[str, Any] = {}
    if "id" in clean:
        found["id"] = finder(id=clean["id"])
    if "info_code" in clean:
        found["info_code"] = finder(info_code=clean["info_code"])
    if "qr_content" in clean:
        found["qr_content"] = finder(qr_content=clean["qr_content"])
    if all(k in clean for k in ("manufacturer", "product_no", "manufacture_month")):
        found["identity"] = finder(
            identity=(clean["manufacturer"], clean["product_no"], clean["manufacture_month"])
        )
    cylinders = {c.id: c for c in found.values() if c is not None}
    if len(found) > 1 and (len(cylinders) > 1 or (cylinders and None in found.values())):
        described = []
        for key, cylinder in found.items():
            what = f"气瓶{cylinder.id}" if cylinder else "不存在的气瓶"
            described.append(f"{LOOKUP_LABELS[key]}指向{what}")
        message = "查询条件互相矛盾：" + "，".join(described) + "；请只提供一种查询条件或核对各条件"
        fields = [k if k != "identity" else "manufacturer" for k in found]
        raise validation_error([{"field": f, "message": message} for f in fields])
    return next(iter(cylinders.values()), None)


def _lookup(clean: dict[str, Any]) -> Cylinder:
    cylinder: Cylinder | None = _find(clean)
    if cylinder is None:
        raise ApiError(404, "未找到该气瓶的使用登记档案")
    return cylinder


@bp.post("/v1/auth/token")
@endpoint(scope=None, authenticated=False)
def token(body: dict[str, Any]) -> Answer:
    clean = _validated(TOKEN_REQUEST, body)
    try:
        issued = api_auth.exchange(clean["app_id"], clean["app_secret"], request.remote_addr)
    except api_auth.AuthThrottled as exc:
        raise ApiError(
            429,
            f"本地址对该app_id的鉴权失败次数过多，已暂停，请{exc.retry_after}秒后再试；"
            "其他地址的调用不受影响",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None
    except api_auth.AuthFailed:
        raise ApiError(401, "app_id或app_secret不正确，或调用单位已停用") from None
    return Answer(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
        }
    )


@bp.post("/v1/cylinders/query")
@endpoint(scope="query", read_only=True)
def query(client: ApiCaller, body: dict[str, Any]) -> Answer:
    cylinder = _lookup(_validated(CYLINDER_LOOKUP, body))
    return Answer(cylinder_dict(cylinder))


@bp.post("/v1/tags/bind")
@endpoint(scope="bind")
def bind(client: ApiClient, body: dict[str, Any]) -> Answer:
    clean = _validated(TAG_BIND, body)
    # The cylinder is named by id or the identity triple; qr_content is the tag being bound.
    named = {
        k: clean[k] for k in ("id", "manufacturer", "product_no", "manufacture_month") if k in clean
    }
    cylinder = _lookup(named)
    tag_type = TagType.from_label(clean["tag_type"])
    assert tag_type is not None  # TAG_BIND admits only the labels
    value_key = "qr_content" if tag_type is TagType.QR else "rfid"
    if value_key not in clean:
        label = "二维码" if tag_type is TagType.QR else "RFID标签编码"
        raise validation_error(
            [{"field": value_key, "message": f"{clean['tag_type']}绑定须提供{label}"}]
        )
    try:
        photo = base64.b64decode(clean["stamp_photo"], validate=True)
    except (binascii.Error, ValueError):
        raise validation_error(
            [{"field": "stamp_photo", "message": "气瓶钢印图片不是有效的base64编码"}]
        ) from None
    try:
        result = tag_binding.bind(client, cylinder, tag_type, clean[value_key], photo)
    except tag_binding.BindRefused as exc:
        if exc.field:
            raise validation_error([{"field": exc.field, "message": exc.message}]) from None
        raise ApiError(exc.status, exc.message) from None
    message = "绑定成功" if result.created else "该标签已绑定此气瓶，返回原信息化编码"
    return Answer({"id": cylinder.id, "info_code": result.binding.info_code}, message)


_CHECK_ID = field_checker(CYLINDER_ID)


def _check_prefetch(body: dict[str, Any]) -> str | None:
    """The cylinder ID to read with the token: a check by ID only (the common call), and
    only a valid one (a NUL or a lone surrogate cannot even be sent to PostgreSQL: the
    validation answers it, after the token)."""
    if "info_code" in body:
        return None
    value, error = _CHECK_ID(body.get("id"))
    return None if error else value


def _check_facts(**keys: Any) -> interlock.CylinderFacts | None:
    """The facts read with the token when they are of this ID; else read them now."""
    prefetched = g.get("api_prefetched")
    if prefetched is not None and set(keys) == {"id"} and keys["id"] == prefetched[0]:
        return cast("interlock.CylinderFacts | None", prefetched[1])
    return api_records.interlock_facts(**keys)


@bp.post("/v1/fillings/check")
@endpoint(scope="filling", read_only=True, prefetch=_check_prefetch, own_connection=True)
def filling_check(client: ApiCaller, body: dict[str, Any]) -> Answer:
    clean = _validated(FILLING_CHECK, body)
    # FILLING_CHECK admits only id and info_code, the two keys interlock_facts reads.
    cylinder: interlock.CylinderFacts | None = _find(clean, _check_facts)
    reasons = interlock.check(
        cylinder,
        clean["medium_code"],
        client.unit_id,
        today(),
        current_app.config["SERVICE_LIFE_RULES"],
    )
    data = {
        "id": cylinder.id if cylinder else clean.get("id"),
        "fillable": not reasons,
        "reasons": [r.as_dict() for r in reasons],
    }
    counts = {"fillable": int(not reasons)}
    return Answer(data, "可以充装" if not reasons else "不得充装", counts=counts)


def _batch(client: ApiClient | ApiCaller, body: dict[str, Any], kind: str) -> Answer:
    unknown = [k for k in body if k != "records"]
    if unknown:
        raise validation_error(
            [{"field": str(k)[:50], "message": f"未知字段“{str(k)[:50]}”"} for k in unknown]
        )
    records = body.get("records")
    if not isinstance(records, list):
        raise validation_error([{"field": "records", "message": "records应为记录数组"}])
    if not records:
        raise validation_error([{"field": "records", "message": "records不能为空"}])
    if len(records) > MAX_BATCH:
        raise validation_error(
            [
                {
                    "field": "records",
                    "message": f"一次最多提交{MAX_BATCH}条记录（收到{len(records)}条）",
                }
            ]
        )
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
            raise validation_error(
                [{"field": "Idempotency-Key", "message": "Idempotency-Key应为1–100个可见字符"}]
            )
        try:
            earlier = api_records.claim_idempotency_key(
                client, key, request.path, api_records.body_hash(request.get_data())
            )
        except api_records.IdempotencyConflict:
            raise ApiError(409, "该Idempotency-Key已用于内容不同的请求") from None
        if earlier is not None:
            if earlier.response is None:
                # The first request with this key is still being processed (or failed).
                raise ApiError(409, "该Idempotency-Key的首次请求尚未完成，请稍后重发")
            data = api_records.replay_first_answer(earlier.response)
            return Answer(
                data,
                "重复请求：已按同一Idempotency-Key接收过，未重复存储；以下为首次答复",
                counts={"records": len(records), "replay": 1},
                headers={"Idempotent-Replayed": "true"},
            )
    wait = record_quota.retry_after(client.app_id, len(records))
    if wait is not None:
        raise ApiError(
            429,
            f"提交的记录超过本接口客户端的限额（{current_app.config['API_RECORD_RATE_LIMIT']}），"
            f"请{wait}秒后再提交；如为正常业务量，请联系管理员调整限额",
            headers={"Retry-After": str(wait)},
        )
    result = api_records.submit_batch(client, kind, records)
    data = result.as_dict()
    if key is not None:
        api_records.remember_response(client, key, data)
    counts = {
        "records": len(records),
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
    }
    if kind == "filling":
        counts["violations"] = sum(1 for r in result.results if r.get("violation"))
    message = f"接收{result.accepted}条，重复{result.duplicates}条，未通过{result.rejected}条"
    return Answer(data, message, counts=counts)


@bp.post("/v1/fillings")
@endpoint(scope="filling", plain_client=True)
def fillings(client: ApiCaller, body: dict[str, Any]) -> Answer:
    return _batch(client, body, "filling")


@bp.post("/v1/inspections")
@endpoint(scope="inspection")
def inspections(client: ApiClient, body: dict[str, Any]) -> Answer:
    # Inspection records stop and scrap cylinders: only inspection bodies may send them.
    if client.unit.kind is not UnitKind.INSPECTION_BODY:
        raise ApiError(
            403,
            f"调用单位“{client.unit.name}”不是检验检测单位，不能提交检验记录"
            "（单位类型由系统管理员在单位管理中设置）",
        )
    return _batch(client, body, "inspection")


@bp.post("/v1/traces")
@endpoint(scope="trace", plain_client=True)
def traces(client: ApiCaller, body: dict[str, Any]) -> Answer:
    return _batch(client, body, "trace")


def mask_name(name: str) -> str:
    """张三丰 → 张**: personal names of other enterprises' staff are not handed out."""
    return name[:1] + "*" * (len(name) - 1)


def _filling_dict(r: FillingRecord, client: ApiCaller) -> dict[str, Any]:
    return {
        "medium_code": r.medium_code,
        "filler": r.filler if r.client_id == client.id else mask_name(r.filler),
        "fill_date": r.fill_date.isoformat(),
        "filling_unit_name": r.filling_unit_name,
        "id": r.cylinder_id,
        "violation": r.violation,
        "violation_reasons": list(r.violation_reasons),
    }


def _inspection_dict(r: InspectionRecord) -> dict[str, Any]:
    return {
        "inspect_date": r.inspect_date.isoformat(),
        "inspection_org": r.inspection_org,
        "next_inspection_month": r.next_inspection_month,
        "conclusion": r.conclusion,
        "inspect_type": r.inspect_type,
        "id": r.cylinder_id,
    }


def _trace_dict(r: TraceEvent, client: ApiCaller) -> dict[str, Any]:
    return {
        "time": r.event_time.astimezone(BEIJING).strftime(BEIJING_FORMAT),
        "node": r.node,
        # 单位名称或姓名: may be a person's name, so masked unless this client sent it.
        "actor": r.actor if r.client_id == client.id else mask_name(r.actor),
        "id": r.cylinder_id,
    }


@bp.post("/v1/cylinders/trail")
@endpoint(scope="query", read_only=True)
def trail(client: ApiCaller, body: dict[str, Any]) -> Answer:
    clean = _validated(CYLINDER_REF, body)
    cylinder: Cylinder | None = _find(clean)
    if cylinder is None:
        # Not in the archive (黑气瓶?): the platform may still read back what its own unit
        # sent under that ID, so it can show its own NOT_REGISTERED violations.
        if "id" in clean:
            own = api_records.own_trail(clean["id"], client.unit_id)
            if any(own.values()):
                return Answer(
                    {
                        "cylinder": None,
                        "fillings": [_filling_dict(r, client) for r in own["fillings"]],
                        "inspections": [],
                        "traces": [_trace_dict(r, client) for r in own["traces"]],
                    },
                    "该ID未在使用登记档案中登记（NOT_REGISTERED，可能为黑气瓶）；"
                    "以下仅为本单位以该ID提交的记录",
                )
        raise ApiError(404, "未找到该气瓶的使用登记档案")
    found = api_records.trail(cylinder.id)
    return Answer(
        {
            "cylinder": cylinder_dict(cylinder),
            "fillings": [_filling_dict(r, client) for r in found["fillings"]],
            "inspections": [_inspection_dict(r) for r in found["inspections"]],
            "traces": [_trace_dict(r, client) for r in found["traces"]],
        }
    )


@bp.post("/v1/cylinders/changes")
@endpoint(scope="query", read_only=True)
def changes(client: ApiCaller, body: dict[str, Any]) -> Answer:
    clean = _validated(CHANGES_REQUEST, body)
    limit = clean.get("limit", CHANGES_DEFAULT_LIMIT)
    try:
        page = cylinder_changes.changes_since(client.unit_id, clean.get("cursor"), limit)
    except cylinder_changes.BadCursor:
        message = "cursor无效：请使用上次答复中的cursor，或传null从头同步"
        raise validation_error([{"field": "cursor", "message": message}]) from None
    return Answer(
        {
            "cylinders": [_change_dict(e) for e in page.entries],
            "cursor": page.cursor,
            "more": page.more,
        },
        f"返回{len(page.entries)}条变更" + ("，还有更多" if page.more else ""),
        counts={"cylinders": len(page.entries)},
    )


def _change_dict(entry: cylinder_changes.FeedEntry) -> dict[str, Any]:
    """A feed entry: the archive record plus ``left_unit``. A departure (过户转出) shows the
    cylinder under the receiving unit as it was at the transfer: drop it from the
    terminal's list."""
    record = cylinder_dict(entry.cylinder)
    departure = entry.departure
    if departure is None:
        return {**record, "left_unit": False, "left_on": None}
    return {
        **record,
        "use_unit_name": departure.to_unit_name,
        "district_code": departure.to_district_code,
        "certificate_no": departure.to_certificate_no,
        "registration_authority": departure.to_registration_authority,
        "internal_no": None,  # the new owner's own numbering is not the sender's business
        "left_unit": True,
        "left_on": departure.left_on.isoformat(),
    }


@bp.get("/v1/openapi.json")
def openapi_document() -> Response:
    return jsonify(openapi.document())


@bp.get("/docs")
def docs() -> str:
    return render_template("api/docs.html", spec=openapi.document())


@bp.after_request
def _options_in_the_envelope(response: Response) -> Response:
    """OPTIONS (Flask answers it for every route) in the envelope, like every API answer."""
    if request.method != "OPTIONS" or response.status_code != 200:
        return response
    allow = [m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()]
    answer = api_envelope(200, f"该地址支持的请求方式：{', '.join(allow)}", {"allow": allow})
    answer.headers["Allow"] = ", ".join(allow)
    return answer
