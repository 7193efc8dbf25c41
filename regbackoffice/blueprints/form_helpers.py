"""Small helpers shared by the blueprints' forms."""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectChoice
from wtforms.validators import InputRequired


def choices(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """``(value, label)`` pairs as WTForms select choices."""
    return [SelectChoice(value, label) for value, label in pairs]


class BaseForm(FlaskForm):
    """Every form of the app: WTForms' built-in messages in Chinese."""

    class Meta:
        locales = ("zh",)


class VersionedForm(BaseForm):
    """A transition form: carries the application version the user saw."""

    version = IntegerField(widget=HiddenField.widget, validators=[InputRequired()])
