"""Writing to a non-blocking descriptor from the event loop without a transport.

A container's stdin pipe and a terminal's master are written this way (netd.node.
containerio, netd.apiserver.execproc): uvloop's write-pipe transport reads its
descriptor to notice a close, and on a pty master that read swallows the output
meant for the reader of the same terminal."""
from __future__ import annotations

import asyncio
import os


class FdWriter:
    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd

    async def write(self, data: bytes) -> None:
        """Write all of `data`, waiting while the descriptor is full; BrokenPipeError
        when nobody reads any more."""
        view = memoryview(data)
        while view:
            if self.fd < 0:
                raise BrokenPipeError("closed")
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                await self._writable()
                continue
            view = view[n:]

    def write_nowait(self, data: bytes) -> None:
        """Best effort, never waits (a last ^D before closing)."""
        try:
            os.write(self.fd, data)
        except OSError:
            pass

    async def _writable(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = self.fd

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(fd, wake)
        try:
            await ready
        finally:
            loop.remove_writer(fd)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
