"""`SharedValues.name`: equal header names become one object, within the table's bounds."""

from __future__ import annotations

from gateway._shared_values import SharedValues


def _copy(b: bytes) -> bytes:
    return bytes(bytearray(b))  # an equal object that is not the same one


def _share(table: SharedValues, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    # As the server's `on_header` does: a lookup in the table, `name` on a miss.
    return [(table.names.get(name) or table.name(name), value) for name, value in headers]


def test_equal_names_become_the_first_object_seen() -> None:
    table = SharedValues()
    first = _share(table, [(_copy(b"content-type"), b"a"), (_copy(b"authorization"), b"b")])
    second = _share(table, [(_copy(b"content-type"), b"c"), (_copy(b"x-other"), b"d"),
                            (_copy(b"authorization"), b"e")])
    assert second[0][0] is first[0][0] and second[2][0] is first[1][0]
    assert [v for _, v in second] == [b"c", b"d", b"e"]


def test_long_names_and_a_full_table_are_left_as_they_are() -> None:
    table = SharedValues(limit=2)
    long = _copy(b"x" * (SharedValues.MAX_NAME_BYTES + 1))
    headers = _share(table, [(long, b"1"), (_copy(b"a"), b"2"), (_copy(b"b"), b"3"), (_copy(b"c"), b"4")])
    again = _share(table, [(_copy(long), b"1"), (_copy(b"a"), b"2"), (_copy(b"c"), b"4")])
    assert again[0][0] is not headers[0][0]  # too long to keep
    assert again[1][0] is headers[1][0]
    assert again[2][0] is not headers[3][0]  # the table was full when it came
