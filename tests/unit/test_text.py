"""Human text: hidden characters and marks without a base character are refused; text is kept composed (NFC)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.text import InvalidTextError, human_text, human_text_pattern, text_problem

HIDDEN = {
    "left-to-right embedding": "\u202a",
    "right-to-left embedding": "\u202b",
    "pop directional formatting": "\u202c",
    "left-to-right override": "\u202d",
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "right-to-left isolate": "\u2067",
    "first strong isolate": "\u2068",
    "pop directional isolate": "\u2069",
    "left-to-right mark": "\u200e",
    "right-to-left mark": "\u200f",
    "arabic letter mark": "\u061c",
    "zero-width space": "\u200b",
    "zero-width non-joiner": "\u200c",
    "zero-width joiner": "\u200d",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "tag character": "\U000e0041",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "nul": "\x00",
    "escape": "\x1b",
    "delete": "\x7f",
    "next line": "\x85",
    "lone surrogate": "\ud800",
}


@pytest.mark.parametrize("char", HIDDEN.values(), ids=HIDDEN.keys())
@pytest.mark.parametrize("multiline", [False, True], ids=["one line", "multi-line"])
def test_hidden_characters_are_refused_anywhere_in_the_text(char: str, multiline: bool) -> None:
    for text in (f"{char}Grace", f"Gr{char}ace", f"Grace{char}"):
        with pytest.raises(InvalidTextError) as refused:
            human_text(text, "full_name", multiline=multiline)
        assert refused.value.details == {"field": "full_name"}
        assert refused.value.code == "invalid_text"


@pytest.mark.parametrize("text", ["\u0301", "\u0301\u0308\u0327", "\u0301abc", "  \u20dd", "\u093f\u0915"])
def test_text_that_begins_with_a_combining_mark_is_refused(text: str) -> None:
    assert text_problem(text) is not None
    with pytest.raises(InvalidTextError):
        human_text(text, "reason", multiline=True)


def test_new_lines_and_tabs_are_refused_in_one_line_text_and_kept_in_multi_line_text() -> None:
    note = "Chest clear.\n\tNo wheeze.\r\nReview in a week."
    assert human_text(note, "text", multiline=True) == note
    for text in ("Grace\nHopper", "Grace\tHopper", "Grace\rHopper"):
        with pytest.raises(InvalidTextError):
            human_text(text, "full_name")


def test_text_is_kept_in_composed_form() -> None:
    assert human_text("Jose\u0301 Nun\u0303ez", "full_name") == "Jos\u00e9 Nu\u00f1ez"
    assert human_text("\u212b", "full_name") == "\u00c5"  # the Angstrom sign is the letter it stands for


@pytest.mark.parametrize(
    "text",
    ["Nguyễn Thị Minh Khai", "محمد عبد الله", "שרה כהן", "田中 太郎", "Zoë O'Brien-Łukasiewicz", "देवनागरी", "Dr ⚕️ on call", "e\u0301"],
)
def test_names_in_every_script_with_their_marks_are_accepted(text: str) -> None:
    assert text_problem(text) is None


@pytest.mark.parametrize("minimum", [0, 1, 3, 10])
@pytest.mark.parametrize("multiline", [False, True], ids=["one line", "multi-line"])
@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=14))
def test_the_schema_pattern_states_exactly_the_rule_the_server_applies(text: str, minimum: int, multiline: bool) -> None:
    """What a client checks against the OpenAPI pattern (before the server strips surrounding white space) is what
    the server accepts: text_problem on the stripped text, and its minimum length."""
    stripped = text.strip()
    accepted = text_problem(stripped, multiline=multiline) is None and len(stripped) >= minimum
    pattern = re.compile(human_text_pattern(minimum, multiline=multiline))
    assert bool(pattern.match(text)) == accepted


@pytest.mark.parametrize("text", ["ab", " \u200bab", "a\u0301bc", "\u0301ab", "ab\u202e", " abc ", "\tabc\n", "a\nb", "ab\u0300"])
@pytest.mark.parametrize("minimum", [1, 3])
@pytest.mark.parametrize("multiline", [False, True], ids=["one line", "multi-line"])
def test_the_schema_pattern_agrees_on_the_edges(text: str, minimum: int, multiline: bool) -> None:
    stripped = text.strip()
    accepted = text_problem(stripped, multiline=multiline) is None and len(stripped) >= minimum
    assert bool(re.match(human_text_pattern(minimum, multiline=multiline), text)) == accepted
