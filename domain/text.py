"""Human text: what a person may write in a name, a reason or a note, and the one form in which it is kept."""

from __future__ import annotations

import unicodedata
from functools import cache

from domain.shared import InvalidInputError

# Bidirectional controls reorder what is shown ("scan\u202egnp.exe" reads as "scanexe.png"); they are all of
# category Cf but for U+061C, named here too so the rule reads as it is meant.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
LINE_BREAKS = frozenset("\n\r\t")


class InvalidTextError(InvalidInputError):
    """Raised when text holds characters a reader cannot see or that change how it is shown, or has no base character."""

    code = "invalid_text"


def text_problem(text: str, *, multiline: bool = False) -> str | None:
    """Why this text is not acceptable human text, or None: no control, format (zero-width, bidirectional) or
    separator characters (new lines and tabs only in multi-line text), and no combining mark before any letter."""
    for char in text:
        if char in BIDI_CONTROLS:
            return f"must not contain the bidirectional control U+{ord(char):04X}"
        if multiline and char in LINE_BREAKS:
            continue
        if unicodedata.category(char) in HIDDEN_CATEGORIES:
            kind = "control" if unicodedata.category(char) == "Cc" else "invisible formatting"
            return f"must not contain the {kind} character U+{ord(char):04X}"
    visible = text.lstrip()
    if visible and unicodedata.category(visible[0]).startswith("M"):
        return "must not begin with a combining mark: it has no character to sit on"
    return None


def human_text(text: str, field: str, *, multiline: bool = False) -> str:
    """The text in composed form (NFC), or InvalidTextError naming the field."""
    problem = text_problem(text, multiline=multiline)
    if problem is not None:
        raise InvalidTextError(f"{field} {problem}.", field=field)
    return unicodedata.normalize("NFC", text)


def _escaped(point: int) -> str:
    """\\uXXXX in the Basic Multilingual Plane, which Python and ECMA-262 patterns read alike; the character beyond it."""
    return f"\\u{point:04x}" if point <= 0xFFFF else chr(point)


def _ranges(chars: list[int]) -> str:
    """A regular-expression class body for these code points, as ranges."""
    parts: list[str] = []
    start = previous = None
    for point in [*chars, -2]:
        if previous is not None and point == previous + 1:
            previous = point
            continue
        if start is not None and previous is not None:
            parts.append(_escaped(start) if start == previous else f"{_escaped(start)}-{_escaped(previous)}")
        start = previous = point
    return "".join(parts)


# Planes 4 to 13 hold no characters yet and planes 15 and 16 only private use, which this rule lets through.
ASSIGNED_PLANES = (range(0x40000), range(0xE0000, 0xE1000))


@cache
def _code_points() -> tuple[list[int], list[int]]:
    """The hidden characters (but new lines and tabs) and the combining marks, in order."""
    hidden: list[int] = []
    marks: list[int] = []
    for plane in ASSIGNED_PLANES:
        for point in plane:
            char = chr(point)
            category = unicodedata.category(char)
            if char in LINE_BREAKS or category == "Cs":
                continue  # lone surrogates are no Unicode text and break pattern engines; text_problem refuses them
            if category in HIDDEN_CATEGORIES or char in BIDI_CONTROLS:
                hidden.append(point)
            elif category[0] == "M":
                marks.append(point)
    return hidden, marks


def _classes(multiline: bool) -> tuple[str, str]:
    hidden, marks = _code_points()
    if not multiline:
        hidden = sorted([*hidden, *map(ord, LINE_BREAKS)])
    return _ranges(hidden), _ranges(marks)


@cache
def human_text_pattern(minimum: int, *, multiline: bool = False) -> str:
    """The same rule as text_problem, as a regular expression over the text before surrounding white space is
    stripped, that also holds at least `minimum` characters once it is stripped (for an API schema)."""
    hidden, marks = _classes(multiline)
    allowed = f"[^{hidden}]"
    last = f"[^{hidden}\\s]"
    first = f"[^{hidden}{marks}\\s]"
    if minimum <= 0:
        body = f"(?:{first}(?:{allowed}*{last})?)?"
    elif minimum == 1:
        body = f"{first}(?:{allowed}*{last})?"
    else:
        body = f"{first}{allowed}{{{minimum - 2},}}{last}"
    return f"^\\s*{body}\\s*$"
