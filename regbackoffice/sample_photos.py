"""Synthetic cylinder photos drawn with Pillow: the demo's photos, the tests' and the bench's.

No real photos ship with the project, so these stand in for them: a 监检证书 (printed form
with 产品编号, 制造单位, 制造日期) and a 钢印 (digits struck into a grey steel shoulder,
drawn with a light and a dark edge so they look embossed, not printed). ``Distortion``
adds what phone photos suffer: rotation, perspective, blur, glare, low light, JPEG loss.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

BICUBIC = Image.Resampling.BICUBIC

# Noto Sans CJK (Debian fonts-noto-cjk, already an APP_DEB for the certificates); SC face.
CJK_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
CJK_FONT_BOLD = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
_SC_INDEX = 2  # the .ttc's faces: JP, KR, SC, TC, HK


@cache
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(CJK_FONT_BOLD if bold else CJK_FONT, size, index=_SC_INDEX)
    except OSError:  # no CJK font: the drawing still works, the Chinese text does not
        return ImageFont.load_default(size)


@dataclass(frozen=True)
class Distortion:
    rotate: float = 0.0  # degrees, counter-clockwise
    perspective: float = 0.0  # 0..0.15: how far one side shrinks
    blur: float = 0.0  # Gaussian radius in pixels
    glare: float = 0.0  # 0..1: a bright spot's strength
    light: float = 1.0  # brightness factor (0.3 = a dim room)
    quality: int = 85  # JPEG quality
    scale: float = 1.0  # the photo's size relative to the drawing


def certificate(
    product_no: str,
    manufacturer: str = "重庆示例气瓶制造有限公司",
    manufacture_date: str = "2023-06",
    distortion: Distortion | None = None,
    seed: int = 0,
) -> bytes:
    """A 特种设备监督检验证书 photo as JPEG bytes."""
    rng = random.Random(seed)
    image = Image.new("RGB", (1000, 720), (250, 249, 242))
    draw = ImageDraw.Draw(image)
    draw.rectangle((30, 30, 970, 690), outline=(170, 40, 40), width=5)
    draw.text(
        (500, 85), "特种设备监督检验证书", fill=(150, 20, 20), font=font(44, True), anchor="mm"
    )
    draw.text(
        (700, 150),
        f"编号：JJ{rng.randint(2020, 2025)}-{rng.randint(1000, 9999)}",
        fill=(40, 40, 40),
        font=font(22),
    )
    year, month = [*manufacture_date.split("-"), "01"][:2]
    rows = [
        ("设备名称", "无缝气瓶"),
        ("产品编号", product_no),
        ("制造单位", manufacturer),
        ("制造日期", f"{year}年{int(month)}月"),
        ("检验结论", "合格"),
    ]
    for index, (label, value) in enumerate(rows):
        y = 220 + index * 80
        draw.text((90, y), f"{label}：", fill=(30, 30, 30), font=font(32))
        draw.text((280, y), value, fill=(10, 10, 10), font=font(34, label == "产品编号"))
        draw.line((280, y + 46, 900, y + 46), fill=(190, 190, 190), width=2)
    # The inspection body's red seal over the corner, as on the real ones.
    draw.ellipse((720, 520, 900, 680), outline=(200, 40, 40), width=6)
    return _photograph(image, distortion or Distortion(), rng)


def stamp(
    product_no: str, distortion: Distortion | None = None, seed: int = 0, depth: float = 1.0
) -> bytes:
    """A 钢印 photo: the product number struck into a steel shoulder (embossed look).

    ``depth`` scales the strike's shadow and rim (2 = a deep, freshly struck number)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (900, 420), (128, 132, 136))
    # Brushed steel: streaks, then a soft vertical light gradient.
    draw = ImageDraw.Draw(image)
    for _ in range(900):
        y = rng.randint(0, 419)
        shade = rng.randint(105, 160)
        draw.line((0, y, 899, y + rng.randint(-3, 3)), fill=(shade, shade + 3, shade + 6), width=1)
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    draw = ImageDraw.Draw(image)
    face = font(78, True)
    x, y = 70, 150
    # Struck digits: a dark upper-left edge (the cut's shadow), a light lower-right rim.
    dark, light, face_grey = int(66 * depth), int(60 * depth), int(20 * depth)
    draw.text((x - 3, y - 3), product_no, fill=_grey(128 - dark), font=face)
    draw.text((x + 3, y + 3), product_no, fill=_grey(130 + light), font=face)
    draw.text((x, y), product_no, fill=_grey(132 - face_grey), font=face)
    # Pitting and scratches over the strike.
    for _ in range(400):
        px, py = rng.randint(0, 899), rng.randint(0, 419)
        shade = rng.randint(90, 170)
        draw.point((px, py), fill=(shade, shade, shade))
    draw.text((70, 60), "GB/T 5099  WP15", fill=(70, 72, 76), font=font(40, True))
    return _photograph(image, distortion or Distortion(), rng)


def _grey(value: int) -> tuple[int, int, int]:
    value = max(0, min(250, value))
    return (value, value + 3, value + 7)


def unreadable(seed: int = 0) -> bytes:
    """A photo with no legible text (noise and shapes): a blurred, dark snapshot."""
    rng = random.Random(seed)
    image = Image.new("RGB", (640, 480), (60, 60, 60))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randint(0, 640), rng.randint(0, 480)
        shade = rng.randint(30, 120)
        draw.ellipse((x, y, x + rng.randint(10, 90), y + rng.randint(10, 90)), fill=(shade,) * 3)
    return _photograph(image, Distortion(blur=6, light=0.6), rng)


def _photograph(image: Image.Image, d: Distortion, rng: random.Random) -> bytes:
    """What the phone makes of the drawing."""
    if d.perspective:
        image = _perspective(image, d.perspective)
    if d.rotate:
        image = image.rotate(d.rotate, expand=True, fillcolor=(95, 90, 85), resample=BICUBIC)
    if d.glare:
        image = _glare(image, d.glare, rng)
    if d.light != 1.0:
        image = ImageEnhance.Brightness(image).enhance(d.light)
    if d.blur:
        image = image.filter(ImageFilter.GaussianBlur(d.blur))
    if d.scale != 1.0:
        size = (max(1, int(image.width * d.scale)), max(1, int(image.height * d.scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=d.quality)
    return out.getvalue()


def _perspective(image: Image.Image, strength: float) -> Image.Image:
    """The right side farther from the lens than the left."""
    w, h = image.size
    shrink = h * strength
    # QUAD maps the output rectangle from this quadrilateral of the input (UL, LL, LR, UR).
    quad = (0, 0, 0, h, w, h + shrink, w, -shrink)
    return image.transform(
        (w, h),
        Image.Transform.QUAD,
        quad,
        resample=BICUBIC,
        fillcolor=(95, 90, 85),
    )


def _glare(image: Image.Image, strength: float, rng: random.Random) -> Image.Image:
    w, h = image.size
    mask = Image.new("L", (w, h), 0)
    cx, cy = rng.randint(w // 4, 3 * w // 4), rng.randint(h // 4, 3 * h // 4)
    r = min(w, h) // 4
    ImageDraw.Draw(mask).ellipse((cx - r, cy - r, cx + r, cy + r), fill=int(255 * strength))
    mask = mask.filter(ImageFilter.GaussianBlur(r / 2))
    white = Image.new("RGB", (w, h), (255, 255, 255))
    return Image.composite(white, image, mask)
