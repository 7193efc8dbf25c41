from sqlalchemy import func, select

from regbackoffice import applications, demo
from regbackoffice.extensions import db
from regbackoffice.models import Application, ApplicationStatus, Attachment


def test_seed_demo_adds_a_submitted_application_with_photos_per_district_idempotently():
    first = demo.seed_demo("demo-pass-9")
    counts = (
        db.session.scalar(select(func.count()).select_from(Application)),
        db.session.scalar(select(func.count()).select_from(Attachment)),
    )
    again = demo.seed_demo("demo-pass-9")
    assert again["applications"] == first["applications"]
    assert counts == (
        db.session.scalar(select(func.count()).select_from(Application)),
        db.session.scalar(select(func.count()).select_from(Attachment)),
    )
    assert set(first["applications"]) == {"500112", "500105"}
    for code, application_id in first["applications"].items():
        application = db.session.get(Application, application_id)
        assert application.district_code == code
        assert application.status is ApplicationStatus.SUBMITTED
        assert application.item_count == demo.DEMO_APPLICATION_CYLINDERS
        # The photos satisfy the submission rule (2–4, both kinds) for every cylinder.
        application.status = ApplicationStatus.DRAFT
        assert applications.submission_problems(application) == []
        application.status = ApplicationStatus.SUBMITTED
