"""Access sweep: every URL rule, called by everyone who must not reach it, with real ids.

Each rule of ``app.url_map`` must be classified below (the roles it serves, or public with a
reason); an unclassified rule fails the sweep, so new routes are covered automatically.
Each rule is then called with each method it accepts, as every wrong role, as the same
role from another district or unit, and anonymously, with the ids of real objects in
district 500112 / unit A. Expected: 403, 404 or a redirect to the login page; never the
object's data, never a 5xx; nothing in the database changes; every refusal of a logged-in
user leaves an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy import func, select

from regbackoffice import certificates, change_workflow
from regbackoffice.extensions import db
from regbackoffice.models import (
    Application,
    ApplicationItem,
    Attachment,
    AuditLog,
    Certificate,
    ChangeKind,
    Cylinder,
    ImportJob,
    LicensingDocument,
    Role,
    User,
)
from regbackoffice.stats import tables

from . import factories
from .api_helpers import assert_envelope
from .conftest import csrf_token_from, login

DISTRICT = "500112"
OTHER_DISTRICT = "500105"
CLERKS = (Role.ACCEPTOR, Role.REVIEWER, Role.APPROVER)
BUREAU_READERS = (*CLERKS, Role.SUPERVISOR)
ANY_LOGGED_IN = tuple(Role)

# Public endpoints, each with the reason it needs no login.
PUBLIC = {
    "auth.login": "the login form itself",
    "health.healthz": "load balancer and monitoring probe: states of checks, no data",
    "public.verify": "certificate verification for anyone holding a printed certificate",
    "public.trace_page": "追溯信息展示 for anyone scanning a tag (names masked, rate-limited)",
    "public.trace_search": "the same, found by 制造单位 + 产品编号",
    "static": "CSS/JS/fonts, no data",
    "api.docs": "API documentation page, no data",
    "api.openapi_document": "the API's OpenAPI description, no data",
}

# Token-based JSON API: no session login; checked by test_api_without_token_is_refused.
API_TOKEN_ENDPOINTS = {
    "api.token": "exchanges app_id/app_secret for a token (its own refusal tests in test_api_*)",
    "api.bind": "token",
    "api.filling_check": "token",
    "api.fillings": "token",
    "api.inspections": "token",
    "api.query": "token",
    "api.traces": "token",
    "api.trail": "token",
    "api.changes": "token",
}

# Every session-authenticated endpoint: the roles it serves (within their scope).
ROLES = {
    "main.home": ANY_LOGGED_IN,
    "auth.logout": ANY_LOGGED_IN,
    "auth.change_password": ANY_LOGGED_IN,
    "inbox.index": CLERKS,
    "acceptance.detail": BUREAU_READERS,
    "acceptance.audit_pager": (Role.ACCEPTOR,),
    "acceptance.audit_reader": (Role.ACCEPTOR,),
    "acceptance.audit_window": (Role.ACCEPTOR,),
    "acceptance.audit_verdict": (Role.ACCEPTOR,),
    "acceptance.accept": (Role.ACCEPTOR,),
    "acceptance.confirm_identity": (Role.ACCEPTOR,),
    "acceptance.void": CLERKS,
    "acceptance.request_correction": (Role.ACCEPTOR, Role.REVIEWER),
    # Scoped by the document's application, like the certificate download.
    "certificates.document_pdf": ANY_LOGGED_IN,
    "review.review": (Role.REVIEWER,),
    "review.approve": (Role.APPROVER,),
    "certificates.generate": (Role.ACCEPTOR,),
    "certificates.index": (Role.ACCEPTOR,),
    "certificates.print_pdf": (Role.ACCEPTOR,),
    "certificates.retry": (Role.ACCEPTOR,),
    "certificates.void": (Role.ACCEPTOR,),
    # Scoped by the certificate's application: any role that may see the application.
    "certificates.status": ANY_LOGGED_IN,
    "certificates.download": ANY_LOGGED_IN,
    "files.attachment": ANY_LOGGED_IN,
    **{
        f"applications.{name}": (Role.APPLICANT,)
        for name in [
            "index",
            "new",
            "edit",
            "delete",
            "show",
            "template",
            "import_file",
            "import_result",
            "import_status",
            "import_errors",
            "retry_import",
            "edit_item",
            "delete_item",
            "item_photos",
            "replace_photo",
            "delete_photo",
            "bulk_photos",
            "photo_file",
            "submit",
            "copy",
            "withdraw",
            "progress",
        ]
    },
    **{
        f"admin.{name}": (Role.ADMIN,)
        for name in [
            "api_client_active",
            "api_client_rotate",
            "api_clients_list",
            "calendar_import_page",
            "calendar_year",
            "calendar_years",
            "unit_edit",
            "units_list",
            "user_active",
            "user_edit",
            "user_unlock",
            "user_new",
            "user_password",
            "users",
        ]
    },
    "admin.audit_log": (Role.ADMIN, Role.SUPERVISOR),
    **{
        f"supervision.{name}": (Role.SUPERVISOR,)
        for name in ["dashboard", "export", "district", "district_export"]
    },
    "admin.reference": (Role.ADMIN, Role.SUPERVISOR),
    # 气瓶档案: the unit's, the district's or (read-only) the city's cylinders.
    **{
        f"archive.{name}": (Role.APPLICANT, *BUREAU_READERS)
        for name in ["index", "export", "detail"]
    },
    # 变更申请: scoped by the request (the district's bureau, the unit, a 过户's receiver).
    "changes.index": (Role.APPLICANT,),
    "changes.new": (Role.APPLICANT,),
    "changes.show": ANY_LOGGED_IN,
    "changes.proof": ANY_LOGGED_IN,
    "changes.receive": (Role.APPLICANT,),
    "changes.withdraw": (Role.APPLICANT,),
    "changes.accept": (Role.ACCEPTOR,),
    "changes.approve": (Role.APPROVER,),
    "changes.reject": (Role.APPLICANT, Role.ACCEPTOR, Role.APPROVER),
}

# Endpoints that take object ids in the form instead of the URL: field → Target attribute.
FORM_OBJECTS = {"certificates.print_pdf": {"certificate": "certificate_id"}}

# Endpoints whose effect on the caller's own session is the point (logout): not swept for
# "no change" by logged-in callers, only anonymously.
SELF_ONLY = {"auth.logout", "auth.change_password"}


@dataclass
class Caller:
    label: str
    role: Role | None
    client: FlaskClient
    csrf: str
    # True when the caller has the right role but the object lies outside its scope.
    out_of_scope: bool = False


@dataclass
class Target:
    """One application in district 500112 / unit A and the ids of what hangs off it."""

    label: str
    application_id: int
    item_id: int
    attachment_id: int
    job_id: int
    certificate_id: int | None
    document_id: int | None
    secrets: tuple[str, ...]  # texts that must not appear in a refusal


def _target(label: str, application: Application, user: User) -> Target:
    item = db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    ).first()
    photo = db.session.scalars(select(Attachment).where(Attachment.item_id == item.id)).first()
    photo = photo or factories.make_photo(item)
    job = ImportJob(application_id=application.id, original_name="清单.xlsx", created_by_id=user.id)
    db.session.add(job)
    db.session.flush()
    certificate = db.session.scalar(
        select(Certificate).where(Certificate.application_id == application.id)
    )
    document = db.session.scalar(
        select(LicensingDocument).where(LicensingDocument.application_id == application.id)
    )
    return Target(
        label,
        application.id,
        item.id,
        photo.id,
        job.id,
        certificate.id if certificate else None,
        document.id if document else None,
        (application.number, item.product_no),
    )


@pytest.fixture
def world(app):
    unit = factories.make_unit(DISTRICT, name="重庆巡检目标燃气有限公司")
    owner = factories.make_user(Role.APPLICANT, unit=unit)
    draft = factories.make_application(unit, created_by=owner)
    factories.make_photo(factories.make_item(draft))
    submitted = factories.make_submitted_application(unit, items=1)
    approved = factories.make_approved_application(unit, items=1)
    acceptor = factories.make_user(Role.ACCEPTOR, district_code=DISTRICT)
    certificates.generate(approved, acceptor, approved.version_id)
    db.session.flush()
    targets = [
        _target("draft", draft, owner),
        _target("submitted", submitted, owner),
        _target("approved", approved, owner),
    ]
    api_client, _secret = factories.make_api_client(unit)
    # 证书生成 wrote the approved application's cylinder into the archive (unit A, 500112).
    cylinder_id = db.session.scalar(
        select(Cylinder.id).where(Cylinder.application_id == approved.id)
    )
    change = change_workflow.submit(
        ChangeKind.SUSPEND,
        unit,
        owner,
        [factories.make_cylinder(unit)],
        change_workflow.ChangeFields(reason="检修"),
        app.config,
    )
    db.session.commit()
    return {
        "targets": targets,
        "unit": unit,
        "owner": owner,
        "ids": {
            "user_id": owner.id,
            "unit_id": unit.id,
            "client_id": api_client.id,
            # 监管看板 URLs name a district and an export table, not an object.
            "code": "500112",
            "key": next(iter(tables.TABLE_KEYS)),
            "year": 2026,  # 节假日安排 pages name a year
            "cylinder_id": cylinder_id,
            "change_id": change.id,
        },
        "api_client": api_client,
    }


def _client_for(app, user: User | None) -> tuple[FlaskClient, str]:
    client = app.test_client()
    if user is None:
        return client, csrf_token_from(client.get("/login").get_data(as_text=True))
    assert login(client, user).status_code == 302
    return client, csrf_token_from(client.get("/").get_data(as_text=True))


def _callers(app, world) -> list[Caller]:
    other_unit_same_district = factories.make_unit(DISTRICT)
    other_unit_other_district = factories.make_unit(OTHER_DISTRICT)
    users: list[tuple[str, User | None, bool]] = [
        ("anonymous", None, False),
        (
            "applicant of another unit (same district)",
            factories.make_user(Role.APPLICANT, unit=other_unit_same_district),
            True,
        ),
        (
            "applicant of another district's unit",
            factories.make_user(Role.APPLICANT, unit=other_unit_other_district),
            True,
        ),
    ]
    for role in CLERKS:
        users.append(
            (f"{role.value} of 500112", factories.make_user(role, district_code=DISTRICT), False)
        )
        users.append(
            (
                f"{role.value} of another district",
                factories.make_user(role, district_code=OTHER_DISTRICT),
                True,
            )
        )
    users.append(("applicant of unit A", world["owner"], False))
    users.append(("supervisor", factories.make_user(Role.SUPERVISOR, district_code=None), False))
    users.append(("admin", factories.make_user(Role.ADMIN, district_code=None), False))
    db.session.commit()
    callers = []
    for label, user, out_of_scope in users:
        client, token = _client_for(app, user)
        callers.append(Caller(label, user.role if user else None, client, token, out_of_scope))
        db.session.commit()  # end our read transaction before the next login (see _fingerprint)
    return callers


def _must_refuse(endpoint: str, method: str, caller: Caller, has_object: bool) -> bool:
    """Whether ``caller`` must be refused this endpoint/method on district 500112's objects."""
    if caller.role is None:
        return True
    if endpoint in SELF_ONLY:
        return False
    allowed = ROLES[endpoint]
    if caller.role is Role.SUPERVISOR and method != "GET":
        return True  # read-only everywhere
    if caller.role not in allowed:
        return True
    # The right role: refused only where the object is outside its district or unit.
    return caller.out_of_scope and has_object


def _urls(rule, target: Target, world) -> list[str]:
    """The rule's URL filled with the target's real ids (empty when a needed id is missing)."""
    ids = {
        "application_id": target.application_id,
        "item_id": target.item_id,
        "attachment_id": target.attachment_id,
        "job_id": target.job_id,
        "certificate_id": target.certificate_id,
        "document_id": target.document_id,
        **world["ids"],
    }
    values = {}
    for name in rule.arguments:
        if name == "variant":
            continue
        if ids.get(name) is None:
            return []
        values[name] = ids[name]
    if "variant" in rule.arguments:
        return [
            rule.build({**values, "variant": v})[1]
            for v in ("full", "thumb", "small", "side", "view")
        ]
    return [rule.build(values)[1]]


def _fingerprint() -> dict[str, str]:
    """A checksum of every table's content except the log tables that refusals write to."""
    skip = {"audit_log", "user_sessions", "users", "auth_throttle"}
    prints = {}
    for table in db.metadata.sorted_tables:
        if table.name in skip:
            continue
        prints[table.name] = db.session.scalar(
            sa.text(
                "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                f' FROM "{table.name}" t'
            )
        )
    # Users: what an access-control bug could change (not login bookkeeping).
    prints["users"] = db.session.scalar(
        sa.text(
            "SELECT md5(coalesce(string_agg(concat_ws(',', id, username, role, active, "
            "password_hash, district_code, unit_id), '|' ORDER BY id), '')) FROM users"
        )
    )
    # Commit, not rollback: a rollback would undo the requests' savepoints nested in ours.
    db.session.commit()
    return prints


def _refusals() -> int:
    count = db.session.scalar(select(func.count()).where(AuditLog.outcome == "refused"))
    db.session.commit()
    return count


def _check_refused(response, caller: Caller, target: Target | None, where: str) -> None:
    status = response.status_code
    body = response.get_data().decode(errors="replace")
    if caller.role is None:
        assert status == 302 and "/login" in response.headers["Location"], (
            f"{where}: anonymous got {status}"
        )
    else:
        assert status in (403, 404), f"{where}: got {status}"
    if target is not None:
        for text in target.secrets:
            assert text not in body, f"{where}: the object's data ({text}) is in the answer"


def test_every_rule_is_classified(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    classified = set(PUBLIC) | set(API_TOKEN_ENDPOINTS) | set(ROLES)
    assert endpoints - classified == set(), "classify these new routes in test_access_sweep.py"
    assert classified - endpoints == set(), "these classified endpoints no longer exist"


@pytest.mark.slow
def test_sweep_no_one_reaches_what_they_must_not(app, world):
    callers = _callers(app, world)
    swept = 0
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in PUBLIC or rule.endpoint in API_TOKEN_ENDPOINTS:
            continue
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        has_object = bool(rule.arguments - {"variant"}) or rule.endpoint in FORM_OBJECTS
        targets = world["targets"] if has_object else [None]
        for target in targets:
            urls = _urls(rule, target, world) if target else [rule.build({})[1]]
            form = {
                field: getattr(target, attribute)
                for field, attribute in FORM_OBJECTS.get(rule.endpoint, {}).items()
            }
            if None in form.values():
                continue
            if not urls:
                continue
            before = _fingerprint()
            for url in urls:
                for method in methods:
                    for caller in callers:
                        if not _must_refuse(rule.endpoint, method, caller, has_object):
                            continue
                        if target not in (None, targets[0]) and not caller.out_of_scope:
                            continue  # a wrong role is refused before any object is looked at
                        label = target.label if target else "-"
                        where = f"{method} {url} ({rule.endpoint}, {label}) as {caller.label}"
                        refusals = _refusals()
                        response = caller.client.open(
                            url,
                            method=method,
                            data={**form, "csrf_token": caller.csrf} if method == "POST" else None,
                        )
                        _check_refused(response, caller, target, where)
                        if caller.role is None and rule.endpoint == "auth.logout":
                            # Its session (and CSRF token) was just cleared: take a new one.
                            page = caller.client.get("/login").get_data(as_text=True)
                            caller.csrf = csrf_token_from(page)
                        if caller.role is not None:
                            assert _refusals() > refusals, f"{where}: the refusal is not audited"
                        swept += 1
            assert _fingerprint() == before, f"{rule.endpoint} on {target}: data changed"
    print(f"access sweep: {swept} refused calls")
    assert swept > 500  # the sweep really ran over the app


def test_api_without_token_is_refused_and_changes_nothing(app, world):
    client = app.test_client()
    before = _fingerprint()
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in API_TOKEN_ENDPOINTS or rule.endpoint == "api.token":
            continue
        for token in (None, "forged-token"):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = client.post(rule.rule, json={"records": []}, headers=headers)
            assert_envelope(response, 401)
    assert _fingerprint() == before
