"""Password rules (等保 L2 身份鉴别): length, complexity, not common, not the username.

Common passwords: zxcvbn's list of the 30,000 most used ones (the ``zxcvbn`` package,
from the Xato corpus of leaked passwords) plus ``data/common_passwords_cn.txt`` (Chinese
top lists, see its header). Compared in lower case, also with the symbols taken out, so
``Password@123`` counts as ``password123``. Runs (``12345678``, ``abcdefgh``), repeats and
keyboard rows (``qwertyui``, ``1qaz2wsx`` is in the lists) are refused too.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

MIN_LENGTH = 8
CLASSES_NEEDED = 3
# Keyboard rows and columns, forwards; their reverses are checked as well.
_KEYBOARD = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "1qaz2wsx3edc4rfv5tgb")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "01234567890"


@cache
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    words = set(FREQUENCY_LISTS["passwords"])
    text = resources.files("regbackoffice.data").joinpath("common_passwords_cn.txt")
    for line in text.read_text(encoding="utf-8").splitlines():
        line = line.strip().lower()
        if line and not line.startswith("#"):
            words.add(line)
    return frozenset(words)


def _classes(password: str) -> int:
    return sum(
        (
            any(c.isupper() for c in password),
            any(c.islower() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def _in_a_run(piece: str) -> bool:
    runs = (_ALPHABET, _DIGITS, *_KEYBOARD)
    return any(piece in run or piece in run[::-1] for run in runs)


def _is_sequence(text: str) -> bool:
    """Made only of stretches (3+) of the alphabet, digits or a keyboard row, or of one
    short piece repeated: ``abcd1234``, ``qwer5678``, ``aa1aa1aa1``, ``11111111``."""
    if len(set(text)) <= 2:
        return True
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return True
    # covered[i]: text[:i] splits into stretches of 3 or more.
    covered = [True] + [False] * len(text)
    for end in range(3, len(text) + 1):
        covered[end] = any(
            covered[start] and _in_a_run(text[start:end]) for start in range(end - 2)
        )
    return covered[len(text)]


def _core(password: str) -> str:
    return re.sub(r"[^0-9a-z]", "", password.lower())


def password_error(password: str, username: str | None = None) -> str | None:
    """The Chinese reason ``password`` is refused, or None when it is good enough."""
    if len(password) < MIN_LENGTH:
        return f"密码至少{MIN_LENGTH}位"
    lowered, core = password.lower(), _core(password)
    if username and username.strip() and username.strip().lower() in lowered:
        return "密码不能包含用户名，请换一个"
    if _classes(password) < CLASSES_NEEDED:
        return "密码须包含大写字母、小写字母、数字、符号中的至少三类（例如 Gas#2026ping）"
    if lowered in common_passwords() or core in common_passwords():
        return "该密码是常见密码（在常用密码表中），很容易被猜中，请换一个"
    if _is_sequence(lowered) or (len(core) >= MIN_LENGTH and _is_sequence(core)):
        return "密码不能是连续或重复的字符（如12345678、abcdefgh、qwertyui），请换一个"
    return None
