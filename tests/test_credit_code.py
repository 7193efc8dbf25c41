import pytest

from regbackoffice.credit_code import credit_code_error, is_valid_credit_code, make_credit_code
from regbackoffice.extensions import db
from regbackoffice.models import Unit, UnitKind


@pytest.mark.parametrize(
    "code",
    [
        "91110000802100433B",
        "91500112MA5U00001H",
        "９１１１００００８０２１００４３３Ｂ",
        " 91110000802100433b ",
    ],
)
def test_valid_codes_pass_including_full_width_and_lower_case(code):
    assert is_valid_credit_code(code)


def test_broken_check_digit_is_refused_with_a_chinese_reason():
    assert credit_code_error("91110000802100433C") == "统一社会信用代码校验位错误，请核对"


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("9111000080210043", "应为18位"),
        ("91110000802100433I", "不允许的字符"),
        ("9111AB00802100433B", "行政区划码"),
    ],
)
def test_malformed_codes_say_what_is_wrong(code, fragment):
    assert fragment in credit_code_error(code)


def test_make_credit_code_appends_the_gb32100_check_digit():
    assert make_credit_code("91110000802100433") == "91110000802100433B"


def test_unit_model_refuses_an_invalid_code_and_normalises_a_valid_one():
    with pytest.raises(ValueError, match="校验位"):
        Unit(kind=UnitKind.USE_UNIT, name="x", credit_code="91110000802100433C")
    unit = Unit(
        kind=UnitKind.USE_UNIT,
        name="x",
        credit_code="９１１１００００８０２１００４３３ｂ",
        district_code="500112",
    )
    db.session.add(unit)
    db.session.flush()
    assert unit.credit_code == "91110000802100433B"
