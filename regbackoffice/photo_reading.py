"""机器预读: Tesseract reads every photo, so the clerk's eye goes where it is needed.

Per photo kind:
- 监检证书 (printed): one chi_sim+eng pass over the grey, contrast-stretched page finds the
  labelled lines 产品编号 / 制造单位 / 制造日期; the 产品编号 line is then cropped and read
  again with eng and an alphanumeric whitelist (a second read), and when that is not yet
  certain, a third time enlarged and sharpened.
- 钢印 (struck into steel, much harder): a few preprocessings (contrast stretch, blur,
  thicken) each read with eng and the whitelist.
The photo is deskewed first (projection profile, ±12°); as taken is tried when the
deskewed one yields nothing.

The verdict against the row is a hint, never a decision (nothing here marks a cylinder
错误). A false 一致 is the dangerous error, so 一致 needs certainty: the row's whole
number read with high confidence, or read twice. 不一致 needs a confident read that
differs (both are kept for the badge); a stamp gives 不一致 only on much stronger evidence
(see read_stamp).
Everything else is 未识别.
"""

from __future__ import annotations

import difflib
import io
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

from PIL import Image, ImageFilter, ImageOps

from .models import AttachmentKind, ReadingVerdict

BICUBIC = Image.Resampling.BICUBIC

# Tesseract 5 starts one OpenMP thread per core per call; the reader runs beside the web
# workers on small machines, so one thread each (pytesseract's subprocess inherits this).
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

READER_VERSION = 2  # bump when preprocessing or rules change: old readings are redone
ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# 一致 from one read needs this word confidence; two agreeing reads need TWICE_MIN each,
# three agreeing reads none.
CERTAIN = 90
TWICE_MIN = 50
# 不一致 needs a differing read at least this confident (or two agreeing differing reads).
CONFIDENT = 80
# A stamp's 不一致 needs the same differing number from two preprocessings, each this
# confident, differing from the row in at least STAMP_MIN_POSITIONS places (see read_stamp).
STAMP_CONFIDENT = 80
STAMP_MIN_POSITIONS = 2
MAX_SIDE = 1600  # phone photos are 4000 px wide; Tesseract needs ~30 px letters, no more
TIMEOUT_SECONDS = 30

_NUMBER_LABEL = re.compile(r"(产品|出厂|气瓶)?编号|编码")
_PRODUCT_LABEL = re.compile(r"(产品|出厂|气瓶)编号")
_MAKER_LABEL = re.compile(r"制造(单位|厂)")
_DATE_LABEL = re.compile(r"制造(日期|年月)")
_YEAR_MONTH = re.compile(r"((?:19|20)\d\d)\s*[年\-./]\s*(\d{1,2})")


@dataclass(frozen=True)
class Word:
    text: str
    conf: int
    line: tuple[int, int, int]  # Tesseract's (block, paragraph, line)
    box: tuple[int, int, int, int]  # left, top, width, height


@dataclass(frozen=True)
class Read:
    """One read of the number: what and how sure (Tesseract's word confidence)."""

    text: str
    conf: int
    how: str  # for the benchmark's error analysis
    # Known to be the product number (a certificate's labelled line, or a stamp's word close
    # to the row's); only such reads can make 不一致 (a certificate has other numbers too).
    anchored: bool = True


@dataclass
class Reading:
    """What the reader made of one photo, against one row."""

    verdict: ReadingVerdict
    product_no: str | None = None  # the number read (the row's when 一致)
    confidence: int = 0
    manufacturer: str | None = None
    manufacture_month: str | None = None
    note: str | None = None
    reads: list[Read] = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    """The row's values the photo is compared with."""

    product_no: str
    manufacturer: str = ""
    manufacture_month: str = ""  # YYYY-MM


def normalise_number(text: str) -> str:
    """Full-width to ASCII, upper case, only letters and digits (spaces, 'No.', dashes go)."""
    text = unicodedata.normalize("NFKC", text).upper()
    return re.sub(r"[^0-9A-Z]", "", text)


def _normalise_name(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s:：,，.。'\"“”()（）\-_|]", "", text)


@cache
def engine_version() -> str:
    """The engine and reader version stored with each reading (a change re-reads)."""
    import pytesseract

    return f"tesseract {pytesseract.get_tesseract_version()} reader {READER_VERSION}"


# ----------------------------------------------------------------------------- Tesseract


def _words(image: Image.Image, lang: str, config: str) -> list[Word]:
    import pytesseract

    try:
        data = pytesseract.image_to_data(
            image,
            lang=lang,
            config=config,
            output_type=pytesseract.Output.DICT,
            timeout=TIMEOUT_SECONDS,
        )
    except RuntimeError:  # pytesseract's timeout: the photo is 未识别, the job goes on
        return []
    words = []
    for i, text in enumerate(data["text"]):
        if text and text.strip():
            words.append(
                Word(
                    text.strip(),
                    int(float(data["conf"][i])),
                    (data["block_num"][i], data["par_num"][i], data["line_num"][i]),
                    (data["left"][i], data["top"][i], data["width"][i], data["height"][i]),
                )
            )
    return words


def _whitelisted(image: Image.Image, psm: int) -> list[Word]:
    return _words(image, "eng", f"--psm {psm} -c tessedit_char_whitelist={ALNUM}")


def _lines(words: list[Word]) -> list[list[Word]]:
    lines: dict[tuple[int, int, int], list[Word]] = {}
    for word in words:
        lines.setdefault(word.line, []).append(word)
    return list(lines.values())


# ----------------------------------------------------------------------------- preprocessing


def _load(data: bytes) -> Image.Image:
    image = ImageOps.grayscale(Image.open(io.BytesIO(data)))
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return ImageOps.autocontrast(image, cutoff=1)


def skew_angle(image: Image.Image) -> int:
    """The rotation (whole degrees, ±12) that levels the photo's text lines.

    Projection profile on a small inverted copy: when the lines are level, the row means
    alternate most between ink and paper (the highest variance). Pillow only: the row means
    are a resize to one pixel wide.
    """
    small = ImageOps.invert(image)
    small.thumbnail((400, 400))
    w, h = small.size
    best, best_score = 0, -1.0
    for angle in range(-12, 13):
        # Only the middle: the photo's own edges and the background would dominate.
        middle = (w // 5, h // 5, w - w // 5, h - h // 5)
        turned = small.rotate(angle, resample=BICUBIC).crop(middle)
        rows = turned.resize((1, turned.height), Image.Resampling.BOX).tobytes()
        mean = sum(rows) / len(rows)
        score = sum((v - mean) ** 2 for v in rows)
        if score > best_score * 1.02:  # prefer the smaller angle on a near tie
            best, best_score = angle, score
    return best


def _rotations(image: Image.Image) -> Iterator[tuple[str, Image.Image]]:
    """The deskewed photo first (phone photos are rarely level), then as taken."""
    angle = skew_angle(image)
    if angle:
        yield f"{angle}°", image.rotate(angle, expand=True, fillcolor=255, resample=BICUBIC)
    yield "0°", image


def _stamp_variants(image: Image.Image) -> Iterator[tuple[str, Image.Image]]:
    """Struck digits are shadows and rims, not ink: several ways to make them dark on light."""
    yield "stretch", image
    # Blurring merges shadow, face and rim into one dark stroke.
    yield "blur", ImageOps.autocontrast(image.filter(ImageFilter.GaussianBlur(2)), 2)
    # A min filter thickens the shadow edge; the blur after it smooths the steel's streaks.
    thick = image.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.GaussianBlur(1.5))
    yield "thicken", ImageOps.autocontrast(thick, 2)


# ----------------------------------------------------------------------------- the verdict


def _number_verdict(
    expected: str, reads: list[Read], may_differ: bool = True
) -> tuple[ReadingVerdict, Read | None]:
    """一致 only when certain; 不一致 (when ``may_differ``) for a confident differing read;
    else 未识别."""
    exact = [r for r in reads if r.text == expected]
    if any(r.conf >= CERTAIN for r in exact):
        return ReadingVerdict.MATCH, max(exact, key=lambda r: r.conf)
    if len([r for r in exact if r.conf >= TWICE_MIN]) >= 2 or len(exact) >= 3:
        # Read twice fairly surely, or three times: a misread landing on exactly the row's
        # number again and again does not happen by chance.
        return ReadingVerdict.MATCH, max(exact, key=lambda r: r.conf)
    differing = [r for r in reads if r.text != expected and r.anchored and may_differ]
    confident = [r for r in differing if r.conf >= CONFIDENT]
    if confident and not exact:
        return ReadingVerdict.MISMATCH, max(confident, key=lambda r: r.conf)
    agreeing = [r for r in differing if sum(1 for o in differing if o.text == r.text) >= 2]
    if agreeing and not exact:
        return ReadingVerdict.MISMATCH, max(agreeing, key=lambda r: r.conf)
    best = max(reads, key=lambda r: r.conf) if reads else None
    return ReadingVerdict.UNREAD, best


def _looks_like_number(text: str) -> bool:
    return len(text) >= 5 and sum(c.isdigit() for c in text) >= 3


# ----------------------------------------------------------------------------- certificates


def _after_label(line: list[Word], label: re.Pattern[str]) -> tuple[str, int, int] | None:
    """The text after the label on a line, its mean confidence and the label's right edge."""
    joined = ""
    for index, word in enumerate(line):
        joined += word.text
        match = label.search(joined)
        if match:
            rest = line[index + 1 :]
            tail = joined[match.end() :]
            text = (tail + "".join(w.text for w in rest)).lstrip(":： ")
            confs = [w.conf for w in rest] or [word.conf]
            return text, sum(confs) // len(confs), word.box[0] + word.box[2]
    return None


def _certificate_fields(
    image: Image.Image, expected: str
) -> tuple[list[Read], tuple[str, int] | None, tuple[str, int] | None]:
    """The number's reads (label line, then its crop re-read), the maker and the date."""
    words = _words(image, "chi_sim+eng", "--psm 6")
    reads: list[Read] = []
    maker = date = None
    for line in _lines(words):
        number = _after_label(line, _PRODUCT_LABEL)
        if number is not None:
            text, conf, label_right = number
            # The value's own words (not the label's) carry the confidence.
            value_words = [w for w in line if w.box[0] >= label_right - 2] or line
            conf = min(w.conf for w in value_words)
            reads.append(Read(normalise_number(text), conf, "label line"))
            top = min(w.box[1] for w in line)
            bottom = max(w.box[1] + w.box[3] for w in line)
            pad = max(4, (bottom - top) // 3)
            crop = image.crop((label_right, max(0, top - pad), image.width, bottom + pad))
            for word in _whitelisted(crop, 7):
                if _looks_like_number(word.text):
                    reads.append(Read(normalise_number(word.text), word.conf, "label crop"))
            if _number_verdict(expected, reads)[0] is not ReadingVerdict.MATCH:
                # A third read, of the crop enlarged and sharpened: blur and JPEG loss
                # cost the small reads most.
                big = crop.resize((crop.width * 2, crop.height * 2), Image.Resampling.LANCZOS)
                big = ImageOps.autocontrast(big.filter(ImageFilter.UnsharpMask(3, 150, 2)), 1)
                for word in _whitelisted(big, 7):
                    if _looks_like_number(word.text):
                        reads.append(Read(normalise_number(word.text), word.conf, "crop ×2"))
            continue
        found = _after_label(line, _MAKER_LABEL)
        if found is not None and maker is None:
            maker = (found[0], found[1])
            continue
        found = _after_label(line, _DATE_LABEL)
        if found is not None and date is None:
            date = (found[0], found[1])
    if not reads:
        # No 产品编号 label read: a whole word may still be the number (checked exactly), and
        # a word close to the row's number is meant as it (the certificate's own 编号 and
        # dates are not close to a product number).
        for word in words:
            text = normalise_number(word.text)
            if _looks_like_number(text) and not _NUMBER_LABEL.search(word.text):
                reads.append(Read(text, word.conf, "unlabelled", _close(text, expected)))
    return reads, maker, date


def _month(text: str) -> str | None:
    match = _YEAR_MONTH.search(unicodedata.normalize("NFKC", text))
    if not match or not 1 <= int(match.group(2)) <= 12:
        return None
    return f"{match.group(1)}-{int(match.group(2)):02d}"


def read_certificate(data: bytes, row: Row) -> Reading:
    image = _load(data)
    expected = normalise_number(row.product_no)
    reads: list[Read] = []
    maker = date = None
    for how, rotated in _rotations(image):
        found, found_maker, found_date = _certificate_fields(rotated, expected)
        maker, date = maker or found_maker, date or found_date
        reads += [Read(r.text, r.conf, f"{how} {r.how}", r.anchored) for r in found]
        verdict, _ = _number_verdict(expected, reads)
        if verdict is ReadingVerdict.MATCH or any(r.how.endswith("crop") for r in found):
            break  # the labelled number was read at this angle: more angles add nothing
    reading = _reading(row, reads)
    notes = []
    if maker is not None:
        reading.manufacturer = maker[0].strip("'\"“”‘’|:： ")[:100] or None
        if row.manufacturer and reading.manufacturer and maker[1] >= CONFIDENT:
            ratio = difflib.SequenceMatcher(
                None, _normalise_name(maker[0]), _normalise_name(row.manufacturer)
            ).ratio()
            if ratio < 0.5:  # OCR drops a character or two; a different maker differs wholly
                notes.append(f"制造单位读作“{reading.manufacturer}”")
    if date is not None:
        reading.manufacture_month = _month(date[0])
        if (
            row.manufacture_month
            and reading.manufacture_month
            and reading.manufacture_month != row.manufacture_month
            and date[1] >= CONFIDENT
        ):
            notes.append(f"制造日期读作{reading.manufacture_month}")
    if notes:
        reading.note = "；".join(filter(None, [reading.note, *notes]))
        if reading.verdict is ReadingVerdict.MATCH:
            reading.verdict = ReadingVerdict.MISMATCH
    return reading


# ----------------------------------------------------------------------------- stamps


def read_stamp(data: bytes, row: Row) -> Reading:
    image = _load(data)
    expected = normalise_number(row.product_no)
    reads: list[Read] = []
    for angle, rotated in _rotations(image):
        found = False
        for how, variant in _stamp_variants(rotated):
            for word in _whitelisted(variant, 11):
                text = normalise_number(word.text)
                if _looks_like_number(text):
                    reads.append(Read(text, word.conf, f"{angle} {how}", _close(text, expected)))
                    found = True
            if _number_verdict(expected, reads)[0] is ReadingVerdict.MATCH:
                return _reading(row, reads, may_differ=False)
        if found:
            break  # the deskewed photo gave its words: as taken adds little
    # Tesseract misreads struck digits consistently (3→2, 7→1, 8→6 in every preprocessing,
    # at confidence 70–88), so an ordinary differing read was a misread as often as a wrong
    # number. 不一致 only on stronger evidence (_stamp_mismatch); else 一致 or nothing.
    differing = _stamp_mismatch(expected, reads)
    if differing is not None:
        return Reading(
            ReadingVerdict.MISMATCH,
            product_no=differing.text[:60],
            confidence=max(0, differing.conf),
            note=f"照片中编号读作{differing.text}，表中为{row.product_no}",
            reads=reads,
        )
    return _reading(row, reads, may_differ=False)


def _differing_positions(a: str, b: str) -> int:
    """Places in which two numbers differ (edit distance: a swap of two digits is 2)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _stamp_mismatch(expected: str, reads: list[Read]) -> Read | None:
    """A stamp's differing number, when the evidence is strong: no read of the row's number
    at all, and one number close to it (not another marking) read the same by two different
    preprocessings, each with confidence ≥ STAMP_CONFIDENT, that differs in ≥ 2 places (the
    consistent misreads are one digit). In 308 synthetic stamps it found 3 of 108 wrong
    numbers and called no right stamp 不一致 (docs/benchmarks.md)."""
    if any(r.text == expected for r in reads):
        return None
    by_text: dict[str, list[Read]] = {}
    for r in reads:
        if r.anchored and r.conf >= STAMP_CONFIDENT and r.text != expected:
            by_text.setdefault(r.text, []).append(r)
    for text, found in by_text.items():
        preprocessings = {r.how.split()[-1] for r in found}  # "4° blur" → "blur"
        if len(preprocessings) >= 2 and _differing_positions(text, expected) >= STAMP_MIN_POSITIONS:
            return max(found, key=lambda r: r.conf)
    return None


def _close(text: str, expected: str) -> bool:
    """A stamp's word that is meant as this number (a near miss), not other markings."""
    if abs(len(text) - len(expected)) > 2:
        return False
    return difflib.SequenceMatcher(None, text, expected).ratio() >= 0.6


def _reading(row: Row, reads: list[Read], may_differ: bool = True) -> Reading:
    verdict, best = _number_verdict(normalise_number(row.product_no), reads, may_differ)
    reading = Reading(verdict, reads=reads)
    if best is not None:
        reading.product_no = best.text[:60]
        reading.confidence = max(0, best.conf)
    if verdict is ReadingVerdict.MISMATCH:
        reading.note = f"照片中编号读作{reading.product_no}，表中为{row.product_no}"
    elif verdict is ReadingVerdict.UNREAD:
        reading.note = "未能可靠识别照片中的产品编号"
    return reading


def read_photo(kind: AttachmentKind, data: bytes, row: Row) -> Reading:
    """Read one photo and judge it against ``row``. Never raises for a bad image."""
    try:
        if kind is AttachmentKind.SUPERVISION_CERTIFICATE:
            return read_certificate(data, row)
        return read_stamp(data, row)
    except (OSError, ValueError, Image.DecompressionBombError):
        return Reading(ReadingVerdict.UNREAD, note="照片无法打开")
