"""`netd exec` and `netd logs`: kubectl's exec (WebSocket, v5.channel.k8s.io) and logs
over the same socket/kubeconfig route as the other client commands; stdlib only.

`netd exec` exits with the command's exit code (printing kubectl's "command terminated
with exit code N"), `netd logs -f` streams until the container ends.
"""
from __future__ import annotations

import argparse
import os
import signal
import struct
import sys
import threading
from typing import Any, TextIO
from urllib.parse import quote, urlencode

from netd.apiserver import wsproto
from netd.cli.http import JSON, USER_AGENT, ApiError, Client, Unreachable, error_from_response

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


def _pod_path(ns: str, pod: str, sub: str) -> str:
    return f"/api/v1/namespaces/{quote(ns)}/pods/{quote(pod)}/{sub}"


def default_container(pod: dict[str, Any], err: TextIO | None = None) -> str:
    """kubectl's choice: the default-container annotation, else the first container
    (with a note when there are several)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    names = [c.get("name", "") for c in spec.get("containers") or []]
    chosen = (meta.get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if chosen and chosen in names:
        return chosen
    if len(names) > 1 and err is not None:
        err.write(f'Defaulted container "{names[0]}" out of: {", ".join(names)}\n')
    return names[0] if names else ""


# ---- exec ----------------------------------------------------------------------------

class _WsConn:
    """A client WebSocket on an already connected socket (plain or TLS)."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.reader = wsproto.FrameReader()
        self._lock = threading.Lock()
        self.pending: list[tuple[int, bytes]] = []   # messages that came with the 101

    def send(self, opcode: int, payload: bytes) -> None:
        frame = wsproto.ws_frame(opcode, payload, mask=os.urandom(4))
        with self._lock:
            self.sock.sendall(frame)

    def channel(self, channel: int, data: bytes) -> None:
        self.send(wsproto.OP_BINARY, wsproto.encode(channel, data))


def _handshake(client: Client, path: str, query: list[tuple[str, str]]) -> tuple[_WsConn, str]:
    conn = client._connect(None)          # the route the other commands use
    if conn.sock is None:
        try:
            conn.connect()
        except OSError as exc:
            raise Unreachable(f"{client.address}: {exc}") from None
    sock = conn.sock
    key = wsproto.ws_key()
    headers = {"Host": "localhost", "User-Agent": USER_AGENT, "Upgrade": "websocket",
               "Connection": "Upgrade", "Sec-WebSocket-Key": key,
               "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Protocol": ", ".join(wsproto.EXEC_PROTOCOLS)}
    token = client._token
    if token:
        headers["Authorization"] = f"Bearer {token}"
    head = f"GET {path}?{urlencode(query)} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise Unreachable(f"{client.address}: connection closed during the upgrade")
        buf += chunk
    raw_head, rest = buf.split(b"\r\n\r\n", 1)
    lines = raw_head.decode("latin-1").split("\r\n")
    code = int(lines[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in
              (line.partition(":") for line in lines[1:])}
    if code != 101:
        length = int(fields.get("content-length", "0") or 0)
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        raise error_from_response(code, rest[:length] if length else rest)
    if fields.get("sec-websocket-accept") != wsproto.ws_accept(key):
        raise Unreachable(f"{client.address}: bad WebSocket handshake")
    ws = _WsConn(sock)
    ws.pending = ws.reader.feed(rest) if rest else []
    return ws, fields.get("sec-websocket-protocol", "")


def _terminal_size() -> wsproto.Size | None:
    try:
        cols, rows = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return wsproto.Size(cols, rows)


def _pump_stdin(ws: _WsConn, v5: bool) -> None:
    fd = sys.stdin.fileno()
    try:
        while True:
            data = os.read(fd, 32 * 1024)
            if not data:
                break
            ws.channel(wsproto.STDIN, data)
        if v5:
            ws.channel(wsproto.CLOSE, bytes((wsproto.STDIN,)))
    except OSError:
        pass


def _namespace(client: Client, args: argparse.Namespace) -> str:
    return getattr(args, "namespace", None) or client.default_namespace


def cmd_exec(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if not args.command:
        err.write("error: you must specify at least one command for the container\n")
        return 1
    ns = _namespace(client, args)
    pod = client.get(_pod_path(ns, args.pod, "")[:-1])
    container = args.container or default_container(pod, err)
    tty = bool(args.tty and args.stdin and os.isatty(sys.stdin.fileno()))
    if args.tty and not tty:
        err.write("Unable to use a TTY - input is not a terminal or the right kind of "
                  "file\n")
    query = [("command", c) for c in args.command] + [
        ("container", container), ("stdout", "true"),
        ("stderr", "false" if tty else "true"), ("stdin", "true" if args.stdin else "false"),
        ("tty", "true" if tty else "false")]
    ws, proto = _handshake(client, _pod_path(ns, args.pod, "exec"), query)
    return _session(ws, proto == wsproto.V5, args.stdin, tty, err)


def _session(ws: _WsConn, v5: bool, stdin: bool, tty: bool, err: TextIO) -> int:
    saved = None
    if tty:
        import termios
        import tty as ttymod
        saved = termios.tcgetattr(sys.stdin.fileno())
        ttymod.setraw(sys.stdin.fileno())
        size = _terminal_size()
        if size:
            ws.channel(wsproto.RESIZE, wsproto.encode_resize(size))

        def on_winch(*_: Any) -> None:
            new = _terminal_size()
            if new:
                ws.channel(wsproto.RESIZE, wsproto.encode_resize(new))

        signal.signal(signal.SIGWINCH, on_winch)
    if stdin:
        threading.Thread(target=_pump_stdin, args=(ws, v5), daemon=True).start()
    status: bytes = b""
    outs = {wsproto.STDOUT: sys.stdout.buffer, wsproto.STDERR: sys.stderr.buffer}
    try:
        messages = ws.pending
        while True:
            for op, payload in messages:
                if op == wsproto.OP_PING:
                    ws.send(wsproto.OP_PONG, payload)
                elif op == wsproto.OP_CLOSE:
                    raise EOFError
                elif op == wsproto.OP_BINARY and payload:
                    ch, data = wsproto.decode(payload)
                    if ch in outs:
                        outs[ch].write(data)
                        outs[ch].flush()
                    elif ch == wsproto.ERROR:
                        status += data
            chunk = ws.sock.recv(65536)
            if not chunk:
                break
            messages = ws.reader.feed(chunk)
    except EOFError:
        pass
    finally:
        if saved is not None:
            import termios
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
        try:
            ws.send(wsproto.OP_CLOSE, wsproto.close_payload())
        except OSError:
            pass
        ws.sock.close()
    return _exit_from_status(status, err)


def _exit_from_status(raw: bytes, err: TextIO) -> int:
    import json
    if not raw.strip():
        return 0
    try:
        status = json.loads(raw)
    except ValueError:
        err.write(f"error: {raw.decode('utf-8', 'replace')}\n")
        return 1
    code = wsproto.status_exit_code(status)
    if code is None:
        err.write(f"error: {status.get('message', 'unknown error')}\n")
        return 1
    if code:
        err.write(f"command terminated with exit code {code}\n")
    return code


# ---- logs ----------------------------------------------------------------------------

def cmd_logs(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    ns = _namespace(client, args)
    pod = client.get(_pod_path(ns, args.pod, "")[:-1])
    container = args.container or default_container(pod, err)
    query: dict[str, Any] = {"container": container}
    if args.follow:
        query["follow"] = "true"
    if args.previous:
        query["previous"] = "true"
    if args.timestamps:
        query["timestamps"] = "true"
    if args.tail is not None and args.tail >= 0:
        query["tailLines"] = str(args.tail)
    conn, resp = client._send("GET", _pod_path(ns, args.pod, "log"), query, None, JSON,
                              "*/*", None)
    try:
        if not 200 <= resp.status < 300:
            raise error_from_response(resp.status, resp.read())
        sink = getattr(out, "buffer", None)
        while True:
            chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not chunk:
                break
            if sink is not None:
                sink.write(chunk)
                sink.flush()
            else:
                out.write(chunk.decode("utf-8", "replace"))
    finally:
        conn.close()
    return 0


def add_parsers(sub: Any) -> None:
    # Imported here: netd.cli.commands registers these parsers and may import this
    # module at its top.
    from netd.cli.commands import _common, run

    ex = sub.add_parser("exec", help="run a command in a pod's container (kubectl exec)")
    _common(ex)
    ex.add_argument("pod")
    ex.add_argument("-c", "--container", default="")
    ex.add_argument("-i", "--stdin", action="store_true", help="pass stdin to the command")
    ex.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    ex.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    ex.set_defaults(func=lambda a: run(cmd_exec, _strip_dashes(a)))
    lg = sub.add_parser("logs", help="print a container's log (kubectl logs)")
    _common(lg)
    lg.add_argument("pod")
    lg.add_argument("-c", "--container", default="")
    lg.add_argument("-f", "--follow", action="store_true")
    lg.add_argument("-p", "--previous", action="store_true")
    lg.add_argument("--timestamps", action="store_true")
    lg.add_argument("--tail", type=int, default=None)
    lg.set_defaults(func=lambda a: run(cmd_logs, a))


def _strip_dashes(args: argparse.Namespace) -> argparse.Namespace:
    """REMAINDER also swallows flags written after POD (`netd exec web -c c -- ls`, as
    kubectl allows): take them back from before the `--`."""
    cmd = list(args.command or [])
    if "--" in cmd:
        flags, cmd = cmd[:cmd.index("--")], cmd[cmd.index("--") + 1:]
        late = argparse.ArgumentParser(add_help=False)
        late.add_argument("-c", "--container", default=args.container)
        late.add_argument("-i", "--stdin", action="store_true", default=args.stdin)
        late.add_argument("-t", "--tty", action="store_true", default=args.tty)
        late.add_argument("-n", "--namespace", default=args.namespace)
        known = late.parse_args(flags)
        args.container, args.stdin, args.tty, args.namespace = (
            known.container, known.stdin, known.tty, known.namespace)
    args.command = cmd
    return args


__all__ = ["add_parsers", "cmd_exec", "cmd_logs", "default_container", "ApiError"]
