"""The OpenAPI 3.1 document of /api/v1, built from the same field specs that validate."""

from __future__ import annotations

from functools import cache
from typing import Any

from ...api_validation import (
    CYLINDER_LOOKUP,
    CYLINDER_REF,
    FILLING,
    FILLING_CHECK,
    INSPECTION,
    MAX_BATCH,
    TAG_BIND,
    TOKEN_REQUEST,
    TRACE,
)
from ...interlock import MESSAGES as INTERLOCK_MESSAGES
from ...interlock import REASON_CODES

NULLABLE_STR = {"type": ["string", "null"]}


def _str(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _nullable(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": ["string", "null"], "description": description, **extra}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


FIELD_ERROR = _obj({"field": _str("出错的字段（整体错误时为空）"), "message": _str("错误说明")})

CYLINDER = _obj(
    {
        "id": _str("ID（气瓶档案ID）"),
        "use_unit_name": _str("使用单位名称"),
        "district_code": _str("设备区域（区域代码）"),
        "variety_code": _str("设备品种（2310无缝/2320焊接/23T0特种）"),
        "product_no": _str("产品编号（镂空码）"),
        "medium_code": _str("充装介质（编码）"),
        "manufacturer": _str("制造单位"),
        "manufacture_month": _str("制造年月（yyyy-mm）"),
        "nominal_pressure_mpa": {"type": "number", "description": "公称工作压力(MPa)"},
        "volume_l": {"type": "number", "description": "容积(L)"},
        "last_inspection_date": _nullable("最近一次检验日期（yyyy-mm-dd）"),
        "next_inspection_month": _nullable("下次检验日期（yyyy-mm）"),
        "internal_no": _nullable("单位内编号"),
        "status": {"type": "string", "enum": ["在用", "停用", "报废"], "description": "使用状态"},
        "tag_type": {
            "type": ["string", "null"],
            "enum": ["二维码", "RFID标签", None],
            "description": "信息化管理情况",
        },
        "info_code": _nullable("信息化编码"),
        "qr_content": _nullable("二维码（URL）"),
        "certificate_no": _nullable("使用登记证编号"),
        "registration_date": _nullable("使用登记日期（yyyy-mm-dd）"),
        "registration_authority": _nullable("使用登记机关"),
    }
)

REASON = _obj(
    {
        "code": {"type": "string", "enum": list(REASON_CODES), "description": "原因代码"},
        "message": _str("原因说明"),
    }
)

RECORD_RESULT = _obj(
    {
        "index": {"type": "integer", "description": "记录在records中的序号（从0开始）"},
        "code": {
            "type": "string",
            "enum": ["200", "400", "409"],
            "description": "200已接收；400未通过校验（见errors）；409重复记录，未重复存储",
        },
        "message": _str("结果说明"),
        "record_no": _str("记录编号"),
        "errors": {"type": "array", "items": FIELD_ERROR, "description": "逐字段的错误"},
        "violation": {"type": "boolean", "description": "充装记录：是否违规充装"},
        "reasons": {"type": "array", "items": REASON, "description": "违规充装的联锁原因"},
    },
    required=["index", "code", "message"],
)

BATCH_RESULT = _obj(
    {
        "accepted": {"type": "integer", "description": "接收条数"},
        "duplicates": {"type": "integer", "description": "重复条数"},
        "rejected": {"type": "integer", "description": "未通过条数"},
        "results": {"type": "array", "items": RECORD_RESULT, "description": "逐条结果"},
    }
)


def _batch_request(spec, title: str) -> dict[str, Any]:
    return _obj(
        {
            "records": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": spec.schema(),
                "description": f"{title}（每批最多{MAX_BATCH}条）",
            }
        }
    )


FILLING_RECORD_OUT = _obj(
    {
        "medium_code": _str("充装介质"),
        "filler": _str("充装人员（其他调用单位提交的记录只显示姓氏）"),
        "fill_date": _str("充装日期（yyyy-mm-dd）"),
        "filling_unit_name": _str("充装单位名称"),
        "id": _str("ID（气瓶档案ID）"),
        "violation": {"type": "boolean", "description": "是否违规充装"},
        "violation_reasons": {
            "type": "array",
            "items": {"type": "string", "enum": list(REASON_CODES)},
            "description": "违规充装的联锁原因代码",
        },
    }
)
INSPECTION_RECORD_OUT = _obj(
    {
        "inspect_date": _str("检验日期（yyyy-mm-dd）"),
        "inspection_org": _str("检验检测单位"),
        "next_inspection_month": _nullable("下次检验日期（yyyy-mm）"),
        "conclusion": _str("检验结论"),
        "inspect_type": _str("检验类型（定期、报废处置）"),
        "id": _str("ID（气瓶档案ID）"),
    }
)
TRACE_OUT = _obj(
    {
        "time": _str("日期（yyyy-MM-dd HH:mm:ss，北京时间）"),
        "node": _str("节点名称"),
        "actor": _str("单位名称或姓名（其他调用单位提交的记录只显示首字）"),
        "id": _str("ID（气瓶档案ID）"),
    }
)

OPERATIONS: list[dict[str, Any]] = [
    {
        "path": "/auth/token",
        "summary": "身份鉴权",
        "description": (
            "以app_id与app_secret换取访问令牌（有效期2小时）。同一地址对同一app_id连续鉴权失败"
            "过多时，该地址返回429（Retry-After为需等待的秒数，再次锁定时加倍）；"
            "其他地址使用正确密钥不受影响。"
        ),
        "request": TOKEN_REQUEST.schema(),
        "data": _obj(
            {
                "access_token": _str("访问令牌"),
                "token_type": {"type": "string", "enum": ["Bearer"], "description": "令牌类型"},
                "expires_in": {"type": "integer", "description": "有效秒数"},
            }
        ),
        "secured": False,
        "errors": [400, 401, 413, 415, 429],
    },
    {
        "path": "/cylinders/query",
        "summary": "基础数据查询",
        "description": (
            "按ID、信息化编码、二维码，或制造单位+产品编号+制造年月查询气瓶基本信息。需query权限。"
        ),
        "request": CYLINDER_LOOKUP.schema(),
        "data": CYLINDER,
        "errors": [400, 401, 403, 404, 413, 415],
    },
    {
        "path": "/tags/bind",
        "summary": "信息化标签绑定",
        "description": (
            "上传气瓶钢印图片，将二维码（qr_content）或RFID标签（rfid）绑定到本单位的气瓶档案，"
            "返回信息化编码。信息化编码格式：CQ + 标签类型（Q二维码/R RFID）+ 区域代码6位 + "
            "10位十六进制，如CQQ500112A1B2C3D4E5。同一标签再次绑定同一气瓶返回原编码；"
            "标签已绑定其他气瓶返回409。需bind权限。"
        ),
        "request": TAG_BIND.schema(),
        "data": _obj({"id": _str("ID（气瓶档案ID）"), "info_code": _str("信息化编码")}),
        "errors": [400, 401, 403, 404, 409, 413, 415],
    },
    {
        "path": "/fillings/check",
        "summary": "充装联锁校验",
        "description": "充装前校验气瓶能否充装。不能充装的原因："
        + "；".join(f"{code} {msg.split('，')[0]}" for code, msg in INTERLOCK_MESSAGES.items())
        + "。需filling权限。",
        "request": FILLING_CHECK.schema(),
        "data": _obj(
            {
                "id": _nullable("ID（气瓶档案ID）"),
                "fillable": {"type": "boolean", "description": "是否可以充装"},
                "reasons": {"type": "array", "items": REASON, "description": "不能充装的原因"},
            }
        ),
        "errors": [400, 401, 403, 413, 415],
    },
    {
        "path": "/fillings",
        "summary": "充装记录提交",
        "description": (
            "批量提交充装记录（每批最多500条），逐条答复。不符合联锁条件的充装记录照样保存，"
            "标记为违规充装。record_no或Idempotency-Key请求头重复的记录不重复存储。需filling权限。"
        ),
        "request": _batch_request(FILLING, "充装记录"),
        "data": BATCH_RESULT,
        "idempotent": True,
        "errors": [400, 401, 403, 409, 413, 415],
    },
    {
        "path": "/inspections",
        "summary": "检验记录提交",
        "description": (
            "批量提交检验记录，更新气瓶档案的最近一次检验日期与下次检验日期；报废处置将使用状态"
            "置为报废，检验结论不合格将使用状态置为停用。需inspection权限。"
        ),
        "request": _batch_request(INSPECTION, "检验记录"),
        "data": BATCH_RESULT,
        "idempotent": True,
        "errors": [400, 401, 403, 409, 413, 415],
    },
    {
        "path": "/traces",
        "summary": "溯源轨迹提交",
        "description": "批量提交溯源轨迹（充装、配送、销售、使用、检验）。需trace权限。",
        "request": _batch_request(TRACE, "溯源轨迹"),
        "data": BATCH_RESULT,
        "idempotent": True,
        "errors": [400, 401, 403, 409, 413, 415],
    },
    {
        "path": "/cylinders/trail",
        "summary": "溯源查询",
        "description": (
            "按ID或信息化编码查询气瓶档案及其充装、检验、溯源轨迹"
            "（各最多100条，最新在前）。需query权限。"
        ),
        "request": CYLINDER_REF.schema(),
        "data": _obj(
            {
                "cylinder": CYLINDER,
                "fillings": {
                    "type": "array",
                    "items": FILLING_RECORD_OUT,
                    "description": "充装信息",
                },
                "inspections": {
                    "type": "array",
                    "items": INSPECTION_RECORD_OUT,
                    "description": "检验信息",
                },
                "traces": {"type": "array", "items": TRACE_OUT, "description": "溯源轨迹信息"},
            }
        ),
        "errors": [400, 401, 403, 404, 413, 415],
    },
]

ERROR_TEXT = {
    400: "请求无效（JSON格式或数据校验；data.errors逐字段说明）",
    401: "身份鉴权失败（令牌缺失、无效、过期或已撤销）；响应头WWW-Authenticate: Bearer",
    403: "无此接口权限或无权操作该气瓶",
    404: "未找到",
    405: "请求方式不允许（仅POST）",
    409: "冲突",
    413: "请求内容过大",
    415: "请求内容格式不是application/json",
    429: "请求过于频繁",
    500: "系统错误（data.request_id为请求编号）",
    503: "数据库连接中断，本次请求未保存；按Retry-After秒数等待后重试",
}


def _envelope(code: str | None, data: dict[str, Any]) -> dict[str, Any]:
    code_schema: dict[str, Any] = {"type": "string", "description": "返回码，与HTTP状态码相同"}
    if code is not None:
        code_schema["enum"] = [code]
    return _obj({"code": code_schema, "message": _str("成功提示或者错误提示信息"), "data": data})


ERROR_DATA = {
    "description": "业务响应数据：校验错误时为{errors}，系统错误时为{request_id}，否则为null",
    "anyOf": [
        {"type": "null"},
        _obj({"errors": {"type": "array", "items": FIELD_ERROR}}),
        _obj({"request_id": _str("请求编号")}),
    ],
}


def _error_response(code: int) -> dict[str, Any]:
    return {
        "description": ERROR_TEXT[code],
        "content": {"application/json": {"schema": _envelope(str(code), ERROR_DATA)}},
    }


@cache
def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        responses = {
            "200": {
                "description": "成功",
                "content": {"application/json": {"schema": _envelope("200", op["data"])}},
            }
        }
        for code in sorted({*op["errors"], 405, 500, 503}):
            responses[str(code)] = _error_response(code)
        operation: dict[str, Any] = {
            "operationId": op["path"].strip("/").replace("/", "_"),
            "summary": op["summary"],
            "description": op["description"],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": op["request"]}},
            },
            "responses": responses,
        }
        if op.get("secured", True):
            operation["security"] = [{"bearerAuth": []}]
        else:
            operation["security"] = []
        if op.get("idempotent"):
            operation["parameters"] = [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": (
                        "幂等键：同一调用单位以同一键重发的请求只处理一次；键相同而内容不同返回409"
                    ),
                    "schema": {"type": "string", "minLength": 1, "maxLength": 100},
                }
            ]
        paths["/api/v1" + op["path"]] = {"post": operation}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "重庆市气瓶安全追溯系统 数据共享接口",
            "version": "1.0.0",
            "description": (
                "企业平台（充装单位、检验检测单位）与市局追溯系统的数据交换接口。统一POST、JSON，"
                "所有响应为{code, message, data}，HTTP状态码与code相同。"
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "调用 /api/v1/auth/token 获得的访问令牌",
                }
            }
        },
    }
