"""Public pages, no login: certificate verification (/verify/<number>)."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import select

from ...extensions import db
from ...models import Application, Certificate
from . import bp


@bp.route("/verify/<path:number>")
def verify(number: str) -> tuple[str, int] | str:
    certificate = db.session.scalar(select(Certificate).where(Certificate.number == number[:50]))
    if certificate is None:
        return render_template("public/verify.html", number=number[:50], certificate=None), 404
    application = db.session.get(Application, certificate.application_id)
    return render_template(
        "public/verify.html",
        number=certificate.number,
        certificate=certificate,
        application=application,
    )
