"""信息化标签绑定: binding a QR label or RFID tag to an archive record, with the stamp photo.

The 信息化编码 (``info_code``) returned is ``CQ`` + the tag letter (``Q`` 二维码 / ``R``
RFID标签) + the cylinder's district code (6 digits) + 10 random upper-case hex digits, e.g.
``CQQ500112A1B2C3D4E5`` (19 characters; unique by constraint). Binding the same tag to the
same cylinder again returns the same code; a tag bound to another cylinder, or a cylinder
already bound to another tag, is a conflict. Only the cylinder's own use unit may bind it,
and a 报废 cylinder takes no tag.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from . import audit, storage
from .extensions import db
from .identity import qr_url_error
from .images import normalise_image
from .models import (
    ApiClient,
    Application,
    ApplicationItem,
    Cylinder,
    CylinderStatus,
    TagBinding,
    TagType,
)


class BindRefused(Exception):
    """The binding is refused; ``status`` is the envelope code, ``message`` says why."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass(frozen=True)
class BindResult:
    binding: TagBinding
    created: bool


def tag_digest(tag_type: TagType, value: str) -> str:
    return hashlib.sha256(f"{tag_type.value}:{value}".encode()).hexdigest()


# 一瓶一码 between the two doors a tag comes in by: an application item (import, item form,
# 复制) claims it by the unique ``live_tag_key``, an API binding by the unique
# ``tag_bindings.tag_sha256``; two tables, so neither index sees the other's uncommitted row.
# Each side's look-up of the other therefore runs under a transaction-level advisory lock
# on the tag's bucket: items take it shared (imports never wait for each other; their own
# race is the unique index's), a binding exclusive. Whoever locks second looks after the
# first has committed. Buckets, not one lock per tag: a 10,000-row import would need more
# locks than PostgreSQL's shared lock table holds; it takes at most TAG_LOCK_BUCKETS.
TAG_LOCK_CLASS = 0x5447  # "TG": the first key of pg_advisory_xact_lock(int, int)
TAG_LOCK_BUCKETS = 32


def lock_tags(digests: Iterable[str], *, exclusive: bool) -> None:
    """Take the advisory locks of these tags' buckets until the transaction ends
    (PostgreSQL only: the SQLite demo has one writer at a time)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    buckets = sorted({int(d[:8], 16) % TAG_LOCK_BUCKETS for d in digests})
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    for bucket in buckets:  # in one order everywhere: no deadlock between lockers
        db.session.execute(
            text(f"SELECT {function}(:cls, :bucket)"), {"cls": TAG_LOCK_CLASS, "bucket": bucket}
        )


def lock_all_tags(*, exclusive: bool) -> None:
    """Take every bucket's lock (one statement, in bucket order) until the transaction
    ends: for a large import, whose tags fall in most buckets anyway and are looked up
    chunk by chunk (PostgreSQL only)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    db.session.execute(
        text(
            f"SELECT {function}(:cls, bucket) FROM generate_series(0, :last) AS bucket"
            " ORDER BY bucket"
        ),
        {"cls": TAG_LOCK_CLASS, "last": TAG_LOCK_BUCKETS - 1},
    )


def new_info_code(tag_type: TagType, district_code: str) -> str:
    letter = "Q" if tag_type is TagType.QR else "R"
    return f"CQ{letter}{district_code}{secrets.token_hex(5).upper()}"


def _existing(tag_sha256: str) -> TagBinding | None:
    return db.session.scalar(select(TagBinding).where(TagBinding.tag_sha256 == tag_sha256))


def _answer_existing(binding: TagBinding, cylinder: Cylinder) -> BindResult:
    if binding.cylinder_id != cylinder.id:
        raise BindRefused(409, "该标签已绑定其他气瓶，不能重复绑定")
    return BindResult(binding, created=False)


def bind(
    client: ApiClient, cylinder: Cylinder, tag_type: TagType, value: str, photo: bytes
) -> BindResult:
    """Bind the tag (flushes and audits); raises BindRefused with the envelope code."""
    if cylinder.use_unit_id != client.unit_id:
        raise BindRefused(403, "该气瓶登记在其他使用单位名下，本单位不能绑定其标签")
    if cylinder.status is CylinderStatus.CANCELLED:
        raise BindRefused(409, f"气瓶{cylinder.id}已注销使用登记，不能绑定信息化标签")
    if cylinder.status is CylinderStatus.SCRAPPED:
        raise BindRefused(
            409, f"气瓶{cylinder.id}已报废，不能绑定信息化标签；报废气瓶应办理注销，不得继续使用"
        )
    try:
        image = normalise_image(photo, name="气瓶钢印图片")
    except ValueError as exc:
        raise BindRefused(400, str(exc), field="stamp_photo") from exc
    digest = tag_digest(tag_type, value)
    lock_tags([digest], exclusive=True)  # the live-item look-up below sees every import
    existing = _existing(digest)
    if existing is not None:
        return _answer_existing(existing, cylinder)
    if tag_type is TagType.QR and (error := qr_url_error(value)):
        # The import refuses it too: a QR label encodes the cylinder's URL.
        raise BindRefused(400, error, field="qr_content")
    label = "二维码" if tag_type is TagType.QR else "RFID编码"
    # The tag may be in the archive since registration (二维码登记时将URL作为基础信息导入).
    archive_column = Cylinder.qr_content if tag_type is TagType.QR else Cylinder.rfid_code
    registered_elsewhere = db.session.scalar(
        select(Cylinder.id).where(archive_column == value, Cylinder.id != cylinder.id).limit(1)
    )
    if registered_elsewhere is not None:
        raise BindRefused(409, f"该{label}已登记在其他气瓶的档案中，不能绑定到本气瓶")
    # 一瓶一码 with the applications too: a tag imported for another cylinder that waits for
    # registration (its item claims the tag, ``live_tag_key``) cannot go to this one.
    claimed = db.session.execute(
        select(Application.number, Application.id)
        .join(ApplicationItem, ApplicationItem.application_id == Application.id)
        .where(
            ApplicationItem.live_tag_key == digest,
            ApplicationItem.identity_key != cylinder.identity_key,
        )
        .limit(1)
    ).first()
    if claimed is not None:
        raise BindRefused(
            409,
            f"该{label}已用于申请{claimed[0] or claimed[1]}中的另一只气瓶，"
            "不能绑定到本气瓶：一瓶一码",
        )
    current = db.session.scalar(select(TagBinding).where(TagBinding.cylinder_id == cylinder.id))
    if current is not None:
        # A concurrent request may have bound this very tag since the check above (each
        # statement sees the latest commits): that is the same binding, not another tag.
        if current.tag_sha256 == digest:
            return _answer_existing(current, cylinder)
        raise BindRefused(409, "该气瓶已绑定其他标签；更换标签请联系登记机关")

    key = storage.new_key("stamps", image.suffix)
    binding = TagBinding(
        cylinder_id=cylinder.id,
        tag_type=tag_type,
        tag_value=value,
        tag_sha256=digest,
        info_code=new_info_code(tag_type, cylinder.district_code),
        stamp_photo_key=key,
        stamp_photo_sha256=image.sha256,
        client_id=client.id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(binding)
            db.session.flush()
    except IntegrityError:
        # A concurrent request bound this tag or this cylinder first.
        existing = _existing(digest)
        if existing is not None:
            return _answer_existing(existing, cylinder)
        raise BindRefused(409, "该气瓶已绑定其他标签；更换标签请联系登记机关") from None
    storage.save_in_transaction(key, image.data)
    cylinder.tag_type = tag_type
    cylinder.info_code = binding.info_code
    if tag_type is TagType.QR:
        cylinder.qr_content = value
    else:
        cylinder.rfid_code = value
    db.session.flush()
    audit.record(
        "tag_bound",
        object_type="cylinder",
        object_id=cylinder.id,
        info_code=binding.info_code,
        tag_type=tag_type.value,
    )
    return BindResult(binding, created=True)
