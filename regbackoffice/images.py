"""Checking and normalising uploaded photos (钢印, 监检证书, tag-binding stamp photos).

Content is sniffed (the name and declared type are ignored): JPEG and PNG only, at most
10 MB and 40 megapixels. The EXIF orientation is applied, then the image is re-encoded
without any metadata, and a thumbnail (≤ 480 px) is made. The sha256 is of the stored file.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from .domain_errors import DomainError

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
THUMBNAIL_SIZE = 480
# Sizes made for how photos are drawn (longest side, JPEG quality): "small" for the 40–96 px
# thumbnails of the lists; in the 逐只审核 mode "view" for the stamp (drawn ≤ 640 px wide on a
# 1366 px screen, enough to read the 产品编号; the lightbox has the full photo) and "side" for
# the 监检证书 beside it (≈ 320 px). Made from the stored photo on first use and kept under a
# key named by its sha256 (see ``photo_files``).
VARIANT_SIZES: dict[str, tuple[int, int]] = {
    "small": (240, 70),
    "side": (360, 55),
    "view": (640, 50),
}

_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png"}


class ImageRejected(DomainError):
    """The upload is not an acceptable photo; the message says why (Chinese)."""


@dataclass(frozen=True)
class NormalisedImage:
    data: bytes
    thumbnail: bytes
    format: str  # "JPEG" or "PNG"
    width: int
    height: int
    sha256: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.format]


def sniff_format(data: bytes) -> str | None:
    for signature, fmt in _SIGNATURES.items():
        if data.startswith(signature):
            return fmt
    return None


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=85, optimize=True)
    else:
        image.save(out, "PNG", optimize=False)
    return out.getvalue()


def resize_variant(data: bytes, variant: str) -> bytes:
    """A smaller JPEG of an already-normalised photo, for drawing at ``variant``'s size."""
    longest, quality = VARIANT_SIZES[variant]
    with Image.open(io.BytesIO(data)) as source:
        # A JPEG decodes straight at 1/2, 1/4 or 1/8 scale (never below the size asked).
        source.draft("RGB", (longest, longest))
        image = source.convert("RGB") if source.mode not in ("RGB", "L") else source.copy()
    image.thumbnail((longest, longest))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    return out.getvalue()


_INCOMPLETE = "{label}不完整（文件在拍摄、拷贝或上传时被截断），请重新上传完整的照片"


def normalise_image(data: bytes, *, name: str = "") -> NormalisedImage:
    """Validate and re-encode one upload; raises ImageRejected with the reason."""
    label = f"“{name}”" if name else "图片"
    if len(data) > MAX_BYTES:
        raise ImageRejected(f"{label}超过10MB（{len(data) / 1024 / 1024:.1f}MB），请压缩后上传")
    if not data:
        raise ImageRejected(f"{label}是空文件")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected(f"{label}不是JPEG或PNG图片（按文件内容识别，与扩展名无关）")
    if fmt == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise ImageRejected(_INCOMPLETE.format(label=label))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format != fmt:
                    raise ImageRejected(f"{label}的内容与图片格式不符")
                width, height = probe.size
                if width * height > MAX_PIXELS:
                    raise ImageRejected(f"{label}像素过多（{width}×{height}），不得超过4000万像素")
                probe.load()
                image = ImageOps.exif_transpose(probe)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"{label}像素过多，不得超过4000万像素") from exc
    except ImageRejected:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc):
            raise ImageRejected(_INCOMPLETE.format(label=label)) from exc
        raise ImageRejected(f"{label}已损坏或无法识别，请重新拍摄上传") from exc

    # Re-encoding from pixels drops EXIF, ICC, text chunks and anything hidden after them.
    image.info.clear()
    stored = _encode(image, fmt)
    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return NormalisedImage(
        data=stored,
        thumbnail=_encode(thumb, "JPEG"),
        format=fmt,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(stored).hexdigest(),
    )
