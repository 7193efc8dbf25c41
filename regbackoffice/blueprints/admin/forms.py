from flask_wtf.file import FileField
from wtforms import (
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ...models import API_SCOPES, Role, UnitKind
from ..form_helpers import BaseForm, choices

SCOPE_LABELS = {
    "query": "基础数据查询",
    "bind": "信息化标签绑定",
    "filling": "充装记录提交",
    "inspection": "检验记录提交",
    "trace": "溯源轨迹提交",
}


class UserForm(BaseForm):
    username = StringField("用户名", validators=[DataRequired("请填写用户名"), Length(max=50)])
    display_name = StringField("姓名", validators=[DataRequired("请填写姓名"), Length(max=50)])
    role = SelectField("角色", choices=choices((r.value, r.label) for r in Role))
    district_code = SelectField("所属区县（区县局人员）", choices=[], default="")
    unit_credit_code = StringField(
        "所属单位统一社会信用代码（使用单位经办人）", validators=[Optional(), Length(max=30)]
    )
    password = PasswordField(
        "初始密码（至少8位，含大写字母、小写字母、数字、符号中的至少三类）",
        validators=[Optional(), Length(max=200)],
    )


class PasswordResetForm(BaseForm):
    password = PasswordField(
        "新密码（至少8位，含大写字母、小写字母、数字、符号中的至少三类）",
        validators=[DataRequired("请填写新密码"), Length(max=200)],
    )


class ConfirmForm(BaseForm):
    """A POST with only the CSRF token: enable/disable, rotate, revoke."""


class UnitForm(BaseForm):
    kind = SelectField("单位类型", choices=choices((k.value, k.label) for k in UnitKind))
    name = StringField("单位名称", validators=[DataRequired("请填写单位名称"), Length(max=100)])
    credit_code = StringField(
        "统一社会信用代码", validators=[DataRequired("请填写统一社会信用代码"), Length(max=30)]
    )
    district_code = SelectField("所在区县", choices=[])
    address = StringField("地址", validators=[Optional(), Length(max=200)])
    safety_department = StringField("安全管理部门", validators=[Optional(), Length(max=100)])
    contact_name = StringField("联系人", validators=[Optional(), Length(max=50)])
    contact_phone = StringField("联系电话", validators=[Optional(), Length(max=30)])


class ApiClientForm(BaseForm):
    unit_credit_code = StringField(
        "调用单位统一社会信用代码",
        validators=[DataRequired("请填写统一社会信用代码"), Length(max=30)],
    )
    scopes = SelectMultipleField(
        "接口权限",
        choices=choices((s, SCOPE_LABELS[s]) for s in API_SCOPES),
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )
    description = StringField("说明（平台名称）", validators=[Optional(), Length(max=200)])


class CalendarImportForm(BaseForm):
    """A year's State Council schedule: an uploaded file or pasted text (docs/calendar.md)."""

    year = IntegerField(
        "年份",
        validators=[DataRequired("请填写年份"), NumberRange(2000, 2100, "年份应在2000–2100之间")],
    )
    document = StringField(
        "依据文件（如 国办发明电〔2026〕X号）", validators=[Optional(), Length(max=200)]
    )
    file = FileField("安排文件（.txt / .csv，UTF-8）")
    text = TextAreaField("或粘贴内容", validators=[Optional(), Length(max=20000)])
    confirm = HiddenField()
