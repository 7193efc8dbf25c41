"""Bureau acceptance: the 审核附件 pager, 受理 and 驳回（退件） (DESIGN 4 and 6)."""

import re

import pytest
from sqlalchemy import select

from regbackoffice import workflow
from regbackoffice.extensions import db
from regbackoffice.models import (
    ApplicationItem,
    ApplicationStatus,
    AuditLog,
    AuditVerdict,
    Role,
)

from . import factories
from .conftest import csrf_token_from, login, version_from


@pytest.fixture
def application():
    return factories.make_submitted_application(factories.make_unit("500112"), items=25)


@pytest.fixture
def acceptor(login_as):
    return login_as(Role.ACCEPTOR, district_code="500112")


def pager_url(application, **query) -> str:
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/bureau/applications/{application.id}/audit" + (f"?{suffix}" if suffix else "")


def page_form(client, url: str) -> tuple[str, dict]:
    """Read the pager page as a browser would: its form's fields with their current values."""
    html = client.get(url).get_data(as_text=True)
    data: dict = {"csrf_token": csrf_token_from(html), "version": version_from(html), "item": []}
    for item_id in re.findall(r'name="item" value="(\d+)"', html):
        data["item"].append(item_id)
        data[f"rev-{item_id}"] = re.search(rf'name="rev-{item_id}" value="(\d+)"', html).group(1)
        checked = re.search(rf'name="verdict-{item_id}"[^>]*value="(\w+)" checked', html)
        data[f"verdict-{item_id}"] = checked.group(1) if checked else "correct"
        note = re.search(rf'name="note-{item_id}"[^>]*value="([^"]*)"', html)
        data[f"note-{item_id}"] = note.group(1) if note else ""
    return html, data


def submit_page(client, application, data, action, **query):
    return client.post(pager_url(application, **query), data={**data, "action": action})


def verdicts(application) -> dict[str, int]:
    items = db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    ).all()
    for item in items:
        db.session.refresh(item)
    counts: dict[str, int] = {}
    for item in items:
        counts[item.audit_verdict.value] = counts.get(item.audit_verdict.value, 0) + 1
    return counts


def click_through(client, application, size=10, wrong: dict | None = None):
    """Open the pager and press 下一页 to the end, then 完成; ``wrong`` maps row → note."""
    wrong = wrong or {}
    page = 1
    while True:
        html, data = page_form(client, pager_url(application, page=page, size=size))
        for item_id in data["item"]:
            item = db.session.get(ApplicationItem, int(item_id))
            if item.row_no in wrong:
                data[f"verdict-{item_id}"] = "wrong"
                data[f"note-{item_id}"] = wrong[item.row_no]
        last = 'value="finish"' in html
        response = submit_page(
            client, application, data, "finish" if last else "next", page=page, size=size
        )
        if last:
            return response
        assert response.status_code == 302
        page += 1


def test_pager_header_counts_audited_and_wrong(client, acceptor, application):
    html, _ = page_form(client, pager_url(application))
    assert "已审核 0 / 25，错误 0" in html
    assert html.count('class="card mb-2 audit-card') == 10


def test_clicking_straight_through_saves_correct_for_all(client, acceptor, application):
    response = click_through(client, application)
    assert (
        response.status_code == 302
        and f"/bureau/applications/{application.id}" in response.headers["Location"]
    )
    assert verdicts(application) == {"correct": 25}
    db.session.refresh(application)
    assert application.audit_completed_at is not None


def test_wrong_verdicts_persist_across_pages_and_revisits(client, acceptor, application):
    _, data = page_form(client, pager_url(application, page=1))
    first = data["item"][0]
    data[f"verdict-{first}"], data[f"note-{first}"] = "wrong", "钢印照片模糊"
    submit_page(client, application, data, "next", page=1, size=10)
    _, data2 = page_form(client, pager_url(application, page=2))
    data2[f"verdict-{data2['item'][3]}"], data2[f"note-{data2['item'][3]}"] = (
        "wrong",
        "监检证书编号不符",
    )
    submit_page(client, application, data2, "prev", page=2, size=10)
    html, revisit = page_form(client, pager_url(application, page=1))
    assert revisit[f"verdict-{first}"] == "wrong" and revisit[f"note-{first}"] == "钢印照片模糊"
    assert "已审核 20 / 25，错误 2" in html
    only_wrong, _ = page_form(client, pager_url(application, only="wrong"))
    assert "钢印照片模糊" in only_wrong and "监检证书编号不符" in only_wrong
    assert only_wrong.count('class="card mb-2 audit-card') == 2


def test_wrong_without_a_note_is_refused_and_nothing_saved(client, acceptor, application):
    _, data = page_form(client, pager_url(application))
    data[f"verdict-{data['item'][0]}"] = "wrong"
    response = submit_page(client, application, data, "next", page=1, size=10)
    assert response.status_code == 302
    assert "必须填写备注" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert verdicts(application) == {"pending": 25}


def test_double_click_and_resubmit_save_once(client, acceptor, application):
    _, data = page_form(client, pager_url(application))
    first = submit_page(client, application, data, "next", page=1, size=10)
    second = submit_page(client, application, data, "next", page=1, size=10)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    saves = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "attachment_audit_saved")
    ).all()
    assert len(saves) == 1 and saves[0].detail["changed"] == 10


def test_second_clerk_is_told_and_sees_the_first_clerks_verdict(app, client, acceptor, application):
    other = app.test_client()
    login(other, factories.make_user(Role.ACCEPTOR, district_code="500112"))
    _, mine = page_form(client, pager_url(application))
    _, theirs = page_form(other, pager_url(application))
    target = mine["item"][2]
    theirs[f"verdict-{target}"], theirs[f"note-{target}"] = "wrong", "产品编号与钢印不一致"
    assert submit_page(other, application, theirs, "save", page=1, size=10).status_code == 302
    response = submit_page(client, application, mine, "next", page=1, size=10)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "在本页打开后已被修改" in body and "产品编号与钢印不一致" in body
    item = db.session.get(ApplicationItem, int(target))
    db.session.refresh(item)
    assert item.audit_verdict is AuditVerdict.WRONG  # not silently overwritten
    assert verdicts(application) == {"correct": 9, "wrong": 1, "pending": 15}


def test_the_same_clerk_in_two_tabs_never_overwrites_the_newer_verdict(
    client, acceptor, application
):
    _, old_tab = page_form(client, pager_url(application))
    _, new_tab = page_form(client, pager_url(application))
    target = new_tab["item"][0]
    new_tab[f"verdict-{target}"], new_tab[f"note-{target}"] = "wrong", "钢印与编号不符"
    assert submit_page(client, application, new_tab, "save", page=1, size=10).status_code == 302
    # The old tab still shows 正确 for it; saving it must not undo the newer 错误.
    response = submit_page(client, application, old_tab, "next", page=1, size=10)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "在本页打开后已被修改" in body
    assert "钢印与编号不符" in body  # the page shows the current verdict
    item = db.session.get(ApplicationItem, int(target))
    db.session.refresh(item)
    assert item.audit_verdict is AuditVerdict.WRONG and item.audit_note == "钢印与编号不符"


def test_enter_saves_and_goes_forward_not_back(client, acceptor, application):
    html = client.get(pager_url(application, page=2, size=10)).get_data(as_text=True)
    form = html[html.index('id="audit-form"') :]
    first_button = re.search(r'<button type="submit" name="action" value="(\w+)"', form)
    assert first_button.group(1) == "next"  # the default button; 上一页 comes later
    last = client.get(pager_url(application, page=3, size=10)).get_data(as_text=True)
    last_form = last[last.index('id="audit-form"') :]
    assert re.search(r'<button type="submit" name="action" value="(\w+)"', last_form)[1] == (
        "finish"
    )


def test_finish_before_every_page_is_audited_is_refused(client, acceptor, application):
    _, data = page_form(client, pager_url(application, page=3))
    response = submit_page(client, application, data, "finish", page=3, size=10)
    message = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "还有20只气瓶未审核" in message
    db.session.refresh(application)
    assert application.audit_completed_at is None


def _accept(client, application, version=None):
    html = client.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    token = csrf_token_from(html)
    db.session.refresh(application)
    return client.post(
        f"/bureau/applications/{application.id}/accept",
        data={
            "csrf_token": token,
            "version": version if version is not None else application.version_id,
        },
    )


def test_accept_before_audit_complete_is_refused(client, acceptor, application):
    response = _accept(client, application)
    assert "请先在“审核附件”中审核全部气瓶" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED


def test_accept_with_every_cylinder_wrong_is_refused(client, acceptor):
    application = factories.make_submitted_application(factories.make_unit("500112"), items=2)
    click_through(client, application, wrong={2: "不符", 3: "不符"})
    response = _accept(client, application)
    assert "全部气瓶均被标记为“错误”，不能受理" in client.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED


def test_accept_excludes_wrong_cylinders_and_frees_them_for_a_new_application(client, acceptor):
    application = factories.make_submitted_application(factories.make_unit("500112"), items=3)
    click_through(client, application, wrong={3: "钢印不清"})
    assert _accept(client, application).status_code == 302
    db.session.refresh(application)
    assert application.status is ApplicationStatus.ACCEPTED
    assert application.accepted_by_id == acceptor.id and application.decision_due_on is not None
    items = {
        i.row_no: i
        for i in db.session.scalars(
            select(ApplicationItem).where(ApplicationItem.application_id == application.id)
        )
    }
    for item in items.values():
        db.session.refresh(item)
    assert (
        items[3].excluded
        and items[3].live_identity_key is None
        and items[3].audit_note == "钢印不清"
    )
    assert not items[2].excluded and items[2].live_identity_key == items[2].identity_key
    # The excluded cylinder can be applied for again.
    again = factories.make_application(db.session.get(type(application.unit), application.unit_id))
    factories.make_item(
        again,
        product_no=items[3].product_no,
        manufacturer=items[3].manufacturer,
        manufacture_month=items[3].manufacture_month,
    )
    detail = db.session.scalar(
        select(AuditLog).where(AuditLog.action == "application_accepted")
    ).detail
    assert {k: detail[k] for k in ("registered", "excluded")} == {"registered": 2, "excluded": 1}
    assert detail["document_no"].startswith("特设受字")  # the 受理通知书


def test_double_clicked_accept_answers_already_accepted_and_changes_nothing(
    app, client, acceptor, application
):
    click_through(client, application)
    db.session.refresh(application)
    version = application.version_id
    assert _accept(client, application, version).status_code == 302
    second = _accept(client, application, version)
    assert second.status_code == 302  # the clerk's own double click: no 409 after success
    assert "已受理（重复提交，未再次办理）" in client.get(second.headers["Location"]).get_data(
        as_text=True
    )
    accepted = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "application_accepted")
    ).all()
    assert len(accepted) == 1
    # Another clerk's stale page is a conflict, told as such.
    other = app.test_client()
    login(other, factories.make_user(Role.ACCEPTOR, district_code="500112"))
    third = _accept(other, application, version)
    assert third.status_code == 409 and "请刷新页面" in third.get_data(as_text=True)


def test_accept_says_what_it_will_do_before_it_commits(client, acceptor, application):
    click_through(client, application, wrong={2: "钢印模糊", 5: "证书不符"})
    html = client.get(f"/bureau/applications/{application.id}").get_data(as_text=True)
    form = html[html.index("/accept") :].split(">", 1)[0]
    wrong = sorted(
        db.session.scalars(
            select(ApplicationItem)
            .where(ApplicationItem.application_id == application.id)
            .where(ApplicationItem.row_no.in_([2, 5]))
        ),
        key=lambda i: i.row_no,
    )
    expected = (
        f"23 只正确，将予登记；2 只错误，将被排除：{wrong[0].product_no}、{wrong[1].product_no}"
    )
    assert f'data-confirm="{expected}。确认受理？"' in form


def _void(client, application, reason="照片与实物不符", confirm="y", version=None):
    page = client.get(f"/bureau/applications/{application.id}/void")
    data = {"csrf_token": csrf_token_from(page.get_data(as_text=True)), "reason": reason}
    if confirm:
        data["confirm"] = confirm
    db.session.refresh(application)
    data["version"] = version if version is not None else application.version_id
    return client.post(f"/bureau/applications/{application.id}/void", data=data)


def test_void_confirmation_page_says_the_whole_batch_is_voided(client, acceptor, application):
    body = client.get(f"/bureau/applications/{application.id}/void").get_data(as_text=True)
    assert "整批作废" in body and "不可恢复" in body


def test_void_needs_a_reason_and_the_confirmation(client, acceptor, application):
    assert "请填写驳回（退件）原因" in _void(client, application, reason="").get_data(as_text=True)
    assert "请勾选确认" in _void(client, application, confirm=None).get_data(as_text=True)
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED


def test_void_frees_cylinders_for_new_application(client, acceptor, application):
    assert _void(client, application).status_code == 302
    db.session.refresh(application)
    assert (
        application.status is ApplicationStatus.VOIDED
        and application.void_reason == "照片与实物不符"
    )
    keys = db.session.scalars(
        select(ApplicationItem.live_identity_key).where(
            ApplicationItem.application_id == application.id
        )
    ).all()
    assert set(keys) == {None}


def test_void_from_a_wrong_state_answers_409(client, acceptor, application):
    click_through(client, application)
    _accept(client, application)
    response = _void(client, application)
    assert response.status_code == 409
    db.session.refresh(application)
    assert application.status is ApplicationStatus.ACCEPTED


def test_double_submitted_void_says_it_was_done(client, acceptor, application):
    version = application.version_id
    assert _void(client, application, version=version).status_code == 302
    again = _void(client, application, version=version)
    assert again.status_code == 302
    assert "重复提交，未再次办理" in client.get(again.headers["Location"]).get_data(as_text=True)


def test_stale_void_answers_409(client, acceptor, application):
    response = _void(client, application, version=application.version_id - 1)
    assert response.status_code == 409


def test_other_district_acceptor_gets_404_on_application_pages_and_photos(
    client, login_as, application
):
    login_as(Role.ACCEPTOR, district_code="500105")
    photo = db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    ).first()
    from regbackoffice.models import Attachment

    attachment = db.session.scalar(select(Attachment).where(Attachment.item_id == photo.id))
    for url in (
        f"/bureau/applications/{application.id}",
        pager_url(application),
        f"/bureau/applications/{application.id}/void",
        f"/files/attachments/{attachment.id}/full",
        f"/files/attachments/{attachment.id}/thumb",
    ):
        assert client.get(url).status_code == 404, url
    html = client.get("/inbox").get_data(as_text=True)
    assert "您有<strong>0</strong>条使用登记的受理任务需要处理" in html


def test_photos_are_served_to_the_districts_acceptor(client, acceptor, application):
    from regbackoffice.models import Attachment

    attachment = db.session.scalars(select(Attachment)).first()
    with client.get(f"/files/attachments/{attachment.id}/full") as response:
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
        assert response.data[:3] == b"\xff\xd8\xff"
        # A URL without the content version is asked for again (ETag), never kept blind.
        assert response.headers["Cache-Control"] == "private, no-cache"


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.APPROVER, Role.APPLICANT])
def test_only_acceptors_can_accept_or_audit(client, login_as, application, role):
    user = login_as(role, district_code="500112")
    html = client.get("/").get_data(as_text=True)
    token = csrf_token_from(html)
    response = client.post(
        f"/bureau/applications/{application.id}/accept",
        data={"csrf_token": token, "version": application.version_id},
    )
    assert response.status_code == 403
    assert client.get(pager_url(application)).status_code == 403
    db.session.refresh(application)
    assert application.status is ApplicationStatus.SUBMITTED
    assert user.role is role


def test_pager_query_count_does_not_grow_with_page_size(client, acceptor, count_queries):
    application = factories.make_submitted_application(factories.make_unit("500112"), items=50)
    client.get(pager_url(application, size=10))
    with count_queries() as small:
        client.get(pager_url(application, size=10))
    with count_queries() as large:
        client.get(pager_url(application, size=50))
    assert small.count == large.count


def test_workflow_accept_refuses_an_application_in_another_state():
    application = factories.make_application(factories.make_unit())
    user = factories.make_user(Role.ACCEPTOR)
    with pytest.raises(workflow.StaleApplication, match="草稿"):
        workflow.accept(application, user, application.version_id, 15)


def test_pager_links_a_window_of_pages_not_all_of_them(client, acceptor):
    application = factories.make_submitted_application(
        factories.make_unit("500112"), items=150, photos=False
    )
    html = client.get(pager_url(application, page=8, size=10)).get_data(as_text=True)
    links = set(re.findall(r"href=\"[^\"]*audit\?page=(\d+)&amp;size=10", html))
    assert links == {"1", "2", "4", "5", "6", "7", "9", "10", "11", "12", "14", "15"}
    assert 'name="page"' in html and "跳至" in html
