"""The text log line: one line whatever the message holds."""

from pyrunc.log import _quote


def test_control_characters_are_escaped_as_go_quotes_them():
    assert _quote('id \r\n\t"x"\\') == r'"id \r\n\t\"x\"\\"'
    assert _quote("\x01\x1f\x7f") == r'"\x01\x1f\x7f"'


def test_printable_text_is_unchanged():
    assert _quote("invalid container id format: é/ü") == '"invalid container id format: é/ü"'
