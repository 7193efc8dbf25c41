import csv
from pathlib import Path

from sqlalchemy import func, select

from regbackoffice.extensions import db
from regbackoffice.models import District, Medium, Variety

SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
PACKAGED = Path(__file__).resolve().parents[1] / "regbackoffice" / "data"


def _csv(name: str) -> list[dict[str, str]]:
    folder = SHARED_REFERENCE if SHARED_REFERENCE.exists() else PACKAGED
    with open(folder / name, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_packaged_tables_are_copies_of_the_seed_tables():
    if not SHARED_REFERENCE.exists():
        return
    for name in ("districts.csv", "media.csv", "varieties.csv"):
        assert (PACKAGED / name).read_bytes() == (SHARED_REFERENCE / name).read_bytes()


def test_migrated_districts_equal_the_seed_with_their_authorities():
    rows = {d.code: (d.name, d.authority) for d in db.session.scalars(select(District))}
    expected = {r["code"]: (r["name"], r["authority"]) for r in _csv("districts.csv")}
    assert len(rows) == 42
    assert rows == expected
    assert rows["500112"] == ("渝北区", "重庆市渝北区市场监督管理局")
    assert rows["500141"][1] == "重庆高新技术产业开发区管理委员会市场监督管理局"


def test_migrated_media_are_g1_to_g20():
    codes = set(db.session.scalars(select(Medium.code)))
    assert codes == {f"G{n}" for n in range(1, 21)}
    assert db.session.get(Medium, "G13").name == "液化石油气"
    assert db.session.get(Medium, "G18").name == "一氧化二氮（笑气、氧化亚氮）"


def test_migrated_varieties_are_the_three_of_the_seed():
    assert db.session.scalar(select(func.count()).select_from(Variety)) == 3
    assert {v.code: v.name for v in db.session.scalars(select(Variety))} == {
        "2310": "无缝气瓶",
        "2320": "焊接气瓶",
        "23T0": "特种气瓶",
    }
