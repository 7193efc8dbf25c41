from wtforms import BooleanField, IntegerField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import HiddenInput

from ..form_helpers import BaseForm, VersionedForm


class VoidForm(VersionedForm):
    reason = TextAreaField(
        "驳回（退件）原因",
        validators=[
            DataRequired("请填写驳回（退件）原因"),
            Length(max=500, message="原因不能超过500字"),
        ],
    )
    confirm = BooleanField(
        "我已知晓：驳回（退件）将作废该批次申请的全部气瓶，且不可恢复",
        validators=[DataRequired("请勾选确认")],
    )


class AuditPageForm(BaseForm):
    """The verdict fields are dynamic, one set per cylinder; ``version`` is for 完成."""

    version = IntegerField(widget=HiddenInput(), validators=[Optional()])
