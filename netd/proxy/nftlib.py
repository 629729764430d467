"""libnftables through ctypes: one persistent nft context per node, on a thread of its
own that lives inside the node's network namespace.

Why: `nsenter … nft -f -` costs a process start, nft's own start-up and a fresh read of
the table into nft's cache for every transaction; with 10,000 service ports that was
most of a partial sync. libnftables (`libnftables.so.1`, Debian's libnftables1, which
the nftables package depends on) runs the same text in-process. Its netlink socket is
opened in whatever network namespace the calling thread is in, so each node gets a
dedicated thread that enters the node's namespace once and never leaves: every call on
that context runs there, never on the event loop (ctypes releases the GIL while nft
parses and the kernel commits).

nft 1.0.6 keeps its cache in the context but re-reads it whenever the ruleset
generation moved, and every commit moves it: so each transaction still fetches what
its commands need (the table, its chains and sets; rule and element dumps only for
commands that need them, which netd never sends in a partial sync).

`load()` returns None when the library is missing; nftapply then falls back to the
`nft -f -` subprocess.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from netd.node import nsexec

log = logging.getLogger("netd.proxy.nftlib")

T = TypeVar("T")
NFT_CTX_DEFAULT = 0
NFT_CTX_OUTPUT_TERSE = 1 << 11     # libnftables.h: listings without set elements

_lib: ctypes.CDLL | None = None
_lib_error: str | None = None
_lib_lock = threading.Lock()


class NftLibError(RuntimeError):
    pass


def load() -> ctypes.CDLL | None:
    """The library, or None (logged once) when it cannot be loaded."""
    global _lib, _lib_error
    with _lib_lock:
        if _lib is not None or _lib_error is not None:
            return _lib
        if os.environ.get("NETD_NFT_SUBPROCESS"):
            _lib_error = "disabled by NETD_NFT_SUBPROCESS"
            return None
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_free.restype = None
            for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
                getattr(lib, fn).argtypes = [ctypes.c_void_p]
                getattr(lib, fn).restype = ctypes.c_int
            for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
                getattr(lib, fn).argtypes = [ctypes.c_void_p]
                getattr(lib, fn).restype = ctypes.c_char_p
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            lib.nft_ctx_output_set_flags.restype = None
            lib.nft_ctx_output_get_flags.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_output_get_flags.restype = ctypes.c_uint
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        except (OSError, AttributeError) as exc:
            _lib_error = str(exc)
            log.warning("libnftables unavailable (%s): using the nft command", exc)
            return None
        _lib = lib
        return lib


class NftContext:
    """One nft context bound to one network namespace (None: the daemon's own)."""

    def __init__(self, lib: ctypes.CDLL, netns_path: str | None) -> None:
        self.netns_path = netns_path
        self._lib = lib
        self._ctx: int | None = None
        self._pool = ThreadPoolExecutor(max_workers=1,
                                        thread_name_prefix=f"nft:{netns_path or 'host'}")
        # The thread enters the namespace first, then opens the context there; an
        # error here (namespace gone) surfaces on the first call.
        self._ready = self._pool.submit(self._open)

    def _open(self) -> None:
        if self.netns_path is not None:
            nsexec.enter(self.netns_path, nsexec.CLONE_NEWNET)
        ctx = self._lib.nft_ctx_new(NFT_CTX_DEFAULT)
        if not ctx:
            raise NftLibError("nft_ctx_new failed")
        self._lib.nft_ctx_buffer_output(ctx)
        self._lib.nft_ctx_buffer_error(ctx)
        self._ctx = ctx

    def _run(self, text: str, terse: bool) -> str:
        self._ready.result()
        lib, ctx = self._lib, self._ctx
        assert ctx is not None
        flags = lib.nft_ctx_output_get_flags(ctx)
        want = flags | NFT_CTX_OUTPUT_TERSE if terse else flags & ~NFT_CTX_OUTPUT_TERSE
        if want != flags:
            lib.nft_ctx_output_set_flags(ctx, want)
        rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
        # Reading a buffer also empties it for the next command.
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        if rc != 0:
            raise NftLibError(err.strip() or f"nft failed ({rc})")
        return out

    def run_sync(self, text: str, terse: bool = False) -> str:
        return self._pool.submit(self._run, text, terse).result()

    async def run(self, text: str, terse: bool = False) -> str:
        return await asyncio.wrap_future(self._pool.submit(self._run, text, terse))

    def close(self) -> None:
        def free() -> None:
            if self._ctx is not None:
                self._lib.nft_ctx_free(self._ctx)
                self._ctx = None
        try:
            self._pool.submit(free).result()
        except Exception:  # noqa: BLE001 - the context never opened; nothing to free
            log.debug("nft context for %s was not open", self.netns_path, exc_info=True)
        self._pool.shutdown(wait=True)


_contexts: dict[str | None, tuple[int, NftContext]] = {}
_contexts_lock = threading.Lock()


def _ns_id(netns_path: str | None) -> int:
    # A namespace deleted and made again under the same path is another namespace: the
    # old context would program a dead one.
    return os.stat(netns_path).st_ino if netns_path is not None else 0


def context(netns_path: str | None) -> NftContext | None:
    """The shared context of a namespace (created on first use), or None without
    the library."""
    lib = load()
    if lib is None:
        return None
    ns = _ns_id(netns_path)
    stale = None
    with _contexts_lock:
        entry = _contexts.get(netns_path)
        if entry is not None and entry[0] != ns:
            stale, entry = entry[1], None
        if entry is None:
            entry = _contexts[netns_path] = (ns, NftContext(lib, netns_path))
    if stale is not None:
        stale.close()
    return entry[1]


def drop(netns_path: str | None) -> None:
    """Forget (and free) a namespace's context: after a failure, or when the node goes."""
    with _contexts_lock:
        entry = _contexts.pop(netns_path, None)
    if entry is not None:
        entry[1].close()
