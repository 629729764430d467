from __future__ import annotations

import logging

from netd.logfmt import LogfmtFormatter


def test_logfmt_line_quotes_what_needs_it() -> None:
    rec = logging.LogRecord("netd.daemon", logging.INFO, __file__, 1,
                            'created pod "default/web-0"', None, None)
    line = LogfmtFormatter().format(rec)
    assert line.startswith("ts=") and line.endswith(
        'level=INFO logger=netd.daemon msg="created pod \\"default/web-0\\""')
    rec2 = logging.LogRecord("netd.x", logging.WARNING, __file__, 1, "ok", None, None)
    assert LogfmtFormatter().format(rec2).endswith("level=WARNING logger=netd.x msg=ok")
