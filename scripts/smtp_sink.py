#!/usr/bin/env python3
"""A real SMTP server for the tests (PyPI `aiosmtpd`): takes every message on 127.0.0.1:PORT
and prints it as one JSON line {"from", "to", "data"} on standard output. Prints
{"ready": PORT} once listening; stops when standard input closes. Installs aiosmtpd if missing.

Usage: smtp_sink.py PORT
"""

import json
import subprocess
import sys

try:
    from aiosmtpd.controller import Controller
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "aiosmtpd"], check=True)
    from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        print(
            json.dumps(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "data": envelope.content.decode("utf-8", "replace"),
                }
            ),
            flush=True,
        )
        return "250 Message accepted for delivery"


port = int(sys.argv[1])
controller = Controller(Sink(), hostname="127.0.0.1", port=port)
controller.start()
print(json.dumps({"ready": port}), flush=True)
sys.stdin.read()
controller.stop()
