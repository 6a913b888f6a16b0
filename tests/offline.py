"""A model URL that fails at once without DNS or any outside host.

``https://name.invalid/...`` needs the system resolver, which can stall for many seconds on a
machine whose DNS server does not answer (``getaddrinfo`` ignores socket timeouts). A TCP port
on the loopback address that is bound but not listening refuses every connection immediately,
and nothing else can take it while it stays bound: this module holds it for the whole session.
"""

from __future__ import annotations

import atexit
import socket

_RESERVED = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
_RESERVED.bind(("127.0.0.1", 0))  # never listen(): connections are refused (RST), not queued
atexit.register(_RESERVED.close)

#: Port on 127.0.0.1 that refuses connections for as long as the test session runs.
REFUSED_PORT: int = _RESERVED.getsockname()[1]
#: A model handle classified as a URL whose download fails at once.
UNREACHABLE = f"http://127.0.0.1:{REFUSED_PORT}/google/HRNet/camvid-hrnetv2-w48/1"
