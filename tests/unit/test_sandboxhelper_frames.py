"""The sandbox helper's wire format: length-prefixed pickles, split anywhere."""
from __future__ import annotations

import errno

from netd.node.sandboxhelper import frame, unframe


def test_messages_split_at_every_byte_come_out_whole_and_in_order() -> None:
    msgs = [(1, "create", ("k", "default", "web-0", "10.0.0.2", "web-0", ("a", "b"), ())),
            (2, True, None), (3, False, OSError(errno.EEXIST, "exists"))]
    wire = b"".join(frame(m) for m in msgs)
    for cut in range(len(wire) + 1):
        buf = bytearray(wire[:cut])
        got = unframe(buf)
        buf += wire[cut:]
        got += unframe(buf)
        assert not buf
        assert [g[:2] for g in got] == [m[:2] for m in msgs]
        assert got[0] == msgs[0]
        assert isinstance(got[2][2], OSError) and got[2][2].errno == errno.EEXIST


def test_a_partial_message_stays_in_the_buffer() -> None:
    data = frame((7, "delete", ("k", "ns", "pod")))
    buf = bytearray(data[:-1])
    assert unframe(buf) == [] and bytes(buf) == data[:-1]
