"""Serving cylinder photos at the size they are drawn, cacheable by the clerk's browser.

Each photo is stored once (``full``) with its 480 px ``thumb``; smaller or reading-size
variants (``images.VARIANT_SIZES``) are made by the worker after the upload (job
``photo_variants``), or on first view when there is none (the demo, photos stored before),
and kept under a key derived from the sha256, so a replaced photo gets new files and URLs.
URLs carry the sha256 (``?v=``): the browser may keep such a response (``private``, a year),
while a URL without it is revalidated by ETag every time. The access check runs on every
request that reaches the server (a cached response never crosses users: logout clears it).
"""

from __future__ import annotations

from flask import url_for
from sqlalchemy import select

from . import jobs, storage
from .extensions import db
from .images import VARIANT_SIZES, resize_variant
from .models import Attachment

VARIANTS = ("full", "thumb", *VARIANT_SIZES)
CACHE_FOREVER = "private, max-age=31536000, immutable"
REVALIDATE = "private, no-cache"


def version(photo: Attachment) -> str:
    """The part of the URL that changes whenever the photo's content does."""
    return photo.sha256[:16]


def photo_url(photo: Attachment, variant: str) -> str:
    """The photo's content-addressed URL at ``variant`` (a template global)."""
    return url_for("files.attachment", attachment_id=photo.id, variant=variant, v=version(photo))


def photo_alt(photo: Attachment, product_no: str) -> str:
    """Alt text naming the cylinder and the kind: 产品编号 123 的钢印照片."""
    kind = photo.kind.label.split("（", 1)[0]
    return f"产品编号 {product_no} 的{kind}照片" if product_no else f"{kind}照片"


def _variant_key(sha256: str, variant: str) -> str:
    return f"variants/{sha256[:2]}/{sha256}-{variant}.jpg"


def _make(sha256: str, storage_key: str, variant: str) -> str | None:
    """The variant's key, made from the stored photo if missing (None: photo missing)."""
    key = _variant_key(sha256, variant)
    if not storage.exists(key):
        if not storage.exists(storage_key):
            return None
        # A cache, not a row: written outside the transaction, safe to make twice.
        storage.save(key, resize_variant(storage.read(storage_key), variant))
    return key


def variant_bytes(photo: Attachment, variant: str) -> tuple[bytes, str] | None:
    """(content, mimetype) of one variant, or None when the stored photo is missing."""
    if variant == "full":
        key, mimetype = photo.storage_key, photo.content_type
    elif variant == "thumb":
        key, mimetype = photo.thumbnail_key, "image/jpeg"
    else:
        made = _make(photo.sha256, photo.storage_key, variant)
        if made is None:
            return None
        key, mimetype = made, "image/jpeg"
    if not storage.exists(key):
        return None
    return storage.read(key), mimetype


def warm_after_commit(attachment_ids: list[int]) -> None:
    """Have the worker make the sized variants of new photos, once they are committed.

    Without a worker (the demo) nothing is queued: the variants are made on first view, as
    for photos stored before the variants existed.
    """
    if attachment_ids and jobs.queue() is not None:
        jobs.enqueue_after_commit("photo_variants", list(attachment_ids))


@jobs.job("photo_variants")
def make_variants(attachment_ids: list[int]) -> int:
    """Make every sized variant of these photos (safe twice: made ones are skipped)."""
    made = 0
    for photo in db.session.scalars(select(Attachment).where(Attachment.id.in_(attachment_ids))):
        for variant in VARIANT_SIZES:
            if _make(photo.sha256, photo.storage_key, variant) is not None:
                made += 1
    return made
