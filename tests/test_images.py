import hashlib
import io
import struct
import zlib

import pytest
from PIL import Image

from regbackoffice.images import MAX_BYTES, ImageRejected, normalise_image


def jpeg_bytes(size=(40, 20), orientation: int | None = None, color=(200, 10, 10)) -> bytes:
    image = Image.new("RGB", size, color)
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    exif[0x010F] = "SecretCameraMaker"
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims huge dimensions (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_exif_orientation_is_applied_then_all_exif_stripped():
    result = normalise_image(jpeg_bytes((40, 20), orientation=6))
    assert (result.width, result.height) == (20, 40)  # rotated upright
    stored = Image.open(io.BytesIO(result.data))
    assert not stored.getexif()
    assert b"SecretCameraMaker" not in result.data
    assert result.sha256 == hashlib.sha256(result.data).hexdigest()
    assert result.content_type == "image/jpeg"


def test_thumbnail_is_at_most_480_pixels():
    result = normalise_image(jpeg_bytes((2000, 1000)))
    thumb = Image.open(io.BytesIO(result.thumbnail))
    assert max(thumb.size) == 480


def test_png_is_kept_as_png():
    out = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(out, "PNG")
    assert normalise_image(out.getvalue()).format == "PNG"


def test_html_renamed_jpg_is_refused_by_content():
    with pytest.raises(ImageRejected, match="不是JPEG或PNG"):
        normalise_image(b"<html><script>alert(1)</script></html>", name="stamp.jpg")


def test_decompression_bomb_png_is_refused():
    with pytest.raises(ImageRejected, match="像素过多"):
        normalise_image(png_header_only(30000, 30000))


def test_oversize_upload_is_refused_before_decoding():
    with pytest.raises(ImageRejected, match="超过10MB"):
        normalise_image(b"\xff\xd8\xff" + b"\0" * MAX_BYTES)


def test_truncated_jpeg_is_refused_as_incomplete():
    whole = jpeg_bytes()
    for cut in (whole[:100], whole[: len(whole) // 2], whole[:-2]):
        with pytest.raises(ImageRejected, match=r"照片.*不完整"):
            normalise_image(cut, name="照片")


def test_the_size_message_gives_the_files_own_size():
    with pytest.raises(ImageRejected, match=r"超过10MB（12\.6MB）"):
        normalise_image(b"\xff\xd8\xff" + b"\0" * int(12.6 * 1024 * 1024))
