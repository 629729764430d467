"""Structured (logfmt) log lines: `ts=… level=INFO logger=netd.daemon msg="…"`, one
event per line, so logs can be grepped and parsed by machines as well as read."""
from __future__ import annotations

import logging
import sys
import time


def _quote(value: str) -> str:
    if value and all(c.isalnum() or c in "-_./:@%+,=" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        ts += f".{int(record.msecs):03d}Z"
        line = (f"ts={ts} level={record.levelname} logger={record.name} "
                f"msg={_quote(record.getMessage())}")
        if record.exc_info:
            line += " exc=" + _quote(self.formatException(record.exc_info))
        return line


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is off; its error logs keep their own logger names.
