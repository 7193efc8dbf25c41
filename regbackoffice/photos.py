"""Cylinder photos (钢印, 监检证书): 2–4 per cylinder, one at a time or in a .zip.

Every image goes through ``images.normalise_image`` (sniffed JPEG/PNG, ≤ 10 MB, ≤ 40 MP,
EXIF orientation applied then stripped, re-encoded, thumbnail) and is stored under a
generated key; nothing is stored for a refused file. Views serve them after an access check.

Bulk upload naming (documented on the page): ``<产品编号>_<钢印|监检证书>[_序号].jpg``, e.g.
``123210000001_钢印.jpg``, ``123210000001_监检证书_2.png``; folders inside the zip are ignored.
"""

from __future__ import annotations

import contextlib
import io
import re
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass

from sqlalchemy import func, select

from . import audit, corrections, photo_files, prereading, storage
from .domain_errors import DomainError
from .extensions import db
from .identity import normalize_text
from .images import MAX_BYTES, ImageRejected, NormalisedImage, normalise_image
from .models import (
    EDITABLE_STATUSES,
    Application,
    ApplicationItem,
    Attachment,
    AttachmentKind,
    User,
)

MAX_PHOTOS = 4
MAX_ZIP_BYTES = 60 * 1024 * 1024
MAX_ZIP_ENTRIES = 2000
MAX_ZIP_TOTAL = 800 * 1024 * 1024
# Photos barely compress; a member expanding more than this is a bomb.
MAX_MEMBER_RATIO = 50

KIND_WORDS: dict[str, AttachmentKind] = {
    "钢印": AttachmentKind.STAMP,
    "产品编码": AttachmentKind.STAMP,
    "镂空码": AttachmentKind.STAMP,
    "STAMP": AttachmentKind.STAMP,
    "监检证书": AttachmentKind.SUPERVISION_CERTIFICATE,
    "监检": AttachmentKind.SUPERVISION_CERTIFICATE,
    "CERT": AttachmentKind.SUPERVISION_CERTIFICATE,
}
_NAME = re.compile(r"^(?P<product>.+?)[_\-](?P<kind>[^_\-]+?)(?:[_\-]\d{1,2})?\.(jpe?g|png)$", re.I)


class PhotoError(DomainError):
    """A refused photo operation; the message (Chinese) says why."""


def _require_draft(application: Application) -> None:
    """A draft, or 待补正 (the photos of an application returned for correction)."""
    if application.status not in EDITABLE_STATUSES:
        raise PhotoError(f"申请当前状态为“{application.status.label}”，照片不能再修改")
    corrections.require_cylinder_edits(application, PhotoError)


def _store(image: NormalisedImage) -> tuple[str, str]:
    storage_key = storage.new_key("photos", image.suffix)
    thumbnail_key = storage.new_key("thumbs", ".jpg")
    storage.save_in_transaction(storage_key, image.data)
    storage.save_in_transaction(thumbnail_key, image.thumbnail)
    return storage_key, thumbnail_key


def _count(item: ApplicationItem) -> int:
    return db.session.scalars(
        select(func.count()).select_from(Attachment).where(Attachment.item_id == item.id)
    ).one()


def add_photo(
    item: ApplicationItem,
    kind: AttachmentKind,
    data: bytes,
    *,
    filename: str,
    actor: User,
    warm: bool = True,
) -> Attachment:
    """Check, normalise and store one photo of ``item`` (raises PhotoError/ImageRejected)."""
    _require_draft(item.application)
    if _count(item) >= MAX_PHOTOS:
        raise PhotoError(f"气瓶{item.product_no}已有{MAX_PHOTOS}张照片，请先删除或替换")
    image = normalise_image(data, name=filename)
    return _add_normalised(item, kind, image, filename=filename, actor=actor, warm=warm)


def _add_normalised(
    item: ApplicationItem,
    kind: AttachmentKind,
    image: NormalisedImage,
    *,
    filename: str,
    actor: User,
    warm: bool,
) -> Attachment:
    storage_key, thumbnail_key = _store(image)
    attachment = Attachment(
        item_id=item.id,
        kind=kind,
        storage_key=storage_key,
        thumbnail_key=thumbnail_key,
        sha256=image.sha256,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        size_bytes=len(image.data),
        original_name=filename[:255],
        uploaded_by_id=actor.id,
    )
    db.session.add(attachment)
    item.attachment_count += 1
    corrections.note_change(item, "photos")
    audit.record(
        "photo_added",
        object_type="application",
        object_id=item.application_id,
        actor=actor,
        product_no=item.product_no,
        kind=kind.value,
        sha256=image.sha256,
    )
    db.session.flush()
    prereading.refresh_verdicts(item_ids=[item.id])  # one more photo waits for the reader
    if warm:  # a bulk upload queues one job for all its photos
        photo_files.warm_after_commit([attachment.id])
    prereading.enqueue_after_commit(item.application_id)  # the applicant's warnings
    return attachment


def replace_photo(
    attachment: Attachment,
    data: bytes,
    *,
    filename: str,
    actor: User,
    kind: AttachmentKind | None = None,
) -> None:
    """Swap the image of ``attachment``; the old files are deleted after the commit."""
    item = attachment.item
    _require_draft(item.application)
    image = normalise_image(data, name=filename)
    old = [attachment.storage_key, attachment.thumbnail_key]
    attachment.storage_key, attachment.thumbnail_key = _store(image)
    attachment.sha256 = image.sha256
    attachment.content_type = image.content_type
    attachment.width, attachment.height = image.width, image.height
    attachment.size_bytes = len(image.data)
    attachment.original_name = filename[:255]
    attachment.uploaded_by_id = actor.id
    if kind is not None:
        attachment.kind = kind
    corrections.note_change(item, "photos")
    audit.record(
        "photo_replaced",
        object_type="application",
        object_id=item.application_id,
        actor=actor,
        product_no=item.product_no,
        kind=attachment.kind.value,
        sha256=image.sha256,
    )
    db.session.flush()
    prereading.refresh_verdicts(item_ids=[item.id])  # the old content's reading counts no more
    storage.delete_after_commit(old)
    photo_files.warm_after_commit([attachment.id])
    prereading.enqueue_after_commit(item.application_id)


def delete_photo(attachment: Attachment, actor: User) -> None:
    """Delete one photo of a draft (its files go after the commit)."""
    item = attachment.item
    _require_draft(item.application)
    keys = [attachment.storage_key, attachment.thumbnail_key]
    audit.record(
        "photo_deleted",
        object_type="application",
        object_id=item.application_id,
        actor=actor,
        product_no=item.product_no,
        kind=attachment.kind.value,
    )
    db.session.delete(attachment)
    item.attachment_count -= 1
    corrections.note_change(item, "photos")
    db.session.flush()
    prereading.refresh_verdicts(item_ids=[item.id])  # its reading went with it
    storage.delete_after_commit(keys)


# ----------------------------------------------------------------------------- bulk upload


@dataclass(frozen=True)
class FileResult:
    name: str
    ok: bool
    message: str
    product_no: str = ""


def _member_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:  # not flagged UTF-8: Windows zips use GBK names
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            name = name.encode("cp437").decode("gbk")
    return unicodedata.normalize("NFKC", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()


def parse_photo_name(name: str) -> tuple[str, AttachmentKind] | None:
    match = _NAME.match(name)
    if not match:
        return None
    kind = KIND_WORDS.get(match.group("kind").upper())
    if kind is None:
        return None
    return normalize_text(match.group("product")), kind


def _open_zip(data: bytes) -> list[zipfile.ZipInfo]:
    if len(data) > MAX_ZIP_BYTES:
        raise PhotoError(
            f"压缩包过大（{len(data) / 1024 / 1024:.1f}MB），不能超过"
            f"{MAX_ZIP_BYTES // 1024 // 1024}MB，请分批上传"
        )
    if not data.startswith(b"PK\x03\x04") or not zipfile.is_zipfile(io.BytesIO(data)):
        raise PhotoError("只能上传.zip压缩包")
    try:
        entries = [e for e in zipfile.ZipFile(io.BytesIO(data)).infolist() if not e.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise PhotoError("压缩包已损坏，无法读取") from exc
    if len(entries) > MAX_ZIP_ENTRIES:
        raise PhotoError(f"压缩包内文件过多（{len(entries)}个），一次最多{MAX_ZIP_ENTRIES}个")
    if sum(e.file_size for e in entries) > MAX_ZIP_TOTAL:
        raise PhotoError("压缩包解压后过大，疑似压缩炸弹，已拒绝")
    for entry in entries:
        if entry.file_size > 1024 * 1024 and entry.file_size > MAX_MEMBER_RATIO * max(
            entry.compress_size, 1
        ):
            raise PhotoError(f"压缩包中“{_member_name(entry)}”压缩比异常，疑似压缩炸弹，已拒绝")
    return entries


def _read_member(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bytes:
    """At most MAX_BYTES + 1 bytes: the directory's declared size can lie."""
    with archive.open(entry) as member:
        data = member.read(MAX_BYTES + 1)
    if len(data) > 1024 * 1024 and len(data) > MAX_MEMBER_RATIO * max(entry.compress_size, 1):
        raise PhotoError("该文件压缩比异常，疑似压缩炸弹，已跳过")
    return data


def _items_by_product(application: Application) -> dict[str, list[ApplicationItem]]:
    found: dict[str, list[ApplicationItem]] = {}
    for item in db.session.scalars(
        select(ApplicationItem).where(ApplicationItem.application_id == application.id)
    ):
        found.setdefault(normalize_text(item.product_no), []).append(item)
    return found


_BAD_NAME = "文件名不符合“产品编号_钢印.jpg”或“产品编号_监检证书.jpg”"


def _target(
    items_by_product: dict[str, list[ApplicationItem]], name: str
) -> tuple[ApplicationItem, AttachmentKind, str] | FileResult:
    """The cylinder and kind a file's name points at, or the refusal (the zip's rule)."""
    parsed = parse_photo_name(name)
    if parsed is None:
        return FileResult(name, False, _BAD_NAME)
    product_no, kind = parsed
    candidates = items_by_product.get(product_no, [])
    if not candidates:
        return FileResult(name, False, f"本申请中没有产品编号为{product_no}的气瓶", product_no)
    if len(candidates) > 1:
        return FileResult(
            name,
            False,
            f"本申请中有{len(candidates)}只产品编号为{product_no}的气瓶，请逐只上传",
            product_no,
        )
    return candidates[0], kind, product_no


def _place(
    item: ApplicationItem, kind: AttachmentKind, data: bytes, name: str, actor: User
) -> tuple[FileResult, Attachment | None]:
    """Store one named photo; the same photo sent again (a resumed upload) is not stored twice."""
    image = normalise_image(data, name=name)
    same = db.session.scalar(
        select(Attachment).where(Attachment.item_id == item.id, Attachment.sha256 == image.sha256)
    )
    if same is not None:
        return FileResult(
            name, True, f"该照片已上传（{same.kind.label}），未重复保存", item.product_no
        ), None
    _require_draft(item.application)
    if _count(item) >= MAX_PHOTOS:
        raise PhotoError(f"气瓶{item.product_no}已有{MAX_PHOTOS}张照片，请先删除或替换")
    attachment = _add_normalised(item, kind, image, filename=name, actor=actor, warm=False)
    return FileResult(name, True, f"已上传为{attachment.kind.label}", item.product_no), attachment


def upload_named_photo(application: Application, name: str, data: bytes, actor: User) -> FileResult:
    """One photo named by the zip's rule (产品编号_钢印.jpg), sent on its own (多选/拖放上传).

    Refusals come back as a failed result (the page goes on with the next file); only a
    non-draft application raises PhotoError.
    """
    _require_draft(application)
    name = unicodedata.normalize("NFKC", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    target = _target(_items_by_product(application), name)
    if isinstance(target, FileResult):
        return target
    item, kind, product_no = target
    try:
        result, attachment = _place(item, kind, data, name, actor)
    except (ImageRejected, PhotoError) as exc:
        return FileResult(name, False, str(exc), product_no)
    if attachment is not None:
        photo_files.warm_after_commit([attachment.id])
    return result


def bulk_upload(application: Application, data: bytes, actor: User) -> list[FileResult]:
    """Add the photos of a .zip to the cylinders they name; one result per file.

    A refused zip (bomb, too big, not a zip) raises PhotoError and stores nothing.
    """
    _require_draft(application)
    entries = _open_zip(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    items_by_product = _items_by_product(application)
    results: list[FileResult] = []
    stored_ids: list[int] = []
    for entry in sorted(entries, key=lambda e: e.filename):
        name = _member_name(entry)
        if name.startswith(".") or entry.filename.startswith("__MACOSX/"):
            continue
        target = _target(items_by_product, name)
        if isinstance(target, FileResult):
            results.append(target)
            continue
        item, kind, product_no = target
        try:
            content = _read_member(archive, entry)
            result, attachment = _place(item, kind, content, name, actor)
        except (ImageRejected, PhotoError) as exc:
            results.append(FileResult(name, False, str(exc), product_no))
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
            results.append(FileResult(name, False, "压缩包中该文件已损坏，无法读取", product_no))
        except NotImplementedError:  # zipfile: a compression method it cannot read
            message = "该文件的压缩方式无法读取，请用常见的压缩工具（zip）重新压缩"
            results.append(FileResult(name, False, message, product_no))
        except RuntimeError:  # zipfile: the member is encrypted
            results.append(FileResult(name, False, "该文件已加密，无法读取", product_no))
        else:
            results.append(result)
            if attachment is not None:
                stored_ids.append(attachment.id)
    audit.record(
        "photos_bulk_uploaded",
        object_type="application",
        object_id=application.id,
        actor=actor,
        files=len(results),
        stored=sum(1 for r in results if r.ok),
    )
    photo_files.warm_after_commit(stored_ids)
    return results
