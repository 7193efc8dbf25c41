"""节假日安排: the official holiday schedule per year (view, enter, replace)."""

from __future__ import annotations

from flask import abort, render_template, request
from flask_login import current_user
from sqlalchemy import func, select

from ... import calendar_import, work_calendar
from ...access import roles_required
from ...clock import china_today
from ...extensions import db
from ...models import CalendarDay, CalendarYear, DayKind, Role
from . import bp
from .forms import CalendarImportForm

MAX_FILE_BYTES = 20_000  # a year's schedule is about 40 lines (1 kB); the text box takes as much


@bp.route("/calendar")
@roles_required(Role.ADMIN)
def calendar_years() -> str:
    rows = db.session.scalars(select(CalendarYear).order_by(CalendarYear.year.desc())).all()
    counts = {
        (year, kind): n
        for year, kind, n in db.session.execute(
            select(CalendarDay.year, CalendarDay.kind, func.count()).group_by(
                CalendarDay.year, CalendarDay.kind
            )
        )
    }
    today = china_today()
    present = {row.year for row in rows}
    missing = [y for y in (today.year + 1, today.year) if y not in present]
    return render_template(
        "admin/calendar_years.html",
        rows=rows,
        counts=counts,
        missing=missing,
        DayKind=DayKind,
        form=CalendarImportForm(year=missing[0] if missing else today.year + 1),
    )


@bp.route("/calendar/<int:year>")
@roles_required(Role.ADMIN)
def calendar_year(year: int) -> str:
    low, high = calendar_import.YEAR_RANGE
    if not low <= year <= high:
        abort(404)
    schedule = work_calendar.schedule(year)
    days = sorted(
        [(day, DayKind.HOLIDAY, name) for day, name in schedule.holidays.items()]
        + [(day, DayKind.WORKDAY, name) for day, name in schedule.workdays.items()]
    )
    return render_template(
        "admin/calendar_year.html",
        year=year,
        row=db.session.get(CalendarYear, year),
        schedule=schedule,
        days=days,
        weekdays=calendar_import.WEEKDAYS,
        statutory_rule=work_calendar.STATUTORY_RULE,
    )


def _submitted_text(form: CalendarImportForm) -> str | None:
    """The schedule text from the upload or the text box; errors go onto the form."""
    upload = form.file.data
    if upload and getattr(upload, "filename", ""):
        raw = upload.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            form.file.errors.append("文件过大：一年的安排只有几十行，请检查是否选错了文件。")
            return None
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            form.file.errors.append("文件不是 UTF-8 编码的文本，请另存为 UTF-8 后重新上传。")
            return None
    if form.text.data and form.text.data.strip():
        return form.text.data
    form.text.errors = [*form.text.errors, "请上传安排文件，或把内容粘贴到文本框中。"]
    return None


@bp.route("/calendar/import", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def calendar_import_page() -> str:
    form = CalendarImportForm()
    if request.method == "GET":
        form.year.data = request.args.get("year", type=int) or china_today().year + 1
    errors: list[str] = []
    if form.validate_on_submit() and (text := _submitted_text(form)) is not None:
        year = form.year.data
        assert year is not None  # the form's validators require it
        try:
            if form.confirm.data == "1":
                result = calendar_import.import_schedule(
                    year, text, current_user, document=form.document.data or ""
                )
                return render_template("admin/calendar_result.html", result=result)
            preview = calendar_import.preview(year, text)
        except calendar_import.ScheduleError as exc:
            errors = exc.errors
        else:
            form.text.data = text
            form.confirm.data = "1"
            return render_template(
                "admin/calendar_preview.html",
                form=form,
                preview=preview,
                weekdays=calendar_import.WEEKDAYS,
            )
    return render_template("admin/calendar_import.html", form=form, errors=errors)
