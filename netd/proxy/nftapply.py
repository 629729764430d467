"""Run nft inside a node's network namespace: the I/O shell around nftables.py.

Each transaction goes to libnftables in-process (nftlib.py: one persistent context
per namespace on a thread living in it), which the kernel applies atomically or not
at all. Without the library (or with NETD_NFT_SUBPROCESS=1) it falls back to
`nsenter --net=<handle> nft -f -` (argv list, rules on stdin), one process per sync;
in host mode (no node namespace) `nft` runs directly. Only the table named in the
rules is ever touched.
"""
from __future__ import annotations

import asyncio
import logging
import shutil

from netd.proxy import nftlib
from netd.proxy.nftables import RuleSet, parse_names

log = logging.getLogger("netd.proxy.nftapply")

NFT = "nft"


class NftError(RuntimeError):
    pass


def argv(netns_path: str | None, *args: str) -> list[str]:
    nft = shutil.which(NFT) or NFT
    cmd = [nft, *args]
    if netns_path is None:
        return cmd
    return ["nsenter", f"--net={netns_path}", *cmd]


async def run_nft(netns_path: str | None, *args: str, stdin: str | None = None,
                  ok_errors: tuple[str, ...] = ()) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv(netns_path, *args), stdin=asyncio.subprocess.PIPE if stdin is not None else
        asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip()
        if any(s in text for s in ok_errors):
            return ""
        raise NftError(f"nft {' '.join(args)} failed ({proc.returncode}): {text[:2000]}")
    return out.decode(errors="replace")


async def apply(netns_path: str | None, text: str) -> None:
    """One atomic transaction."""
    if not text:
        return
    ctx = nftlib.context(netns_path)
    if ctx is None:
        await run_nft(netns_path, "-f", "-", stdin=text)
        return
    try:
        await ctx.run(text)
    except nftlib.NftLibError as exc:
        # A fresh context for the full resync that follows a failure.
        nftlib.drop(netns_path)
        raise NftError(f"nft transaction failed: {str(exc)[:2000]}") from exc


async def existing(netns_path: str | None, table: str) -> RuleSet:
    """What a previous run left in the table (names only); empty if there is no table."""
    ctx = nftlib.context(netns_path)
    if ctx is None:
        listing = await run_nft(netns_path, "-t", "list", "table", "ip", table,
                                ok_errors=("No such file or directory",))
        return parse_names(listing)
    try:
        # Terse: names and rules, never the (many) map elements.
        listing = await ctx.run(f"list table ip {table}", terse=True)
    except nftlib.NftLibError as exc:
        if "No such file or directory" in str(exc):
            return parse_names("")
        raise NftError(f"nft list table failed: {str(exc)[:2000]}") from exc
    return parse_names(listing)


def release(netns_path: str | None) -> None:
    """Close the namespace's nft context (before the namespace is deleted)."""
    nftlib.drop(netns_path)


async def delete_table(netns_path: str | None, table: str) -> None:
    await run_nft(netns_path, "delete", "table", "ip", table,
                  ok_errors=("No such file or directory",))


def delete_table_sync(netns_path: str | None, table: str) -> None:
    """For `netd down` (synchronous remover)."""
    import subprocess
    proc = subprocess.run(argv(netns_path, "delete", "table", "ip", table),
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 and "No such file or directory" not in proc.stderr:
        log.warning("could not delete nft table %s: %s", table, proc.stderr.strip())
