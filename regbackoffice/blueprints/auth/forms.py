from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..form_helpers import BaseForm


class LoginForm(BaseForm):
    username = StringField("用户名", validators=[DataRequired("请输入用户名"), Length(max=50)])
    password = PasswordField("密码", validators=[DataRequired("请输入密码"), Length(max=200)])


class PasswordChangeForm(BaseForm):
    current = PasswordField(
        "当前密码", validators=[DataRequired("请输入当前密码"), Length(max=200)]
    )
    new = PasswordField(
        "新密码（至少8位，含大写字母、小写字母、数字、符号中的至少三类）",
        validators=[DataRequired("请输入新密码"), Length(max=200)],
    )
    confirm = PasswordField(
        "再次输入新密码",
        validators=[
            DataRequired("请再次输入新密码"),
            EqualTo("new", "两次输入的新密码不一致"),
        ],
    )
