"""The OpenAPI 3.1 document of /api/v1, built from the same field specs that validate."""

from __future__ import annotations

from functools import cache
from typing import Any

from ...api_validation import (
    CHANGES_REQUEST,
    CYLINDER_LOOKUP,
    CYLINDER_REF,
    FILLING,
    FILLING_CHECK,
    IDEMPOTENCY_KEY_PATTERN,
    INSPECTION,
    MAX_BATCH,
    TAG_BIND,
    TOKEN_REQUEST,
    TRACE,
    RecordSpec,
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
        "status": {
            "type": "string",
            "enum": ["在用", "停用", "报废", "注销"],
            "description": "使用状态",
        },
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

# An entry of the changes feed: the archive record, and whether the cylinder left the unit.
CHANGE_ENTRY = _obj(
    {
        **CYLINDER["properties"],
        "left_unit": {
            "type": "boolean",
            "description": (
                "true：该气瓶已过户转出本单位（过户转出），请从终端的本单位气瓶清单中删除；"
                "此时use_unit_name、district_code、certificate_no为接收单位过户时的信息"
            ),
        },
        "left_on": _nullable("过户转出日期（yyyy-mm-dd）；left_unit为false时为null"),
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
            "description": (
                "200已接收；400未通过校验（见errors）。重复提交的记录（replay为true）答复"
                "首次提交时的code、violation、reasons，不重复存储"
                "（2026年12月前接收、未保存首次答复的记录答复409）"
            ),
        },
        "message": _str("结果说明"),
        "record_no": _str("记录编号"),
        "errors": {"type": "array", "items": FIELD_ERROR, "description": "逐字段的错误"},
        "violation": {"type": "boolean", "description": "充装记录：是否违规充装"},
        "reasons": {"type": "array", "items": REASON, "description": "违规充装的联锁原因"},
        "warning": _str("检验记录：已保存但需注意的情况（如对已报废气瓶的定期检验）"),
        "replay": {
            "type": "boolean",
            "description": "true：该记录编号此前已接收，本条为首次答复的重放，未重复存储",
        },
    },
    required=["index", "code", "message"],
)

BATCH_RESULT = _obj(
    {
        "accepted": {"type": "integer", "description": "接收条数"},
        "duplicates": {"type": "integer", "description": "重复条数"},
        "rejected": {"type": "integer", "description": "未通过条数"},
        "results": {"type": "array", "items": RECORD_RESULT, "description": "逐条结果"},
        "replay": {
            "type": "boolean",
            "description": (
                "true：同一Idempotency-Key的请求此前已处理，本答复是首次答复的原样重放"
                "（accepted等计数与results均为首次的），未重复存储"
            ),
        },
    }
)


QR_URL_PATTERN = "^[Hh][Tt][Tt][Pp][Ss]?://[^\\s/?#]+[^\\s]*$"


def _batch_request(spec: RecordSpec, title: str) -> dict[str, Any]:
    # Each record is checked on its own and answered in data.results (code 400 with errors
    # when it fails the record schema, x-record-schema); the request as a whole is refused
    # (HTTP 400) only when it is not a records array of 1–500 items. So the items are not
    # constrained here: an invalid record is answered 200 with its own 400.
    return _obj(
        {
            "records": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH,
                "items": {
                    "description": (
                        f"一条{title}，字段见x-record-schema；"
                        "不符合的记录在results中以code 400逐条答复"
                    )
                },
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
            "标签已绑定其他气瓶、已登记在其他气瓶的档案中，或已用于待登记申请中的另一只气瓶"
            "（一瓶一码），返回409。需bind权限。"
        ),
        "request": {
            **TAG_BIND.schema(),
            # The tag's value goes with its type.
            "allOf": [
                {
                    "if": {"properties": {"tag_type": {"const": label}}, "required": ["tag_type"]},
                    "then": {"required": [key], "properties": {key: value}},
                }
                for label, key, value in (
                    # A QR label encodes the cylinder's URL: http(s), as at import.
                    ("二维码", "qr_content", {"type": "string", "pattern": QR_URL_PATTERN}),
                    ("RFID标签", "rfid", {"type": "string"}),
                )
            ],
        },
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
        "record_schema": FILLING.schema(),
        "data": BATCH_RESULT,
        "idempotent": True,
        # 429: the client's record quota (REGBO_API_RECORD_RATE_LIMIT), with Retry-After.
        "errors": [400, 401, 403, 409, 413, 415, 429],
    },
    {
        "path": "/inspections",
        "summary": "检验记录提交",
        "description": (
            "批量提交检验记录，更新气瓶档案的最近一次检验日期与下次检验日期；报废处置将使用状态"
            "置为报废，检验结论不合格将使用状态置为停用。需inspection权限。"
        ),
        "request": _batch_request(INSPECTION, "检验记录"),
        "record_schema": INSPECTION.schema(),
        "data": BATCH_RESULT,
        "idempotent": True,
        # 429: the client's record quota (REGBO_API_RECORD_RATE_LIMIT), with Retry-After.
        "errors": [400, 401, 403, 409, 413, 415, 429],
    },
    {
        "path": "/traces",
        "summary": "溯源轨迹提交",
        "description": "批量提交溯源轨迹（充装、配送、销售、使用、检验）。需trace权限。",
        "request": _batch_request(TRACE, "溯源轨迹"),
        "record_schema": TRACE.schema(),
        "data": BATCH_RESULT,
        "idempotent": True,
        # 429: the client's record quota (REGBO_API_RECORD_RATE_LIMIT), with Retry-After.
        "errors": [400, 401, 403, 409, 413, 415, 429],
    },
    {
        "path": "/cylinders/trail",
        "summary": "溯源查询",
        "description": (
            "按ID或信息化编码查询气瓶档案及其充装、检验、溯源轨迹"
            "（各最多100条，最新在前）。ID未在档案中登记（NOT_REGISTERED，可能为黑气瓶）时，"
            "若本单位曾以该ID提交过充装或溯源记录，返回这些记录，cylinder为null；否则返回404。"
            "同时给出ID与信息化编码而二者指向不同气瓶（或其一不存在）时返回400。需query权限。"
        ),
        "request": CYLINDER_REF.schema(),
        "data": _obj(
            {
                "cylinder": {
                    "anyOf": [CYLINDER, {"type": "null"}],
                    "description": "气瓶基本信息；ID未登记时为null",
                },
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

OPERATIONS.append(
    {
        "path": "/cylinders/changes",
        "summary": "档案变更同步",
        "description": (
            "供充装终端离线校验（GB/T 38059类终端）：返回本单位在cursor之后发生变更的气瓶档案"
            "（登记、使用状态、检验日期、标签绑定、注销等），按变更先后排列，每页每个气瓶最多一次。"
            "过户转出本单位的气瓶再返回一次，left_unit为true（终端应将其删除）；"
            "过户转入的气瓶出现在接收单位的变更中。"
            "cursor为null或不传时从头开始；以答复中的cursor继续，more为false时已同步到最新，"
            "稍后再以同一cursor轮询。cursor不透明，服务重启后仍有效，并发写入时不会漏掉变更。"
            "需query权限。"
        ),
        "request": CHANGES_REQUEST.schema(),
        "data": _obj(
            {
                "cylinders": {
                    "type": "array",
                    "items": CHANGE_ENTRY,
                    "description": (
                        "变更后的气瓶基本信息（与基础数据查询返回的相同，另加left_unit、left_on）"
                    ),
                },
                "cursor": _str("下次请求带上的游标"),
                "more": {"type": "boolean", "description": "true：还有更多变更，请立即继续请求"},
            }
        ),
        "errors": [400, 401, 403, 413, 415],
    }
)

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
        if "record_schema" in op:
            operation["x-record-schema"] = op["record_schema"]
        if op.get("idempotent"):
            operation["parameters"] = [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": (
                        "幂等键：同一调用单位以同一键重发的请求只处理一次；键相同而内容不同返回409"
                    ),
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 100,
                        "pattern": IDEMPOTENCY_KEY_PATTERN,
                    },
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
                "所有响应为{code, message, data}，HTTP状态码与code相同。附件1将data定为String，"
                "本系统的data是JSON对象（或null），不是JSON文本字符串，例如"
                '{"code": "200", "message": "成功", "data": {"fillable": true, "reasons": []}}，'
                "请直接按对象读取，不要再做一次JSON解析。"
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
