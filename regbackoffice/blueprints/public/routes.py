"""Public pages, no login, rate-limited per address: certificate verification and 追溯信息."""

from __future__ import annotations

from flask import current_app, render_template, request
from sqlalchemy import select

from ... import certificates, documents, trace
from ...clock import china_today
from ...extensions import db, limiter
from ...models import Application, Certificate
from . import bp


def _public_limit() -> str:
    return current_app.config["PUBLIC_RATE_LIMIT"]


# Every page of this blueprint counts against the same per-address limit.
limiter.shared_limit(_public_limit, scope="public")(bp)


@bp.route("/verify/<path:number>")
def verify(number: str) -> tuple[str, int] | str:
    certificate = db.session.scalar(select(Certificate).where(Certificate.number == number[:50]))
    if certificate is None:
        # 受理通知书, 补正告知书 and the decisions carry a QR to here too.
        document = documents.by_number(number[:30])
        if document is not None:
            return render_template(
                "public/verify_document.html",
                document=document,
                application=db.session.get(Application, document.application_id),
            )
        return render_template("public/verify.html", number=number[:50], certificate=None), 404
    application = db.session.get(Application, certificate.application_id)
    assert application is not None
    # A paper of an earlier version carries ?v=N in its QR code (version 1: none).
    asked = request.args.get("v", "")
    version = int(asked) if asked.isdigit() and 0 < int(asked) < 1000 else 1
    versions = {v.version: v for v in certificates.superseded_versions(certificate)}
    superseded = versions.get(version) if version < certificate.version else None
    unit_name = application.unit_name
    if certificate.version > 1:
        unit_name = application.unit.name  # 更名 takes effect on the new version
    return render_template(
        "public/verify.html",
        number=certificate.number,
        certificate=certificate,
        application=application,
        unit_name=unit_name,
        asked_version=version,
        superseded=superseded,
        edition=certificates.edition_label(certificate.version, certificate.reissued),
    )


@bp.route("/trace/<path:info_code>")
def trace_page(info_code: str) -> tuple[str, int] | str:
    cylinder = trace.find_by_info_code(info_code)
    if cylinder is None:
        return render_template("public/trace_missing.html", info_code=info_code[:50]), 404
    return render_template("public/trace.html", **trace.view(cylinder, china_today()))


@bp.route("/trace")
def trace_search() -> tuple[str, int] | str:
    manufacturer = (request.args.get("manufacturer") or "").strip()[:100]
    product_no = (request.args.get("product_no") or "").strip()[:50]
    errors = []
    searched = "manufacturer" in request.args or "product_no" in request.args
    if searched and not manufacturer:
        errors.append("请填写制造单位（与气瓶钢印一致）。")
    if searched and not product_no:
        errors.append("请填写产品编号。")
    month = (request.args.get("month") or "").strip()[:7]
    results = trace.search(manufacturer, product_no, month) if searched and not errors else []
    if len(results) == 1:
        return render_template("public/trace.html", **trace.view(results[0], china_today()))
    page = render_template(
        "public/trace_search.html",
        manufacturer=manufacturer,
        product_no=product_no,
        errors=errors,
        searched=searched and not errors,
        results=results,
    )
    return (page, 404) if searched and not errors and not results else page
