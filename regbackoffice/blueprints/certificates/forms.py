from wtforms import BooleanField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..form_helpers import BaseForm


class VoidCertificateForm(BaseForm):
    reason = TextAreaField(
        "注销原因",
        validators=[DataRequired("请填写注销原因"), Length(max=500, message="原因不能超过500字")],
    )
    confirm = BooleanField(
        "我已知晓：注销后该证书核验显示“已注销”，证内气瓶全部变为“停用”，不能充装",
        validators=[DataRequired("请勾选确认")],
    )
