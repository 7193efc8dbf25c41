from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # new in WTForms 3.3; types-WTForms 3.2 lacks it
from wtforms.validators import DataRequired, Length, Optional

from ...applications import UNIT_FIELDS
from ...excel_template import COLUMNS
from ...models import AttachmentKind
from ..form_helpers import BaseForm


def _unit_field(name: str) -> StringField:
    label, limit = UNIT_FIELDS[name]
    return StringField(
        label,
        validators=[
            DataRequired(f"请填写{label}"),
            Length(max=limit, message=f"{label}最多{limit}个字"),
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
        "气瓶信息Excel文件（.xlsx）", validators=[FileRequired("请选择要导入的.xlsx文件")]
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


class ItemForm(BaseForm):
    pass


for _column in COLUMNS:
    setattr(
        ItemForm,
        _column.key,
        StringField(_column.header, validators=[Optional(), Length(max=1000)]),
    )
