"""GoawayWatcher: the server's HTTP/3 control stream read for GOAWAY, from hand-built bytes."""

from __future__ import annotations

import pytest

from mint.http._h3_control import GoawayWatcher

CONTROL = 3  # the server's first unidirectional stream (RFC 9000 section 2.1)
ENCODER = 7
CLIENT_UNI = 2
CLIENT_BIDI = 0


def varint(value: int) -> bytes:
    """RFC 9000 section 16, the shortest encoding."""
    for prefix, size in ((0, 1), (1, 2), (2, 4), (3, 8)):
        if value < 1 << (8 * size - 2):
            return (value | prefix << (8 * size - 2)).to_bytes(size, "big")
    raise ValueError(value)


def frame(frame_type: int, payload: bytes) -> bytes:
    return varint(frame_type) + varint(len(payload)) + payload


SETTINGS = frame(0x04, varint(0x08) + varint(1) + varint(0x01) + varint(0))
GOAWAY_8 = frame(0x07, varint(8))


def control_stream(*frames: bytes) -> bytes:
    return varint(0x00) + b"".join(frames)


def test_goaway_after_settings() -> None:
    watcher = GoawayWatcher()
    assert watcher.feed(CONTROL, control_stream(SETTINGS)) is None
    assert watcher.feed(CONTROL, GOAWAY_8) == 8


@pytest.mark.parametrize("cut", range(1, len(control_stream(SETTINGS, GOAWAY_8))))
def test_split_at_every_byte(cut: int) -> None:
    data = control_stream(SETTINGS, GOAWAY_8)
    watcher = GoawayWatcher()
    assert watcher.feed(CONTROL, data[:cut]) is None
    assert watcher.feed(CONTROL, data[cut:]) == 8


def test_one_byte_at_a_time_with_a_long_varint_id() -> None:
    data = control_stream(SETTINGS, frame(0x07, (0xC0 << 56 | 4_000_000_000).to_bytes(8, "big")))
    watcher = GoawayWatcher()
    found = [watcher.feed(CONTROL, data[i : i + 1]) for i in range(len(data))]
    assert found == [None] * (len(data) - 1) + [4_000_000_000]


def test_unknown_frames_are_skipped_without_being_kept() -> None:
    watcher = GoawayWatcher()
    huge = 10 * 2**20
    assert watcher.feed(CONTROL, control_stream(SETTINGS) + varint(0x21) + varint(huge)) is None
    for _ in range(10):
        assert watcher.feed(CONTROL, bytes(2**20)) is None
        assert len(watcher._buffer) == 0  # skipped as it arrives
    assert watcher.feed(CONTROL, GOAWAY_8) == 8


def test_the_lowest_of_several_goaways_in_one_read() -> None:
    watcher = GoawayWatcher()
    data = control_stream(SETTINGS, frame(0x07, varint(12)), frame(0x07, varint(4)), GOAWAY_8)
    assert watcher.feed(CONTROL, data) == 4


def test_other_streams_are_not_read() -> None:
    watcher = GoawayWatcher()
    # A QPACK encoder stream (type 0x02) whose bytes happen to look like a GOAWAY.
    assert watcher.feed(ENCODER, varint(0x02) + GOAWAY_8) is None
    assert watcher.feed(ENCODER, GOAWAY_8) is None
    # Client-initiated streams, and request streams, are never the server's control stream.
    assert watcher.feed(CLIENT_UNI, control_stream(GOAWAY_8)) is None
    assert watcher.feed(CLIENT_BIDI, control_stream(GOAWAY_8)) is None
    # A second control stream (a protocol error aioquic reports) is not read either.
    assert watcher.feed(CONTROL, control_stream(SETTINGS)) is None
    assert watcher.feed(11, control_stream(GOAWAY_8)) is None
    assert watcher.feed(CONTROL, GOAWAY_8) == 8


def test_a_stream_type_split_across_reads() -> None:
    watcher = GoawayWatcher()
    two_byte_control_type = b"\x40\x00"  # 0 in a two-byte encoding: still the control stream
    assert watcher.feed(CONTROL, two_byte_control_type[:1]) is None
    assert watcher.feed(CONTROL, two_byte_control_type[1:] + SETTINGS) is None
    assert watcher.feed(CONTROL, GOAWAY_8) == 8


def test_a_goaway_too_long_for_its_one_integer_is_ignored() -> None:
    watcher = GoawayWatcher()
    bad = frame(0x07, varint(8) + b"\x00")  # a payload longer than its integer
    oversized = varint(0x07) + varint(64) + bytes(64)  # longer than any integer: skipped
    assert watcher.feed(CONTROL, control_stream(SETTINGS, bad, oversized)) is None
    assert watcher.feed(CONTROL, GOAWAY_8) == 8
