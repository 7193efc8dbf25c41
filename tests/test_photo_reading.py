"""机器预读 (issue 21): Tesseract reads the photos; the clerk and the applicant see the hints.

Real Tesseract on small synthetic photos drawn with Pillow and Noto CJK
(regbackoffice.sample_photos), a handful per test: each reading takes about a second.
"""

import io
import re

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select

from regbackoffice import jobs, photo_reading, photos, prereading, sample_photos
from regbackoffice.extensions import db
from regbackoffice.models import (
    ApplicationItem,
    Attachment,
    AttachmentKind,
    AuditVerdict,
    PhotoReading,
    ReadingVerdict,
    Role,
    User,
)

from . import factories
from .conftest import post_form

CERT = AttachmentKind.SUPERVISION_CERTIFICATE
STAMP = AttachmentKind.STAMP
MAKER = "重庆示例气瓶制造有限公司"


def row(product_no: str) -> photo_reading.Row:
    return photo_reading.Row(product_no, MAKER, "2023-06")


def test_clear_certificate_reads_consistent_with_its_maker_and_date():
    photo = sample_photos.certificate("CQ23060117", MAKER, "2023-06")
    reading = photo_reading.read_photo(CERT, photo, row("CQ23060117"))
    assert reading.verdict is ReadingVerdict.MATCH
    assert reading.product_no == "CQ23060117"
    assert reading.manufacturer == MAKER
    assert reading.manufacture_month == "2023-06"


def test_certificate_with_another_number_reads_inconsistent_and_keeps_both_numbers():
    photo = sample_photos.certificate("CQ23060118", MAKER, "2023-06")
    reading = photo_reading.read_photo(CERT, photo, row("CQ23060117"))
    assert reading.verdict is ReadingVerdict.MISMATCH
    assert reading.product_no == "CQ23060118"
    assert "CQ23060118" in reading.note and "CQ23060117" in reading.note


def test_unreadable_photo_is_unrecognised_never_consistent():
    for kind in (CERT, STAMP):
        reading = photo_reading.read_photo(kind, sample_photos.unreadable(), row("CQ23060117"))
        assert reading.verdict is ReadingVerdict.UNREAD


def test_deep_clear_stamp_reads_consistent_but_a_one_digit_difference_is_no_evidence():
    right = sample_photos.stamp("CN23061234", depth=1.9)
    assert photo_reading.read_photo(STAMP, right, row("CN23061234")).verdict is (
        ReadingVerdict.MATCH
    )
    # Struck digits are misread consistently, so a differing stamp read is no evidence.
    other = sample_photos.stamp("CN23061284", depth=1.9)
    assert photo_reading.read_photo(STAMP, other, row("CN23061234")).verdict is (
        ReadingVerdict.UNREAD
    )


def test_a_stamp_reads_inconsistent_only_when_two_preprocessings_agree_on_a_far_number():
    def stamp(*reads: tuple[str, int, str]) -> photo_reading.Read | None:
        found = [photo_reading.Read(text, conf, how) for text, conf, how in reads]
        return photo_reading._stamp_mismatch("CN23061234", found)

    # Two digits swapped, read the same by two preprocessings, both confident: 不一致.
    swapped = stamp(("CN23062134", 85, "0° blur"), ("CN23062134", 82, "0° thicken"))
    assert swapped is not None and swapped.text == "CN23062134" and swapped.conf == 85
    # One digit off (how struck digits are misread, consistently): nothing.
    assert stamp(("CN23061284", 90, "0° blur"), ("CN23061284", 88, "0° thicken")) is None
    # The same preprocessing twice (two angles), or one read not confident enough: nothing.
    assert stamp(("CN23062134", 90, "0° blur"), ("CN23062134", 90, "4° blur")) is None
    assert stamp(("CN23062134", 90, "0° blur"), ("CN23062134", 79, "0° thicken")) is None
    # Any read of the row's own number: nothing.
    assert (
        stamp(
            ("CN23062134", 90, "0° blur"),
            ("CN23062134", 90, "0° thicken"),
            ("CN23061234", 10, "0° stretch"),
        )
        is None
    )


def test_a_single_low_confidence_read_of_the_number_is_not_enough_for_consistent():
    reads = [photo_reading.Read("CQ23060117", 70, "blur")]
    verdict, _ = photo_reading._number_verdict("CQ23060117", reads)
    assert verdict is ReadingVerdict.UNREAD
    twice = [*reads, photo_reading.Read("CQ23060117", 60, "thicken")]
    assert photo_reading._number_verdict("CQ23060117", twice)[0] is ReadingVerdict.MATCH


# ----------------------------------------------------------------------------- the job


def _application_with_photos(numbers_shown: list[str]):
    """A draft whose cylinders CQ…01, CQ…02, … each have one certificate photo showing the
    given number ("" = an unreadable photo)."""
    application = factories.make_application()
    applicant = db.session.get(User, application.created_by_id)
    items = []
    for index, shown in enumerate(numbers_shown, start=1):
        item = factories.make_item(application, product_no=f"CQ2306{index:04d}", manufacturer=MAKER)
        data = sample_photos.certificate(shown, MAKER, item.manufacture_month) if shown else None
        photos.add_photo(
            item, CERT, data or sample_photos.unreadable(), filename="c.jpg", actor=applicant
        )
        items.append(item)
    db.session.commit()
    return application, applicant, items


def test_reading_job_rerun_skips_photos_already_read_and_reads_a_replaced_one(redis_conn):
    application, applicant, items = _application_with_photos(["CQ23060001", "CQ23060002"])
    # The photo changes queued one job for the draft (once per transaction), low priority.
    low = Queue(jobs.low_queue_name("regbackoffice"), connection=redis_conn)
    assert low.count == 1
    assert prereading.read_photos_job(application.id) == "read 2, skipped 0"
    assert prereading.read_photos_job(application.id) == "read 0, skipped 2"
    second = db.session.scalar(select(Attachment).where(Attachment.item_id == items[1].id))
    reading = db.session.scalar(select(PhotoReading).where(PhotoReading.attachment_id == second.id))
    assert reading.verdict is ReadingVerdict.MATCH
    first_read_at = reading.read_at
    photos.replace_photo(
        second, sample_photos.certificate("CQ23069999", MAKER), filename="c2.jpg", actor=applicant
    )
    db.session.commit()
    assert prereading.read_photos_job(application.id) == "read 1, skipped 1"
    db.session.refresh(reading)
    assert reading.verdict is ReadingVerdict.MISMATCH and reading.read_at > first_read_at


def test_submission_queues_the_reading_on_the_low_priority_queue(app, redis_conn):
    from regbackoffice import applications as domain

    draft = factories.make_application()
    item = factories.make_item(draft)
    applicant = db.session.get(User, draft.created_by_id)
    factories.make_photo(item, STAMP)
    factories.make_photo(item, CERT)
    domain.submit_application(draft, applicant, 5, draft.version_id)
    db.session.commit()
    low = Queue(jobs.low_queue_name(app.config["RQ_QUEUE"]), connection=redis_conn)
    main = Queue(app.config["RQ_QUEUE"], connection=redis_conn)
    assert [jobs.name_of(j) for j in low.jobs] == [prereading.READ_JOB]
    assert low.jobs[0].args[1:] == (draft.id,)
    assert prereading.READ_JOB not in [jobs.name_of(j) for j in main.jobs]


def test_machine_never_marks_a_cylinder_wrong():
    application, _, items = _application_with_photos(["CQ23069999"])
    prereading.read_photos_job(application.id)
    db.session.refresh(items[0])
    assert items[0].audit_verdict is AuditVerdict.PENDING


# ----------------------------------------------------------------------------- the audit


@pytest.fixture
def read_application():
    """Three cylinders: 一致 (row 1), 不一致 (row 2), 未识别 (row 3), read and submitted."""
    from regbackoffice import workflow

    application, applicant, items = _application_with_photos(["CQ23060001", "CQ23060099", ""])
    prereading.read_photos_job(application.id)
    for item in items:
        factories.make_photo(item, STAMP)  # 待预读: a stamp the reader has not seen
    workflow.submit(application, applicant, application.version_id, 5)
    db.session.commit()
    return application


def _cards(html: str) -> list[str]:
    return re.findall(r"#\d+ 产品编号 (CQ\d+)", html)


def test_audit_shows_badges_counts_and_filters_and_orders_by_machine_verdict(
    client, login_as, read_application
):
    login_as(Role.ACCEPTOR, district_code=read_application.district_code)
    url = f"/bureau/applications/{read_application.id}/audit"
    html = client.get(url).get_data(as_text=True)
    assert "机器预读：一致 1，不一致 1，未识别 1" in html
    assert "3张照片待预读" in html
    assert html.count('data-ocr="match"') == 1
    assert html.count('data-ocr="mismatch"') == 1
    assert html.count('data-ocr="unread"') == 1
    assert "照片中编号读作CQ23060099，表中为CQ23060002" in html
    assert _cards(html) == ["CQ23060001", "CQ23060002", "CQ23060003"]

    ordered = client.get(f"{url}?order=machine").get_data(as_text=True)
    assert _cards(ordered) == ["CQ23060002", "CQ23060003", "CQ23060001"]
    assert 'name="order" value="machine"' in ordered  # kept by the pager's own forms

    only = client.get(f"{url}?machine=mismatch").get_data(as_text=True)
    assert _cards(only) == ["CQ23060002"]
    assert _cards(client.get(f"{url}?machine=match").get_data(as_text=True)) == ["CQ23060001"]


def test_the_stamp_reader_shows_each_photos_reading_and_can_put_doubtful_cylinders_first(
    client, login_as, read_application
):
    login_as(Role.ACCEPTOR, district_code=read_application.district_code)
    base = f"/bureau/applications/{read_application.id}/audit"
    html = client.get(f"{base}/read").get_data(as_text=True)
    assert "机器预读：一致 1，不一致 1，未识别 1" in html
    assert "不一致优先，其次未识别" in html

    def window(query: str = "") -> list[tuple[str, list]]:
        data = client.get(f"{base}/cylinders?offset=0{query}").get_json()
        return [
            (item["product_no"], [p["machine"] and p["machine"]["verdict"] for p in item["photos"]])
            for item in data["items"]
        ]

    by_row = window()
    assert [no for no, _ in by_row] == ["CQ23060001", "CQ23060002", "CQ23060003"]
    assert "match" in by_row[0][1] and "mismatch" in by_row[1][1] and "unread" in by_row[2][1]
    assert [no for no, _ in window("&order=machine")] == ["CQ23060002", "CQ23060003", "CQ23060001"]
    ordered = client.get(f"{base}/read?order=machine").get_data(as_text=True)
    assert "order=machine" in ordered and "按行号顺序" in ordered


def upload_certificate(client, login_as, shown: str):
    """An applicant's draft cylinder CQ23060001 given a 监检证书 photo showing ``shown``."""
    applicant = login_as(Role.APPLICANT)
    application = factories.make_application(applicant.unit, created_by=applicant)
    item = factories.make_item(application, product_no="CQ23060001", manufacturer=MAKER)
    db.session.commit()
    url = f"/applications/{application.id}/items/{item.id}/photos"
    photo = sample_photos.certificate(shown, MAKER, item.manufacture_month)
    response = post_form(
        client,
        url,
        {"kind": CERT.value, "file": (io.BytesIO(photo), "c.jpg")},
        page=url,
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    return application, item, url


def test_applicant_sees_the_warning_on_the_photo_page_before_submitting(
    app, client, login_as, redis_conn
):
    application, item, url = upload_certificate(client, login_as, "CQ23060071")
    assert "请核对" not in client.get(url).get_data(as_text=True)  # not read yet
    low = Queue(jobs.low_queue_name(app.config["RQ_QUEUE"]), connection=redis_conn)
    assert low.count == 1
    SimpleWorker([low], connection=redis_conn).work(burst=True)
    html = client.get(url).get_data(as_text=True)
    assert prereading.APPLICANT_WARNING in html
    assert "CQ23060071" in html
    listing = client.get(f"/applications/{application.id}").get_data(as_text=True)
    assert "照片待核对" in listing  # the cylinder list points at the photo page
    db.session.refresh(item)
    assert (
        db.session.scalar(
            select(ApplicationItem.audit_verdict).where(ApplicationItem.id == item.id)
        )
        is AuditVerdict.PENDING
    )


def test_applicant_sees_that_reading_is_pending_until_the_photos_are_read(
    app, client, login_as, redis_conn
):
    application, _item, url = upload_certificate(client, login_as, "CQ23060001")
    listing_url = f"/applications/{application.id}"
    assert prereading.PENDING_NOTICE in client.get(url).get_data(as_text=True)
    listing = client.get(listing_url).get_data(as_text=True)
    assert f"{prereading.PENDING_NOTICE}（1 张照片待预读）" in listing
    assert "data-ocr-pending" in listing  # the cylinder's own row says so too

    low = Queue(jobs.low_queue_name(app.config["RQ_QUEUE"]), connection=redis_conn)
    SimpleWorker([low], connection=redis_conn).work(burst=True)
    html = client.get(url).get_data(as_text=True)
    assert prereading.PENDING_NOTICE not in html
    assert "机器预读：编号一致" in html
    listing = client.get(listing_url).get_data(as_text=True)
    assert prereading.PENDING_NOTICE not in listing and "data-ocr-pending" not in listing


def test_the_stored_machine_verdict_follows_readings_and_replaced_or_deleted_photos():
    application, applicant, items = _application_with_photos(["CQ23060001", "CQ23060099"])
    waiting = {ReadingVerdict.MATCH: 0, ReadingVerdict.MISMATCH: 0, ReadingVerdict.UNREAD: 2}
    assert prereading.counts(application) == waiting
    assert prereading.unread_photos(application) == 2
    prereading.read_photos_job(application.id)
    assert prereading.counts(application) == {
        ReadingVerdict.MATCH: 1,
        ReadingVerdict.MISMATCH: 1,
        ReadingVerdict.UNREAD: 0,
    }
    assert prereading.unread_photos(application) == 0

    wrong = db.session.scalar(select(Attachment).where(Attachment.item_id == items[1].id))
    photos.replace_photo(
        wrong,
        sample_photos.certificate("CQ23060002", MAKER, items[1].manufacture_month),
        filename="c2.jpg",
        actor=applicant,
    )
    db.session.commit()
    # The old 不一致 was read from the old content: it no longer counts, the new one waits.
    assert prereading.counts(application)[ReadingVerdict.MISMATCH] == 0
    assert prereading.unread_photos(application) == 1
    prereading.read_photos_job(application.id)
    assert prereading.counts(application)[ReadingVerdict.MATCH] == 2

    right = db.session.scalar(select(Attachment).where(Attachment.item_id == items[0].id))
    photos.delete_photo(right, applicant)
    db.session.commit()
    assert prereading.counts(application) == {
        ReadingVerdict.MATCH: 1,
        ReadingVerdict.MISMATCH: 0,
        ReadingVerdict.UNREAD: 1,
    }


def test_machine_first_pages_run_through_each_verdict_in_row_order():
    from regbackoffice import attachment_audit

    application = factories.make_submitted_application(items=23, photos=False)
    items = db.session.scalars(
        select(ApplicationItem)
        .where(ApplicationItem.application_id == application.id)
        .order_by(ApplicationItem.row_no)
    ).all()
    # Stored verdicts as the reader leaves them: 不一致 every 7th, 一致 every 2nd, else 未识别.
    for item in items:
        item.machine_verdict = (
            ReadingVerdict.MISMATCH
            if item.row_no % 7 == 0
            else ReadingVerdict.MATCH
            if item.row_no % 2 == 0
            else ReadingVerdict.UNREAD
        )
    db.session.flush()
    rank = {ReadingVerdict.MISMATCH: 0, ReadingVerdict.UNREAD: 1, ReadingVerdict.MATCH: 2}
    expected = [i.id for i in sorted(items, key=lambda i: (rank[i.machine_verdict], i.row_no))]

    pages = [
        attachment_audit.load_page(application, page, 10, False, machine_first=True)
        for page in (1, 2, 3)
    ]
    assert [i.id for p in pages for i in p.items] == expected
    window, _ = attachment_audit.load_window(application, 8, 5, machine_first=True)
    assert [i.id for i in window] == expected[8:13]
