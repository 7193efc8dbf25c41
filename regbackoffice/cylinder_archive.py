"""气瓶档案: the registered cylinders a user may see, found, filtered, paged and exported,
and each cylinder's history.

Who sees what. The scope is the one of ``access.visible(Cylinder)``: a use unit's 经办人
sees the cylinders registered to its unit (``use_unit_id``); district bureau users (受理,
审核, 审批) the cylinders of their district (``district_code``); city supervisors (市局)
every cylinder, read-only. A cylinder outside the scope answers 404, like a missing one.

Lists at city scale (1,000,000 cylinders). The list is ordered by (产品编号, 档案ID) and
paged by keyset (``after`` / ``before`` the last row seen), never by OFFSET, so page 2,000
costs what page 1 costs; the indexes ``(use_unit_id, product_no, id)``,
``(district_code, product_no, id)`` and ``(product_no, id)`` (migration 0017) serve each
scope's ordering. The total is counted only up to ``COUNT_CAP`` ("10000条以上").
The search box matches exactly or by prefix (never ``%text%``): 产品编号 and 单位内编号 by
prefix (``varchar_pattern_ops`` indexes on PostgreSQL, whatever the collation), 气瓶信息码
(信息化编码), 档案ID and RFID code exactly (their unique or plain indexes).

History sources. A cylinder's history (``history(cylinder)``) is merged from a list of
*history sources*, each a function ``cylinder -> Iterable[HistoryEntry]`` registered in
``HISTORY_SOURCES`` (with ``@history_source``), and sorted by date (``history``: by day,
then untimed before timed, then time, then source order). The sources here read what the
archive already holds: the registration application (提交, 受理, 审核, 审批 with who and
when), the certificate (发证, 注销), 登记入档, tag bindings, inspection records and status
changes after registration (``cylinder_status_changes``). Later features add their own
source the same way, e.g. the change applications (停用/启用/报废/注销/更名/过户…)
registering ``@cylinder_archive.history_source`` on a function that lists a cylinder's
change requests; nothing here needs to change for that.

Page hooks for the same work: the unit's list wraps its rows in
``<form id="cylinder-selection" method="post">`` (CSRF token, one ``cylinder`` checkbox per
row, value the 档案ID) and includes ``templates/archive/_selection_actions.html`` inside it;
the cylinder page includes ``templates/archive/_cylinder_actions.html``. Both are empty
until the change applications add their buttons (each posting to its own endpoint, which
looks the ids up through ``access.visible(Cylinder)`` again).
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from sqlalchemy import Select, func, literal, or_, select, tuple_
from sqlalchemy import text as sql_text

from .access import visible
from .clock import china_date, china_today, format_china
from .extensions import db
from .identity import normalize_text
from .models import (
    ApiClient,
    Application,
    Certificate,
    ChangeItem,
    ChangeKind,
    ChangeRequest,
    Cylinder,
    CylinderStatus,
    CylinderStatusChange,
    District,
    InspectionRecord,
    Medium,
    Role,
    TagBinding,
    Unit,
    UnitKind,
    User,
    Variety,
)

PER_PAGE = 50
COUNT_CAP = 10_000
# openpyxl writes about 3,000 rows of 21 cells a second here (pure-Python XML, no lxml): the
# cap keeps an export under 10 s; a larger list is exported in parts by filter (e.g. by
# 使用登记证编号 or 使用状态), as the page and the file's first row say.
EXPORT_ROW_CAP = 20_000
DUE_SOON_DAYS = 30

# 下次检验日期 (a month, yyyy-mm) against today: the interlock counts the month itself as
# in time (``interlock.check``), so "overdue" is a month before this one.
DUE_CHOICES = {
    "overdue": "已超期",
    "soon": f"{DUE_SOON_DAYS}日内到期",
    "later": f"{DUE_SOON_DAYS}日后到期",
}


# --- the filter --------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveFilter:
    """What the list is narrowed to; every value already checked."""

    q: str = ""
    status: CylinderStatus | None = None
    due: str = ""
    certificate_no: str = ""
    unit_id: int | None = None
    district_code: str = ""

    def is_empty(self) -> bool:
        return self == ArchiveFilter()

    def query_args(self) -> dict[str, str]:
        """The filter as URL query arguments (for links and the export)."""
        args = {
            "q": self.q,
            "status": self.status.value if self.status else "",
            "due": self.due,
            "certificate_no": self.certificate_no,
            "unit": str(self.unit_id) if self.unit_id else "",
            "district": self.district_code,
        }
        return {k: v for k, v in args.items() if v}


def parse_filter(args: Mapping[str, str], user: User) -> tuple[ArchiveFilter, list[str]]:
    """The filter from the query string; a bad value is dropped with a note saying so."""
    notes: list[str] = []
    q = normalize_text(args.get("q", ""))[:50]
    status = None
    raw_status = (args.get("status") or "").strip()
    if raw_status:
        try:
            status = CylinderStatus(raw_status)
        except ValueError:
            notes.append(f"未知的使用状态“{raw_status[:20]}”，已忽略。")
    due = (args.get("due") or "").strip()
    if due and due not in DUE_CHOICES:
        notes.append(f"未知的检验到期条件“{due[:20]}”，已忽略。")
        due = ""
    certificate_no = normalize_text(args.get("certificate_no", ""))[:50]
    unit_id = None
    raw_unit = (args.get("unit") or "").strip()
    if raw_unit and user.role is not Role.APPLICANT:
        # Only a unit the user may see: another district's unit is not even named back.
        visible_unit = (
            db.session.scalar(visible(Unit, user).where(Unit.id == int(raw_unit)))
            if raw_unit.isdigit() and len(raw_unit) <= 9
            else None
        )
        if visible_unit is not None:
            unit_id = visible_unit.id
        else:
            notes.append(f"使用单位“{raw_unit[:20]}”不在管辖范围内，已忽略。")
    district_code = ""
    raw_district = (args.get("district") or "").strip()
    if raw_district and user.role is Role.SUPERVISOR:
        if db.session.get(District, raw_district[:6]) is not None:
            district_code = raw_district[:6]
        else:
            notes.append(f"区县“{raw_district[:20]}”不存在，已忽略。")
    return (
        ArchiveFilter(q, status, due, certificate_no, unit_id, district_code),
        notes,
    )


def _month(day: date) -> str:
    return day.strftime("%Y-%m")


def due_clause(due: str, today: date) -> Any:
    """The SQL condition for an inspection-due choice (``DUE_CHOICES``)."""
    this_month = _month(today)
    soon_month = _month(today + timedelta(days=DUE_SOON_DAYS))
    column = Cylinder.next_inspection_month
    if due == "overdue":
        return column < this_month
    if due == "soon":
        return column.between(this_month, soon_month)
    return column > soon_month


def due_state(cylinder: Cylinder, today: date) -> str:
    """The ``DUE_CHOICES`` key a cylinder falls in today ("" without a 下次检验日期)."""
    month = cylinder.next_inspection_month
    if not month:
        return ""
    if month < _month(today):
        return "overdue"
    if month <= _month(today + timedelta(days=DUE_SOON_DAYS)):
        return "soon"
    return "later"


def _search_clause(q: str) -> Any:
    """Exact or prefix matches only, so that every branch uses an index. Typed in lower
    case, the upper-case form is looked up too (archive IDs and codes are upper case), each
    as its own indexed branch rather than a case-folding function on the column."""
    branches = []
    for text in dict.fromkeys([q, q.upper()]):
        prefix = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        branches += [
            Cylinder.product_no.like(prefix, escape="\\"),
            Cylinder.internal_no.like(prefix, escape="\\"),
            Cylinder.info_code == text,
            Cylinder.id == text,
            Cylinder.rfid_code == text,
        ]
    return or_(*branches)


def scoped_query(user: User, filt: ArchiveFilter, today: date | None = None) -> Select[Any]:
    """The cylinders ``user`` may see, narrowed by ``filt`` (not ordered)."""
    query = visible(Cylinder, user)
    if filt.q:
        query = query.where(_search_clause(filt.q))
    if filt.status is not None:
        query = query.where(Cylinder.status == filt.status)
    if filt.due:
        query = query.where(due_clause(filt.due, today or china_today()))
    if filt.certificate_no:
        query = query.where(Cylinder.certificate_no == filt.certificate_no)
    if filt.unit_id is not None:
        query = query.where(Cylinder.use_unit_id == filt.unit_id)
    if filt.district_code:
        query = query.where(Cylinder.district_code == filt.district_code)
    return query


def describe_filter(filt: ArchiveFilter) -> str:
    """The filter in words (the export's first row, the audit row)."""
    parts = []
    if filt.district_code:
        district = db.session.get(District, filt.district_code)
        parts.append(f"区县：{district.name if district else filt.district_code}")
    if filt.unit_id is not None:
        unit = db.session.get(Unit, filt.unit_id)
        parts.append(f"使用单位：{unit.name if unit else filt.unit_id}")
    if filt.q:
        parts.append(f"查询：{filt.q}")
    if filt.status is not None:
        parts.append(f"使用状态：{filt.status.label}")
    if filt.due:
        parts.append(f"检验：{DUE_CHOICES[filt.due]}")
    if filt.certificate_no:
        parts.append(f"使用登记证编号：{filt.certificate_no}")
    return "；".join(parts) or "全部"


def unit_choices(user: User, district_code: str = "") -> list[tuple[int, str]]:
    """The use units a bureau or city user may narrow the list to (city: one district's)."""
    if user.role is Role.APPLICANT or (user.role is Role.SUPERVISOR and not district_code):
        return []
    query = visible(Unit, user).where(Unit.kind == UnitKind.USE_UNIT)
    if district_code:
        query = query.where(Unit.district_code == district_code)
    return [(u.id, u.name) for u in db.session.scalars(query.order_by(Unit.name, Unit.id))]


def district_choices(user: User) -> list[tuple[str, str]]:
    if user.role is not Role.SUPERVISOR:
        return []
    return [(d.code, d.name) for d in db.session.scalars(select(District).order_by(District.code))]


# --- keyset pages ------------------------------------------------------------------------

ORDER = (Cylinder.product_no, Cylinder.id)


def _key(key: tuple[str, str]) -> Any:
    return tuple_(literal(key[0]), literal(key[1]))


def encode_cursor(cylinder: Cylinder) -> str:
    raw = json.dumps([cylinder.product_no, cylinder.id], ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[str, str] | None:
    """The (产品编号, 档案ID) a cursor names, or None for a cursor not made here."""
    if not text or len(text) > 400:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, str) and len(v) <= 50 for v in value)
    ):
        return value[0], value[1]
    return None


@dataclass
class ArchivePage:
    items: list[Cylinder]
    next_cursor: str | None
    prev_cursor: str | None
    total: int  # capped at COUNT_CAP + 1
    first: bool  # this is the first page

    @property
    def total_text(self) -> str:
        return f"{COUNT_CAP}条以上" if self.total > COUNT_CAP else f"{self.total}条"


def _plan_each_query() -> None:
    """On PostgreSQL, plan this transaction's statements for their actual values.

    psycopg prepares a statement run five times, and PostgreSQL may then switch to a generic
    plan: for "status = $1" it guesses a third of the rows match, and the capped count of
    the rare 报废 then reads the whole table instead of the status index (0.5 s instead of
    milliseconds at 1,000,000 cylinders). Planning anew costs well under a millisecond.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sql_text("SET LOCAL plan_cache_mode = force_custom_plan"))


def count_capped(query: Select[Any], cap: int = COUNT_CAP) -> int:
    """How many rows ``query`` has, counting at most ``cap + 1`` (bounded on 1M rows)."""
    limited = query.with_only_columns(Cylinder.id).order_by(None).limit(cap + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(limited)) or 0


def page(
    user: User,
    filt: ArchiveFilter,
    *,
    after: str = "",
    before: str = "",
    per_page: int | None = None,
    today: date | None = None,
) -> ArchivePage:
    """One page of the list in (产品编号, 档案ID) order, after or before a cursor."""
    per_page = per_page or PER_PAGE
    _plan_each_query()
    query = scoped_query(user, filt, today)
    total = count_capped(query)
    after_key, before_key = decode_cursor(after), decode_cursor(before)
    if before_key is not None:
        rows = list(
            db.session.scalars(
                query.where(tuple_(*ORDER) < _key(before_key))
                .order_by(Cylinder.product_no.desc(), Cylinder.id.desc())
                .limit(per_page + 1)
            )
        )
        has_prev = len(rows) > per_page
        items = list(reversed(rows[:per_page]))
        has_next = True
    else:
        if after_key is not None:
            query = query.where(tuple_(*ORDER) > _key(after_key))
        rows = list(db.session.scalars(query.order_by(*ORDER).limit(per_page + 1)))
        has_next = len(rows) > per_page
        items = rows[:per_page]
        has_prev = after_key is not None
    return ArchivePage(
        items=items,
        next_cursor=encode_cursor(items[-1]) if items and has_next else None,
        prev_cursor=encode_cursor(items[0]) if items and has_prev else None,
        total=total,
        first=not has_prev,
    )


# --- names for codes ---------------------------------------------------------------------


def code_names() -> dict[str, dict[str, str]]:
    """设备品种 and 充装介质 names by code (two small tables)."""
    return {
        "variety": dict(db.session.execute(select(Variety.code, Variety.name)).tuples().all()),
        "medium": dict(db.session.execute(select(Medium.code, Medium.name)).tuples().all()),
    }


def district_names() -> dict[str, str]:
    return dict(db.session.execute(select(District.code, District.name)).tuples().all())


# --- the .xlsx export --------------------------------------------------------------------

EXPORT_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("气瓶档案ID", Cylinder.id),
    ("使用单位", Cylinder.use_unit_name),
    ("区县", Cylinder.district_code),
    ("设备品种", Cylinder.variety_code),
    ("产品编号", Cylinder.product_no),
    ("充装介质", Cylinder.medium_code),
    ("制造单位", Cylinder.manufacturer),
    ("制造年月", Cylinder.manufacture_month),
    ("公称工作压力（MPa）", Cylinder.nominal_pressure_mpa),
    ("容积（L）", Cylinder.volume_l),
    ("最近一次检验日期", Cylinder.last_inspection_date),
    ("下次检验日期", Cylinder.next_inspection_month),
    ("单位内编号", Cylinder.internal_no),
    ("使用状态", Cylinder.status),
    ("信息化管理情况", Cylinder.tag_type),
    ("气瓶信息码", Cylinder.info_code),
    ("二维码内容", Cylinder.qr_content),
    ("RFID标签编码", Cylinder.rfid_code),
    ("使用登记证编号", Cylinder.certificate_no),
    ("登记日期", Cylinder.registration_date),
    ("登记机关", Cylinder.registration_authority),
)


def _text_cell(sheet: Any, value: object, districts: Mapping[str, str], column: Any) -> Any:
    """One data cell: None (left empty), or text. A plain ``str`` is written as a string
    cell by openpyxl whatever it looks like ("000123" stays text), except one starting with
    "=", which it would take for a formula: that one gets an explicit string cell. (Plain
    values, not a cell object each: the export's cost is per cell.)"""
    if value is None:
        return None
    text = _cell_text(value, districts, column)
    if text.startswith("="):
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"
        return cell
    return text


def _cell_text(value: object, districts: Mapping[str, str], column: Any) -> str:
    if value is None:
        return ""
    if column is Cylinder.district_code:
        return districts.get(str(value), str(value))
    label = getattr(value, "label", None)
    if isinstance(label, str):  # an enum: its Chinese label
        return label
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass
class Export:
    file: IO[bytes]
    filename: str
    rows: int
    capped: bool
    description: str = field(default="")


def export_xlsx(
    user: User, filt: ArchiveFilter, *, cap: int | None = None, today: date | None = None
) -> Export:
    """The filtered list as .xlsx, streamed row by row (openpyxl write-only) into a spooled
    temporary file; every cell is a string cell, so codes keep their leading zeros and no
    value is ever read as a formula. At most ``cap`` rows; the first row names the filter
    (and says when the cap cut the list)."""
    today = today or china_today()
    cap = cap or EXPORT_ROW_CAP
    _plan_each_query()
    columns = [column for _, column in EXPORT_COLUMNS]
    query = scoped_query(user, filt, today).with_only_columns(*columns).order_by(*ORDER)
    districts = district_names()
    description = describe_filter(filt)
    total = count_capped(scoped_query(user, filt, today), cap)
    capped = total > cap

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("气瓶档案")

    def text_row(values: Iterable[str], bold: bool = False) -> list[Any]:
        cells = []
        for value in values:
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"  # never a formula or a number, whatever the text looks like
            if bold:
                cell.font = Font(bold=True)
            cells.append(cell)
        return cells

    heading = (
        f"气瓶档案（{user.scope_label}）  筛选条件：{description}  导出日期：{today.isoformat()}"
    )
    if capped:
        heading += f"  仅导出前{cap}条，请缩小筛选范围后分批导出"
    sheet.append(text_row([heading], bold=True))
    sheet.append(text_row([name for name, _ in EXPORT_COLUMNS], bold=True))
    rows = 0
    for row in db.session.execute(query.limit(cap).execution_options(yield_per=2000)):
        sheet.append(
            [
                _text_cell(sheet, value, districts, column)
                for value, column in zip(row, columns, strict=True)
            ]
        )
        rows += 1
    out = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115 - returned
    workbook.save(out)
    out.seek(0)
    words = (filt.status.label if filt.status else "", DUE_CHOICES.get(filt.due, ""))
    slug = "_".join(["气瓶档案", *[w for w in words if w], today.isoformat()])
    return Export(out, f"{slug}.xlsx", rows, capped, description)


# --- one cylinder's page -----------------------------------------------------------------


@dataclass(frozen=True)
class CylinderView:
    cylinder: Cylinder
    unit: Unit
    district_name: str
    variety_name: str
    medium_name: str
    certificates: list[Certificate]
    application: Application | None
    due: str  # a DUE_CHOICES key or ""
    history: list[HistoryEntry]


def certificates_of(cylinder: Cylinder) -> list[Certificate]:
    """The certificate(s) naming this cylinder: its current 使用登记证 (by number) and the one
    of its registration application, when different."""
    conditions = []
    if cylinder.certificate_no:
        conditions.append(Certificate.number == cylinder.certificate_no)
    if cylinder.application_id is not None:
        conditions.append(Certificate.application_id == cylinder.application_id)
    if not conditions:
        return []
    return list(
        db.session.scalars(select(Certificate).where(or_(*conditions)).order_by(Certificate.id))
    )


def view(cylinder: Cylinder, today: date | None = None) -> CylinderView:
    """Everything the 档案 page shows about one (already scope-checked) cylinder."""
    names = code_names()
    district = db.session.get(District, cylinder.district_code)
    application = (
        db.session.get(Application, cylinder.application_id)
        if cylinder.application_id is not None
        else None
    )
    return CylinderView(
        cylinder=cylinder,
        unit=db.session.get_one(Unit, cylinder.use_unit_id),
        district_name=district.name if district else cylinder.district_code,
        variety_name=names["variety"].get(cylinder.variety_code, ""),
        medium_name=names["medium"].get(cylinder.medium_code, ""),
        certificates=certificates_of(cylinder),
        application=application,
        due=due_state(cylinder, today or china_today()),
        history=history(cylinder),
    )


# --- history -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryEntry:
    """One event in a cylinder's life.

    ``on`` is the day it happened or took effect (China date); ``at`` the exact moment
    (UTC) when one is known for that day. Entries sort by ``on``, then untimed before
    timed, then ``at``, then the order the sources gave them.
    """

    on: date
    kind: str  # registration / certificate / tag / inspection / status / … (a source's own)
    title: str
    detail: str = ""
    actor: str = ""  # who acted, "" when not known
    at: datetime | None = None

    @property
    def when(self) -> str:
        return format_china(self.at) if self.at is not None else self.on.isoformat()


HistorySource = Callable[[Cylinder], Iterable[HistoryEntry]]
HISTORY_SOURCES: list[HistorySource] = []


def history_source(source: HistorySource) -> HistorySource:
    """Register a function ``cylinder -> entries`` as a source of every cylinder's history."""
    if source not in HISTORY_SOURCES:
        HISTORY_SOURCES.append(source)
    return source


def history(cylinder: Cylinder) -> list[HistoryEntry]:
    """The cylinder's history from every registered source, oldest first."""
    entries = [entry for source in HISTORY_SOURCES for entry in source(cylinder)]
    order = {id(entry): n for n, entry in enumerate(entries)}
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(
        entries,
        key=lambda e: (e.on, e.at is not None, e.at or epoch, order[id(e)]),
    )


def _timed(at: datetime | None) -> tuple[date, datetime] | None:
    if at is None:
        return None
    if at.tzinfo is None:  # SQLite hands back naive UTC
        at = at.replace(tzinfo=UTC)
    return china_date(at), at


def _user_names(ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = db.session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return dict(rows.tuples().all())


@history_source
def registration_entries(cylinder: Cylinder) -> Iterator[HistoryEntry]:
    """The registration application's steps: 提交, 受理, 审核, 审批, with who and when."""
    application = (
        db.session.get(Application, cylinder.application_id)
        if cylinder.application_id is not None
        else None
    )
    if application is not None:
        names = _user_names(
            [
                application.created_by_id,
                application.accepted_by_id,
                application.reviewed_by_id,
                application.approved_by_id,
            ]
        )
        number = f"申请编号：{application.number}" if application.number else ""
        steps = (
            ("提交使用登记申请", application.submitted_at, application.created_by_id),
            ("受理", application.accepted_at, application.accepted_by_id),
            ("审核通过", application.reviewed_at, application.reviewed_by_id),
            ("审批通过", application.approved_at, application.approved_by_id),
        )
        for title, at, user_id in steps:
            timed = _timed(at)
            if timed is None:
                continue
            yield HistoryEntry(
                on=timed[0],
                at=timed[1],
                kind="registration",
                title=title,
                detail=number,
                actor=names.get(user_id, "") if user_id else "",
            )


@history_source
def certificate_entries(cylinder: Cylinder) -> Iterator[HistoryEntry]:
    """使用登记证 issued (证书生成) and voided (注销), with who and when."""
    certificates = certificates_of(cylinder)
    names = _user_names(
        [c.issued_by_id for c in certificates] + [c.voided_by_id for c in certificates]
    )
    for certificate in certificates:
        timed = _timed(certificate.created_at)
        yield HistoryEntry(
            on=certificate.issue_date,
            at=timed[1] if timed and timed[0] == certificate.issue_date else None,
            kind="certificate",
            title="发放使用登记证",
            detail=f"使用登记证编号：{certificate.number}，登记机关：{certificate.authority}",
            actor=names.get(certificate.issued_by_id, ""),
        )
        voided = _timed(certificate.voided_at)
        if voided is not None:
            yield HistoryEntry(
                on=voided[0],
                at=voided[1],
                kind="certificate",
                title="注销使用登记证",
                detail=f"使用登记证编号：{certificate.number}，原因：{certificate.void_reason}",
                actor=names.get(certificate.voided_by_id or 0, ""),
            )


@history_source
def archive_entries(cylinder: Cylinder) -> Iterator[HistoryEntry]:
    """登记入档: the day the cylinder entered the archive, with its status then.

    After the certificate source, so that at the same moment 发证 comes first, as it does
    when 证书生成 writes the archive.
    """
    if cylinder.registration_date is None:
        return
    initial = db.session.scalar(
        select(CylinderStatusChange.status)
        .where(
            CylinderStatusChange.cylinder_id == cylinder.id,
            CylinderStatusChange.previous_status.is_(None),
        )
        .order_by(CylinderStatusChange.id)
        .limit(1)
    )
    detail = [f"登记机关：{cylinder.registration_authority or ''}".rstrip("：")]
    if initial is not None:
        detail.append(f"登记时使用状态：{initial.label}")
    # The moment it entered the archive when that was its registration date; else the
    # moment its certificate was issued that day (back-dated data); else only the date.
    entered = _timed(cylinder.created_at)
    if entered is None or entered[0] != cylinder.registration_date:
        issued = [
            _timed(c.created_at)
            for c in certificates_of(cylinder)
            if c.issue_date == cylinder.registration_date
        ]
        entered = issued[0] if issued else None
    yield HistoryEntry(
        on=cylinder.registration_date,
        at=entered[1] if entered and entered[0] == cylinder.registration_date else None,
        kind="registration",
        title="登记入档",
        detail="，".join(d for d in detail if d),
        actor=cylinder.registration_authority or "",
    )


@history_source
def tag_entries(cylinder: Cylinder) -> Iterator[HistoryEntry]:
    """信息化标签绑定, by the enterprise platform (API client) of the cylinder's unit."""
    rows = db.session.execute(
        select(TagBinding, Unit.name)
        .join(ApiClient, ApiClient.id == TagBinding.client_id)
        .join(Unit, Unit.id == ApiClient.unit_id)
        .where(TagBinding.cylinder_id == cylinder.id)
        .order_by(TagBinding.bound_at, TagBinding.id)
    ).tuples()
    for binding, unit_name in rows:
        timed = _timed(binding.bound_at)
        assert timed is not None  # bound_at is NOT NULL
        yield HistoryEntry(
            on=timed[0],
            at=timed[1],
            kind="tag",
            title="绑定信息化标签",
            detail=f"{binding.tag_type.label}，气瓶信息码：{binding.info_code}",
            actor=f"{unit_name}（企业平台）",
        )


@history_source
def inspection_entries(cylinder: Cylinder) -> Iterator[HistoryEntry]:
    """Inspection records sent by inspection bodies, on their inspection dates."""
    for record in db.session.scalars(
        select(InspectionRecord)
        .where(InspectionRecord.cylinder_id == cylinder.id)
        .order_by(InspectionRecord.inspect_date, InspectionRecord.id)
    ):
        detail = [f"检验结论：{record.conclusion}"]
        if record.next_inspection_month:
            detail.append(f"下次检验日期：{record.next_inspection_month}")
        if record.record_no:
            detail.append(f"记录编号：{record.record_no}")
        # Timed by its arrival when it arrived on its inspection date (orders it against
        # the status change it caused); a record sent later keeps only the date.
        received = _timed(record.received_at)
        yield HistoryEntry(
            on=record.inspect_date,
            at=received[1] if received and received[0] == record.inspect_date else None,
            kind="inspection",
            title=f"{record.inspect_type}检验",
            detail="，".join(detail),
            actor=record.inspection_org,
        )


@history_source
def status_entries(cylinder: Cylinder) -> Iterator[HistoryEntry]:
    """Changes of 使用状态 after registration, on the day each took effect."""
    for change in db.session.scalars(
        select(CylinderStatusChange)
        .where(
            CylinderStatusChange.cylinder_id == cylinder.id,
            CylinderStatusChange.previous_status.is_not(None),
        )
        .order_by(CylinderStatusChange.effective_on, CylinderStatusChange.id)
    ):
        recorded = _timed(change.recorded_at)
        previous = change.previous_status.label if change.previous_status else ""
        detail = f"{previous} → {change.status.label}"
        if recorded is not None and recorded[0] != change.effective_on:
            detail += f"（{format_china(recorded[1])} 记录）"
        yield HistoryEntry(
            on=change.effective_on,
            at=recorded[1] if recorded and recorded[0] == change.effective_on else None,
            kind="status",
            title=f"使用状态变更为{change.status.label}",
            detail=detail,
        )


@history_source
def change_request_entries(cylinder: Cylinder) -> Iterator[HistoryEntry]:
    """变更申请 naming the cylinder (停用, 过户, 补领 …): filed, and approved or 驳回."""
    rows = db.session.execute(
        select(ChangeRequest, ChangeItem)
        .join(ChangeItem, ChangeItem.change_id == ChangeRequest.id)
        .where(ChangeItem.cylinder_id == cylinder.id)
        .order_by(ChangeRequest.submitted_at, ChangeRequest.id)
    ).tuples()
    for change, item in rows:
        names = _user_names([change.created_by_id, change.approved_by_id, change.rejected_by_id])
        subject = f"{change.kind.label}申请 {change.number or ''}".rstrip()
        filed = _timed(change.submitted_at)
        assert filed is not None  # submitted_at is NOT NULL
        detail = change.unit_name
        if change.kind is ChangeKind.TRANSFER and change.target_unit is not None:
            detail = f"{change.unit_name} → {change.target_unit.name}"
        yield HistoryEntry(
            on=filed[0],
            at=filed[1],
            kind="change",
            title=f"提交{subject}",
            detail=detail,
            actor=names.get(change.created_by_id or 0, change.origin.label),
        )
        for title, at, user_id, extra in (
            (f"批准{subject}", change.approved_at, change.approved_by_id, ""),
            (f"驳回{subject}", change.rejected_at, change.rejected_by_id, change.reject_reason),
        ):
            timed = _timed(at)
            if timed is not None:
                yield HistoryEntry(
                    on=timed[0],
                    at=timed[1],
                    kind="change",
                    title=title,
                    detail=f"原因：{extra}"
                    if extra
                    else f"变更前使用状态：{item.previous_status.label}",
                    actor=names.get(user_id or 0, ""),
                )
