from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, HiddenField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from ..form_helpers import BaseForm, VersionedForm, reason_field


class ChangeForm(BaseForm):
    """One form for every kind; which fields a kind needs is the domain's rule."""

    cylinder_ids = HiddenField()  # archive IDs from ?cylinder= links
    product_nos = TextAreaField(
        "产品编号清单（每行一个，或用逗号、空格分隔）", validators=[Optional()]
    )
    product_file = FileField("或上传含“产品编号”列的 .xlsx 文件")
    reason = TextAreaField(
        "原因", validators=[Optional(), Length(max=500, message="原因不能超过500字")]
    )
    effective_on = DateField(
        "生效日期（停用、报废发生之日；不填为批准之日）", validators=[Optional()]
    )
    long_stop = BooleanField("停用一年以上")
    new_unit_name = StringField("使用单位新名称", validators=[Optional(), Length(max=100)])
    new_address = StringField("新的使用地址", validators=[Optional(), Length(max=200)])
    target_credit_code = StringField(
        "接收单位统一社会信用代码", validators=[Optional(), Length(max=18)]
    )
    certificate_no = StringField("补领的使用登记证编号", validators=[Optional(), Length(max=50)])
    proof_photo = FileField("报废证明照片（JPEG/PNG）")
    inspection_record_id = StringField("或：检验机构的判废检验记录", validators=[Optional()])


class RejectForm(VersionedForm):
    reason = reason_field("驳回原因")
