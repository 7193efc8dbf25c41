from flask_wtf.file import FileField, FileRequired
from wtforms import Field, Form, SelectField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # new in WTForms 3.3; types-WTForms 3.2 lacks it
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ...applications import UNIT_FIELDS
from ...identity import invisible_characters_message
from ...imports.template import COLUMNS
from ...models import AttachmentKind
from ..form_helpers import BaseForm, VersionedForm


def visible_text(form: Form, field: Field) -> None:
    """Zero-width characters and bidi overrides are refused, as by the API."""
    message = invisible_characters_message(str(field.label.text), field.data or "")
    if message:
        raise ValidationError(message)


def _unit_field(name: str) -> StringField:
    label, limit = UNIT_FIELDS[name]
    return StringField(
        label,
        validators=[
            DataRequired(f"请填写{label}"),
            Length(max=limit, message=f"{label}最多{limit}个字"),
            visible_text,
        ],
    )


class ApplicationForm(BaseForm):
    unit_name = _unit_field("unit_name")
    safety_department = _unit_field("safety_department")
    contact_name = _unit_field("contact_name")
    contact_phone = _unit_field("contact_phone")
    credit_code = _unit_field("credit_code")
    address = _unit_field("address")
    district_code = SelectField("区县", validators=[DataRequired("请选择区县")])


class ConfirmForm(BaseForm):
    """Only the CSRF token: for buttons that act after a confirmation."""


class ImportForm(BaseForm):
    file = FileField(
        "气瓶信息文件（.xlsx、.xls、.ods或.csv）",
        validators=[FileRequired("请选择要导入的文件（.xlsx、.xls、.ods或.csv）")],
    )


class PhotoForm(BaseForm):
    kind = SelectField(
        "照片类型",
        choices=[SelectChoice(k.value, k.label) for k in AttachmentKind],
        validators=[DataRequired("请选择照片类型")],
    )
    file = FileField("照片（JPEG/PNG，不超过10MB）", validators=[FileRequired("请选择照片")])


class ReplacePhotoForm(BaseForm):
    file = FileField("新照片", validators=[FileRequired("请选择照片")])


class BulkPhotoForm(BaseForm):
    file = FileField("照片压缩包（.zip）", validators=[FileRequired("请选择.zip压缩包")])


class NamedPhotoForm(BaseForm):
    """One photo of a multi-file upload, named 产品编号_钢印.jpg (sent by photo-upload.js)."""

    file = FileField("照片", validators=[FileRequired("请选择照片")])


class ItemForm(BaseForm):
    pass


_DECIMAL = {"type": "number", "step": "0.01", "min": "0.01", "inputmode": "decimal"}
# Each column's longest value (the seed's lengths; codes may come with their names) and the
# input that fits it. The import's row rules (applications.update_item) do the rest.
ITEM_INPUTS: dict[str, tuple[int, dict[str, str]]] = {
    "variety": (20, {}),
    "product_no": (50, {}),
    "medium": (20, {}),
    "manufacturer": (100, {}),
    "manufacture_month": (7, {"type": "month"}),
    "pressure": (10, {**_DECIMAL, "max": "100"}),
    "volume": (10, {**_DECIMAL, "max": "3000"}),
    "last_inspection_date": (10, {"type": "date"}),
    "next_inspection_month": (7, {"type": "month"}),
    "internal_no": (50, {}),
    "tag_type": (10, {}),
    "tag_value": (1000, {}),
    "design_life_years": (
        3,
        {"type": "number", "step": "1", "min": "1", "max": "60", "inputmode": "numeric"},
    ),
}

for _column in COLUMNS:
    _limit, _attrs = ITEM_INPUTS[_column.key]
    setattr(
        ItemForm,
        _column.key,
        StringField(
            _column.header,
            validators=[
                Optional(),
                Length(max=_limit, message=f"{_column.header}最多{_limit}个字"),
            ],
            render_kw={"maxlength": str(_limit), **_attrs},
        ),
    )


class WithdrawForm(VersionedForm):
    """撤回申请 while 待补正: the version seen and an optional word of why."""

    reason = StringField("撤回说明（可不填）", validators=[Optional()])
