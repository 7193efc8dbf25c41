"""机器预读 benchmark (issue 21): a labelled set of synthetic photos through the real reader.

Generates certificates and stamps (regbackoffice.sample_photos) with random rotation,
perspective, blur, glare, low light, JPEG quality and size, stamps with varying strike
depth; about one in six shows a number other than the row's (a typo, two digits swapped,
or another cylinder's number). Prints per kind:
- precision of 一致 (of the photos read 一致, how many truly show the row's number; goal 100 %),
- recall of 不一致 (of the photos showing another number, how many were read 不一致; ≥ 90 %),
- the share 未识别, false 不一致 (a right photo called 不一致), seconds per photo.
No database is needed. Run on a quiet machine; the load average is printed with the result.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from regbackoffice import photo_reading, sample_photos
from regbackoffice.models import AttachmentKind, ReadingVerdict

MAKERS = ["重庆示例气瓶制造有限公司", "北京天海工业有限公司", "沈阳斯林达安科新技术有限公司"]


@dataclass
class Case:
    kind: AttachmentKind
    row: photo_reading.Row
    shown: str  # the number the photo shows
    distortion: sample_photos.Distortion
    depth: float
    seed: int

    @property
    def wrong(self) -> bool:
        return self.shown != self.row.product_no


def product_no(rng: random.Random) -> str:
    form = rng.choice(["CN", "YS", "", "TH"])
    digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([8, 9, 10])))
    return form + digits


def wrong_number(rng: random.Random, number: str) -> str:
    how = rng.choice(["typo", "swap", "other"])
    if how == "other":
        other = product_no(rng)
        return other if other != number else other + "1"
    positions = [i for i, c in enumerate(number) if c.isdigit()]
    if how == "swap":
        for _ in range(20):
            i = rng.choice(positions[:-1])
            if i + 1 in positions and number[i] != number[i + 1]:
                return number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    i = rng.choice(positions)
    digit = rng.choice([d for d in "0123456789" if d != number[i]])
    return number[:i] + digit + number[i + 1 :]


def distortion(rng: random.Random) -> sample_photos.Distortion:
    return sample_photos.Distortion(
        rotate=rng.choice([rng.uniform(-4, 4)] * 3 + [rng.uniform(-10, 10)]),
        perspective=rng.choice([0.0, rng.uniform(0.02, 0.08)]),
        blur=rng.choice([0.0, 0.0, rng.uniform(0.5, 1.5), rng.uniform(1.5, 2.5)]),
        glare=rng.choice([0.0, 0.0, rng.uniform(0.3, 0.7)]),
        light=rng.choice([1.0, 1.0, rng.uniform(0.7, 0.95), rng.uniform(0.35, 0.6)]),
        quality=rng.choice([90, 80, 70, 55, 40]),
        scale=rng.uniform(0.7, 1.4),
    )


def cases(count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    made = []
    for index in range(count):
        kind = AttachmentKind.SUPERVISION_CERTIFICATE if index % 2 else AttachmentKind.STAMP
        number = product_no(rng)
        row = photo_reading.Row(
            number, rng.choice(MAKERS), f"20{rng.randint(15, 25)}-{rng.randint(1, 12):02d}"
        )
        shown = wrong_number(rng, number) if rng.random() < 0.17 else number
        made.append(Case(kind, row, shown, distortion(rng), rng.uniform(0.9, 2.0), index))
    return made


def draw(case: Case) -> bytes:
    if case.kind is AttachmentKind.STAMP:
        return sample_photos.stamp(case.shown, case.distortion, seed=case.seed, depth=case.depth)
    return sample_photos.certificate(
        case.shown, case.row.manufacturer, case.row.manufacture_month, case.distortion, case.seed
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=320, help="photos, half of each kind")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--show-errors", action="store_true", help="print every false 一致")
    args = parser.parse_args()
    print(f"tesseract: {photo_reading.engine_version()}; cores {os.cpu_count()}")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    results: dict[AttachmentKind, list[tuple[Case, photo_reading.Reading, float]]] = {
        k: [] for k in AttachmentKind
    }
    started = time.perf_counter()
    for case in cases(args.count, args.seed):
        data = draw(case)
        t = time.perf_counter()
        reading = photo_reading.read_photo(case.kind, data, case.row)
        results[case.kind].append((case, reading, time.perf_counter() - t))
        if args.show_errors and reading.verdict is ReadingVerdict.MATCH and case.wrong:
            print(f"  FALSE 一致: row {case.row.product_no}, shows {case.shown}: {reading.reads}")
    print("load average at end:   {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"total {time.perf_counter() - started:.0f} s\n")
    header = f"{'kind':<10}{'photos':>7}{'wrong':>7}{'一致':>6}{'precision 一致':>16}"
    header += f"{'recall 不一致':>14}{'false 不一致':>13}{'未识别':>8}{'s/photo':>9}{'p95 s':>7}"
    print(header)
    for kind, rows in results.items():
        verdicts = Counter(r.verdict for _, r, _ in rows)
        matched = [c for c, r, _ in rows if r.verdict is ReadingVerdict.MATCH]
        wrong = [(c, r) for c, r, _ in rows if c.wrong]
        right = [(c, r) for c, r, _ in rows if not c.wrong]
        precision = sum(not c.wrong for c in matched) / len(matched) if matched else float("nan")
        recall = (
            sum(r.verdict is ReadingVerdict.MISMATCH for _, r in wrong) / len(wrong)
            if wrong
            else float("nan")
        )
        false_mismatch = sum(r.verdict is ReadingVerdict.MISMATCH for _, r in right)
        seconds = sorted(s for _, _, s in rows)
        p95 = seconds[int(0.95 * (len(seconds) - 1))]
        unread = verdicts[ReadingVerdict.UNREAD] / len(rows)
        label = "钢印" if kind is AttachmentKind.STAMP else "监检证书"
        print(
            f"{label:<10}{len(rows):>7}{len(wrong):>7}{len(matched):>6}{precision:>16.1%}"
            f"{recall:>14.1%}{false_mismatch:>13}{unread:>8.1%}"
            f"{statistics.mean(seconds):>9.2f}{p95:>7.2f}"
        )


if __name__ == "__main__":
    main()
