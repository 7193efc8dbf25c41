from wtforms import IntegerField
from wtforms.validators import Optional
from wtforms.widgets import HiddenInput

from ..form_helpers import BaseForm, VersionedForm, confirm_field, reason_field


class VoidForm(VersionedForm):
    reason = reason_field("驳回（退件）原因")
    confirm = confirm_field("我已知晓：驳回（退件）将作废该批次申请的全部气瓶，且不可恢复")


class AuditPageForm(BaseForm):
    """The verdict fields are dynamic, one set per cylinder; ``version`` is for 完成."""

    version = IntegerField(widget=HiddenInput(), validators=[Optional()])
