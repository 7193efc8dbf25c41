"""Small helpers shared by the blueprints' forms."""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # new in WTForms 3.3; types-WTForms 3.2 lacks it
from wtforms.validators import DataRequired, InputRequired, Length
from wtforms.widgets import HiddenInput


def choices(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """``(value, label)`` pairs as WTForms select choices."""
    return [SelectChoice(value, label) for value, label in pairs]


def required_text(field: StringField) -> str:
    """The value of a text field whose ``DataRequired`` validator has passed.

    WTForms types ``data`` as optional (it is None before the form is processed); after
    validation a required field always holds text, so None here is a bug in the view.
    """
    if field.data is None:
        raise ValueError(f"field {field.name!r} read before the form was validated")
    return field.data


class BaseForm(FlaskForm):
    """Every form of the app: WTForms' built-in messages in Chinese."""

    class Meta:
        locales = ("zh",)


def reason_field(label: str) -> TextAreaField:
    """The required reason of a destructive or exceptional action (at most 500 characters)."""
    return TextAreaField(
        label,
        validators=[
            DataRequired(f"请填写{label}"),
            Length(max=500, message=f"{label[-2:]}不能超过500字"),
        ],
    )


def confirm_field(label: str) -> BooleanField:
    """The explicit tick that says the user knows what the action does."""
    return BooleanField(label, validators=[DataRequired("请勾选确认")])


class VersionedForm(BaseForm):
    """A transition form: carries the application version the user saw."""

    version = IntegerField(widget=HiddenInput(), validators=[InputRequired()])
