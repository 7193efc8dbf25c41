"""Command-line operations: ``flask --app wsgi <command>``."""

from __future__ import annotations

import json
import secrets
import sys
from typing import NoReturn, TextIO

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import select

from . import accounts, api_clients, audit_retention, demo
from .audit_retention import MIN_RETENTION_DAYS
from .credit_code import normalize_credit_code
from .extensions import db
from .models import Role, Unit, User


def _fail(message: str) -> NoReturn:
    click.echo(f"错误：{message}", err=True)
    sys.exit(1)


@click.command("create-user")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--password", help="at least 8 characters; prompted for when omitted")
@click.option("--display-name")
@click.option("--district", "district_code", help="district code, for acceptor/reviewer/approver")
@click.option("--unit-credit-code", help="the unit's 统一社会信用代码, for applicant")
@with_appcontext
def create_user_command(
    username: str,
    role: str,
    password: str | None,
    display_name: str | None,
    district_code: str | None,
    unit_credit_code: str | None,
) -> None:
    """Create a back-office user."""
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    unit = None
    if unit_credit_code:
        unit = db.session.scalar(
            select(Unit).where(Unit.credit_code == normalize_credit_code(unit_credit_code))
        )
        if unit is None:
            _fail(f"找不到统一社会信用代码为 {unit_credit_code} 的单位")
    try:
        user = accounts.create_user(
            username,
            password,
            Role(role),
            display_name=display_name,
            district_code=district_code,
            unit=unit,
        )
    except accounts.AccountError as exc:
        _fail(str(exc))
    db.session.commit()
    click.echo(f"created user {user.username} ({user.role.value})")


@click.command("create-api-client")
@click.option("--unit-credit-code", required=True)
@click.option(
    "--scopes", required=True, help="comma separated: query,bind,filling,inspection,trace"
)
@click.option("--description", default="")
@with_appcontext
def create_api_client_command(unit_credit_code: str, scopes: str, description: str) -> None:
    """Issue an API client; prints JSON with app_id and app_secret (shown only now)."""
    unit = db.session.scalar(
        select(Unit).where(Unit.credit_code == normalize_credit_code(unit_credit_code))
    )
    if unit is None:
        _fail(f"找不到统一社会信用代码为 {unit_credit_code} 的单位")
    try:
        client, secret = api_clients.issue_client(unit, scopes.split(","), description=description)
    except api_clients.ApiClientError as exc:
        _fail(str(exc))
    db.session.commit()
    click.echo(
        json.dumps(
            {
                "app_id": client.app_id,
                "app_secret": secret,
                "unit_credit_code": unit.credit_code,
                "scopes": client.scopes.split(","),
            },
            ensure_ascii=False,
        )
    )


@click.command("seed-demo")
@click.option(
    "--password",
    help=f"password for every demo user, at least {accounts.MIN_PASSWORD_LENGTH} characters; "
    "random (and printed) if omitted",
)
@click.option("--json-out", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def seed_demo_command(password: str | None, json_out: str | None) -> None:
    """Create the demo districts, users, units, API clients and cylinders (idempotent)."""
    if not password:
        password = secrets.token_urlsafe(9)
        while accounts.password_error(password):  # rarely: too few character classes
            password = secrets.token_urlsafe(9)
    if accounts.password_error(password):
        _fail(accounts.password_error(password) or "")
    summary = demo.seed_demo(password)
    db.session.commit()
    if json_out:
        with open(json_out, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, ensure_ascii=False, indent=2)
    click.echo(f"demo data ready; password for every demo user: {password}")
    for username, role in summary["users"].items():
        click.echo(f"  {username:<20} {Role(role).label}")


@click.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queue is empty")
@click.option("--sweep-interval", default=60.0, show_default=True, help="seconds between sweeps")
@with_appcontext
def worker_command(burst: bool, sweep_interval: float) -> None:
    """Run an rq worker inside the app context (and re-send stuck certificates)."""
    from flask import current_app

    from .jobs import queue
    from .worker import run_worker

    q = queue()
    if q is None:
        _fail("REGBO_REDIS_URL 未设置：任务以内联方式运行，无需 worker")
    # Flask types current_app as Flask; it is a LocalProxy, and rq needs the real app.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    run_worker(app, q, burst=burst, sweep_interval=sweep_interval)


@click.command("bench-data")
@click.option("--cylinders", type=int, default=1_000_000, show_default=True)
@with_appcontext
def bench_data_command(cylinders: int) -> None:
    """Fill the archive with synthetic cylinders for benchmarks."""
    from .benchdata import generate_cylinders

    seconds = generate_cylinders(cylinders)
    click.echo(f"inserted {cylinders} cylinders in {seconds:.1f} s")


@click.command("partitions-ensure")
@click.option("--months-ahead", type=int, default=3, show_default=True)
@with_appcontext
def partitions_ensure_command(months_ahead: int) -> None:
    """Create the monthly partitions of filling/trace records up to N months ahead (cron)."""

    from .clock import china_today
    from .partitions import ensure_partitions, month_start

    today = china_today()
    last = month_start(today.year, today.month + months_ahead)
    created = ensure_partitions(db.session.connection(), month_start(today.year, today.month), last)
    db.session.commit()
    click.echo(f"created {len(created)} partitions" + "".join(f"\n  {n}" for n in created))


@click.command("bench-fillings")
@click.option("--records", type=int, default=10_000_000, show_default=True)
@with_appcontext
def bench_fillings_command(records: int) -> None:
    """Append synthetic filling records (INSERT … SELECT generate_series) for benchmarks."""
    from .benchdata import generate_fillings

    seconds = generate_fillings(records)
    click.echo(f"inserted {records} filling records in {seconds:.1f} s")


@click.command("prune-audit")
@click.option(
    "--older-than-days",
    type=int,
    required=True,
    help=f"delete audit rows older than this many days (at least {MIN_RETENTION_DAYS})",
)
@with_appcontext
def prune_audit_command(older_than_days: int) -> None:
    """Apply the audit-log retention period (run daily from cron or a systemd timer)."""
    try:
        deleted = audit_retention.prune(older_than_days)
    except audit_retention.RetentionError as exc:
        _fail(str(exc))
    db.session.commit()
    click.echo(f"pruned {deleted} audit rows older than {older_than_days} days")


@click.command("refresh-stats")
@with_appcontext
def refresh_stats_command() -> None:
    """Rebuild the dashboard's summary tables (cron; the worker also does it hourly)."""
    import time

    from .stats.summaries import refresh_dashboard_stats

    started = time.perf_counter()
    refresh_dashboard_stats()
    click.echo(f"dashboard statistics refreshed in {time.perf_counter() - started:.1f} s")


@click.command("calendar-import")
@click.option("--year", type=int, required=True, help="the year the file's schedule is for")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--document", default="", help="the notice, e.g. 国办发明电〔2026〕X号")
@click.option("--entered-by", "username", help="the admin's username, for the audit log")
@click.option("--yes", is_flag=True, help="enter without asking after the preview")
@with_appcontext
def calendar_import_command(
    year: int, file: TextIO, document: str, username: str | None, yes: bool
) -> None:
    """Enter or replace a year's State Council holiday schedule (docs/calendar.md)."""
    from . import calendar_import

    text = file.read()
    actor = None
    if username:
        actor = db.session.scalar(select(User).where(User.username == username))
        if actor is None:
            _fail(f"找不到用户 {username}")
    try:
        preview = calendar_import.preview(year, text)
    except calendar_import.ScheduleError as exc:
        _fail("文件未录入：\n" + "\n".join(exc.errors))
    action = "替换" if preview.replaces else "录入"
    counts = f"{preview.holidays} 个放假日、{preview.workdays} 个调休上班日"
    click.echo(f"{action} {year} 年节假日安排：{counts}")
    for warning in preview.warnings:
        click.echo(f"  注意：{warning}")
    click.echo(f"将变动 {len(preview.moves)} 项未办结期限")
    if not yes and not click.confirm("确认录入并重新计算受影响的未办结期限？"):
        _fail("未录入")
    result = calendar_import.import_schedule(year, text, actor, document=document)
    db.session.commit()
    click.echo(f"已{action} {year} 年安排；{len(result.moved)} 项未办结期限变动")
    for moved in result.moved:
        old = moved.old.isoformat() if moved.old else "（无）"
        click.echo(f"  {moved.number or moved.application_id} {moved.step} {old} → {moved.new}")


@click.command("calendar-show")
@click.option("--year", type=int, required=True)
@with_appcontext
def calendar_show_command(year: int) -> None:
    """Print a year's days off and 调休 working days, and where they come from."""
    from . import work_calendar
    from .calendar_import import WEEKDAYS
    from .models import CalendarYear

    schedule = work_calendar.schedule(year)
    row = db.session.get(CalendarYear, year)
    if row is None:
        rule = work_calendar.STATUTORY_RULE
        click.echo(f"{year} 年：未录入，按{rule}估算（周末休息，不推测调休）")
    else:
        who = f"，{row.entered_by.username} 录入" if row.entered_by else ""
        click.echo(f"{year} 年：已录入，{row.source.label} {row.document}{who}".rstrip())
    days = [(d, "holiday", n) for d, n in schedule.holidays.items()]
    days += [(d, "workday", n) for d, n in schedule.workdays.items()]
    for day, kind, name in sorted(days):
        click.echo(f"{day.isoformat()},{kind},{name}  # 星期{WEEKDAYS[day.weekday()]}")


def init_app(app: Flask) -> None:
    for command in (
        create_user_command,
        create_api_client_command,
        seed_demo_command,
        worker_command,
        bench_data_command,
        bench_fillings_command,
        partitions_ensure_command,
        prune_audit_command,
        refresh_stats_command,
        calendar_import_command,
        calendar_show_command,
    ):
        app.cli.add_command(command)
