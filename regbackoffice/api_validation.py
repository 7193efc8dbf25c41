"""Field validation for the JSON API, from the seed's types, lengths and code tables.

Each field is described once (``Field``); the same descriptions validate requests and
produce the OpenAPI schemas, so the document and the checks cannot drift apart. Errors
are per field, in Chinese: ``[{"field": "fill_date", "message": "充装日期不是有效日期…"}]``.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, lru_cache, partial
from typing import Any

from sqlalchemy import select

from .clock import CHINA_TZ, china_today
from .extensions import db
from .models import Medium

BEIJING = CHINA_TZ  # the seed says 北京时间

# ASCII digits only (re.ASCII): \d alone would take Arabic-Indic and other Unicode digits,
# which the seed's formats do not allow. ``\Z``: "$" would let a trailing newline through.
_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})\Z", re.ASCII)
_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})\Z", re.ASCII)
_DATETIME = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\Z", re.ASCII
)

# The same rules as JSON-schema patterns, so the OpenAPI document says what is checked.
YEAR_PATTERN = r"(19[0-9]{2}|[2-9][0-9]{3})"
MONTH_PATTERN = rf"^{YEAR_PATTERN}-(0[1-9]|1[0-2])$"
DATE_PATTERN = rf"^{YEAR_PATTERN}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
DATETIME_PATTERN = (
    rf"^{YEAR_PATTERN}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) "
    r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
)
# Control characters (Unicode Cc) are refused in every string, and lone surrogates (not
# text; JSON can carry them as \ud800 escapes, a schema pattern cannot name them).
_FORBIDDEN = r"\x00-\x1f\x7f-\x9f"
TEXT_PATTERN = rf"^[^{_FORBIDDEN}]*[^\s{_FORBIDDEN}][^{_FORBIDDEN}]*$"
_FORBIDDEN_RE = re.compile(rf"[{_FORBIDDEN}\ud800-\udfff]")


_today_by_second: tuple[int, date] = (-1, date.min)


def today() -> date:
    """Today in Chongqing: "not in the future" is judged on Beijing time.

    Kept for the current second of the clock: a batch asks once per dated record, and the
    date can only change when the second does.
    """
    global _today_by_second
    second = int(time.time())
    if _today_by_second[0] != second:
        _today_by_second = (second, china_today())
    return _today_by_second[1]


_media_cache: tuple[float, frozenset[str]] | None = None
MEDIA_CACHE_SECONDS = 300.0


def _media_codes() -> frozenset[str]:
    """The 充装介质 code table, cached per process (a fixed table, loaded by migration)."""
    global _media_cache
    now = time.monotonic()
    if _media_cache is None or now - _media_cache[0] > MEDIA_CACHE_SECONDS:
        _media_cache = (now, frozenset(db.session.scalars(select(Medium.code))))
    return _media_cache[1]


@dataclass(frozen=True)
class Field:
    """One data element: its key, Chinese name (数据名称), kind and limits."""

    key: str
    label: str
    kind: str  # str, date, month, datetime, medium, choice, int
    max_length: int | None = None
    required: bool = True
    choices: tuple[str, ...] = ()
    past_only: bool = False  # dates and times: not later than now
    pattern: str | None = None  # documented format for OpenAPI
    description: str = ""
    minimum: int | None = None  # int fields
    maximum: int | None = None

    def schema(self) -> dict[str, Any]:
        """The JSON schema (OpenAPI 3.1) of this field; ``null`` is "absent" when optional."""
        kind = "integer" if self.kind == "int" else "string"
        schema: dict[str, Any] = {
            "type": kind if self.required else [kind, "null"],
            "description": self.describe(),
        }
        if self.kind == "str":
            schema["minLength"] = 1
            if self.max_length:
                schema["maxLength"] = self.max_length
            schema["pattern"] = self.pattern or TEXT_PATTERN
        elif self.kind == "date":
            schema["format"] = "date"
            schema["pattern"] = DATE_PATTERN
        elif self.kind == "month":
            schema["pattern"] = MONTH_PATTERN
        elif self.kind == "datetime":
            schema["pattern"] = DATETIME_PATTERN
        elif self.kind == "medium":
            schema["pattern"] = r"^G([1-9]|1[0-9]|20)$"
        elif self.kind == "choice":
            schema["enum"] = list(self.choices) if self.required else [*self.choices, None]
        elif self.kind == "int":
            schema["minimum"] = self.minimum
            schema["maximum"] = self.maximum
        return schema

    def describe(self) -> str:
        text = self.label
        if self.description:
            text += f"（{self.description}）"
        return text


def _real_date(value: str, label: str) -> tuple[date | None, str | None]:
    match = _DATE.match(value)
    if not match:
        return None, f"{label}格式应为yyyy-mm-dd，收到“{value[:30]}”"
    try:
        return date(*map(int, match.groups())), None
    except ValueError:
        return None, f"{label}“{value}”不是有效日期"


@lru_cache(maxsize=4096)
def _plain_date(value: str) -> date | None:
    """A well-formed yyyy-mm-dd from 1900 on, else None (``check_field`` then says why).
    Kept per distinct text: a batch's records mostly share their dates."""
    match = _DATE.match(value)
    if not match:
        return None
    try:
        parsed = date(*map(int, match.groups()))
    except ValueError:
        return None
    return parsed if parsed.year >= 1900 else None


def field_checker(spec: Field) -> Callable[[Any], tuple[Any, str | None]]:
    """``check_field`` for this field, with a short way through for the usual good value.

    A batch of 500 records is 3,000 field checks: the general function asks every
    question of every value. Here a value that is plainly good (a clean string within its
    length, a known medium code, a real past date) is taken at once; anything else, absent
    values included, goes to ``check_field``, which gives the same answer and the message.
    """
    if spec.kind == "str":
        limit = spec.max_length or sys.maxsize

        def check_str(value: Any) -> tuple[Any, str | None]:
            if type(value) is str and len(value) <= limit and not _FORBIDDEN_RE.search(value):
                stripped = value.strip()
                if stripped:
                    return stripped, None
            return check_field(spec, value)

        return check_str
    if spec.kind == "medium":

        def check_medium(value: Any) -> tuple[Any, str | None]:
            # The codes (G1–G20) are short printable strings: known means valid.
            if type(value) is str and value in _media_codes():
                return value, None
            return check_field(spec, value)

        return check_medium
    if spec.kind == "date":

        def check_date(value: Any) -> tuple[Any, str | None]:
            if type(value) is str:
                parsed = _plain_date(value)
                if parsed is not None and not (spec.past_only and parsed > today()):
                    return parsed, None
            return check_field(spec, value)

        return check_date
    return partial(check_field, spec)


def check_field(spec: Field, value: Any) -> tuple[Any, str | None]:
    """Validate one value; returns (clean value, None) or (None, Chinese message)."""
    label = spec.label
    if value is None:
        if spec.required:
            return None, f"缺少{label}"
        return None, None
    if spec.kind == "int":
        # bool is an int in Python, not in JSON; 900.0 is an integer in JSON Schema.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return None, f"{label}应为整数"
        if not (spec.minimum or 0) <= value <= (spec.maximum or value):
            return None, f"{label}应在{spec.minimum}–{spec.maximum}之间（收到{value}）"
        return value, None
    if not isinstance(value, str):
        return None, f"{label}应为字符串"
    if spec.max_length and len(value) > spec.max_length:
        return None, f"{label}超过{spec.max_length}个字符（{len(value)}个）"
    if _FORBIDDEN_RE.search(value):
        return None, f"{label}含有不可见的控制字符"
    if spec.kind == "str":
        # Surrounding spaces are trimmed; a value of spaces only is no value.
        value = value.strip()
        if not value:
            return None, f"缺少{label}（只有空白字符）"
        return value, None
    if spec.kind == "choice":
        if value not in spec.choices:
            return None, f"{label}“{value[:20]}”不在可选值中（{'、'.join(spec.choices)}）"
        return value, None
    if spec.kind == "medium":
        if value not in _media_codes():
            return None, f"{label}“{value[:20]}”不是充装介质编码（G1–G20，见附录）"
        return value, None
    if spec.kind == "month":
        match = _MONTH.match(value)
        if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1900:
            return None, f"{label}格式应为yyyy-mm（如2026-05），收到“{value[:30]}”"
        return value, None
    if spec.kind == "date":
        parsed, error = _real_date(value, label)
        if error:
            return None, error
        assert parsed is not None
        if parsed.year < 1900:
            return None, f"{label}“{value}”早于1900年"
        if spec.past_only and parsed > today():
            return None, f"{label}“{value}”晚于今天，不能是将来的日期"
        return parsed, None
    if spec.kind == "datetime":
        match = _DATETIME.match(value)
        if not match:
            return None, f"{label}格式应为yyyy-MM-dd HH:mm:ss，收到“{value[:30]}”"
        try:
            year, month, day, hour, minute, second = map(int, match.groups())
            moment = datetime(year, month, day, hour, minute, second, tzinfo=BEIJING)
        except ValueError:
            return None, f"{label}“{value}”不是有效时间"
        if moment.year < 1900:
            return None, f"{label}“{value}”早于1900年"
        if spec.past_only and moment > datetime.now(UTC) + timedelta(minutes=5):
            return None, f"{label}“{value}”晚于当前时间，不能是将来的时间"
        return moment.astimezone(UTC), None
    raise AssertionError(f"unknown field kind {spec.kind}")


@dataclass(frozen=True)
class RecordSpec:
    """A record kind: its fields, and whether unknown keys are refused."""

    name: str
    fields: tuple[Field, ...]
    one_of: tuple[tuple[str, ...], ...] = field(default=())  # alternative key groups

    @cached_property
    def keys(self) -> frozenset[str]:
        return frozenset(f.key for f in self.fields)

    @cached_property
    def _checkers(self) -> tuple[tuple[str, Callable[[Any], tuple[Any, str | None]]], ...]:
        return tuple((f.key, field_checker(f)) for f in self.fields)

    def validate(self, raw: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
        if not isinstance(raw, dict) and not isinstance(raw, Mapping):  # dict: the quick test
            return {}, [{"field": "", "message": "记录应为JSON对象"}]
        errors: list[dict[str, str]] = []
        known = self.keys
        if not known.issuperset(raw):
            for key in raw:
                if key not in known:
                    label = str(key)[:50]
                    errors.append({"field": label, "message": f"未知字段“{label}”"})
        clean: dict[str, Any] = {}
        for key, check in self._checkers:
            value, error = check(raw.get(key))
            if error:
                errors.append({"field": key, "message": error})
            elif value is not None:
                clean[key] = value
        if self.one_of and not errors:
            groups = [g for g in self.one_of if all(k in clean for k in g)]
            if not groups:
                options = " 或 ".join("+".join(g) for g in self.one_of)
                errors.append({"field": "", "message": f"请提供 {options} 之一"})
        return clean, errors

    def schema(self) -> dict[str, Any]:
        required = [f.key for f in self.fields if f.required]
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {f.key: f.schema() for f in self.fields},
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        if self.one_of:
            # A key given as null counts as absent: each alternative needs real values.
            schema["anyOf"] = [
                {
                    "required": list(group),
                    "properties": {key: {"type": "string"} for key in group},
                }
                for group in self.one_of
            ]
        return schema


def optional(spec: Field) -> Field:
    return Field(**{**spec.__dict__, "required": False})


CYLINDER_ID = Field("id", "ID", "str", 50, description="气瓶档案ID")
INFO_CODE = Field("info_code", "信息化编码", "str", 50)
QR_CONTENT = Field("qr_content", "二维码", "str", 1000, description="二维码内容，URL")
MANUFACTURER = Field("manufacturer", "制造单位", "str", 100)
PRODUCT_NO = Field("product_no", "产品编号（镂空码）", "str", 50)
MANUFACTURE_MONTH = Field("manufacture_month", "制造年月", "month", description="yyyy-mm")
MEDIUM = Field("medium_code", "充装介质", "medium", 3, description="充装介质编码G1–G20")
RECORD_NO = Field(
    "record_no", "记录编号", "str", 64, required=False, description="调用单位内唯一，用于去重"
)

TOKEN_REQUEST = RecordSpec(
    "token",
    (Field("app_id", "调用单位标识", "str", 40), Field("app_secret", "调用单位密钥", "str", 200)),
)

CYLINDER_LOOKUP = RecordSpec(
    "cylinder_lookup",
    (
        optional(CYLINDER_ID),
        optional(INFO_CODE),
        optional(QR_CONTENT),
        optional(MANUFACTURER),
        optional(PRODUCT_NO),
        optional(MANUFACTURE_MONTH),
    ),
    one_of=(
        ("id",),
        ("info_code",),
        ("qr_content",),
        ("manufacturer", "product_no", "manufacture_month"),
    ),
)

CYLINDER_REF = RecordSpec(
    "cylinder_ref",
    (optional(CYLINDER_ID), optional(INFO_CODE)),
    one_of=(("id",), ("info_code",)),
)

FILLING_CHECK = RecordSpec(
    "filling_check",
    (optional(CYLINDER_ID), optional(INFO_CODE), MEDIUM),
    one_of=(("id",), ("info_code",)),
)

TAG_BIND = RecordSpec(
    "tag_bind",
    (
        optional(CYLINDER_ID),
        optional(MANUFACTURER),
        optional(PRODUCT_NO),
        optional(MANUFACTURE_MONTH),
        Field("tag_type", "信息化管理情况", "choice", 10, choices=("二维码", "RFID标签")),
        optional(QR_CONTENT),
        Field("rfid", "RFID标签编码", "str", 50, required=False),
        Field(
            "stamp_photo",
            "气瓶钢印图片",
            "str",
            14_000_000,
            description="JPEG或PNG图片的base64编码，图片不超过10MB",
        ),
    ),
    one_of=(("id",), ("manufacturer", "product_no", "manufacture_month")),
)

FILLING = RecordSpec(
    "filling",
    (
        MEDIUM,
        Field("filler", "充装人员", "str", 10),
        Field("fill_date", "充装日期", "date", past_only=True, description="yyyy-mm-dd"),
        Field("filling_unit_name", "充装单位名称", "str", 100),
        CYLINDER_ID,
        RECORD_NO,
    ),
)

INSPECTION_TYPES = ("定期", "报废处置")

INSPECTION = RecordSpec(
    "inspection",
    (
        Field("inspect_date", "检验日期", "date", past_only=True, description="yyyy-mm-dd"),
        Field("inspection_org", "检验检测单位", "str", 100),
        Field(
            "next_inspection_month",
            "下次检验日期",
            "month",
            required=False,
            description="yyyy-mm；定期检验合格时必填",
        ),
        Field("conclusion", "检验结论", "str", 10, description="如：合格、不合格"),
        Field("inspect_type", "检验类型", "choice", 10, choices=INSPECTION_TYPES),
        CYLINDER_ID,
        RECORD_NO,
    ),
)

TRACE_NODES = ("充装", "配送", "销售", "使用", "检验")

TRACE = RecordSpec(
    "trace",
    (
        Field(
            "time",
            "日期",
            "datetime",
            20,
            past_only=True,
            description="yyyy-MM-dd HH:mm:ss，北京时间",
        ),
        Field("node", "节点名称", "choice", 10, choices=TRACE_NODES),
        Field("actor", "单位名称或姓名", "str", 10),
        CYLINDER_ID,
        RECORD_NO,
    ),
)

CHANGES_REQUEST = RecordSpec(
    "changes",
    (
        Field(
            "cursor",
            "游标",
            "str",
            30,
            required=False,
            pattern=r"^c1\.[0-9]{1,18}$",
            description="上次答复中的cursor，原样传回；null或不传表示从头开始",
        ),
        Field(
            "limit",
            "每页条数",
            "int",
            required=False,
            minimum=1,
            maximum=1000,
            description="1–1000，不传为100",
        ),
    ),
)
CHANGES_DEFAULT_LIMIT = 100

# Idempotency-Key: 1–100 visible ASCII characters (spaces inside only).
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]{0,98}[\x21-\x7e])?$"

MAX_BATCH = 500
