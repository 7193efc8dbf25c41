from ..form_helpers import BaseForm, confirm_field, reason_field


class VoidCertificateForm(BaseForm):
    reason = reason_field("注销原因")
    confirm = confirm_field(
        "我已知晓：注销后该证书核验显示“已注销”，证内气瓶全部变为“停用”，不能充装"
    )
