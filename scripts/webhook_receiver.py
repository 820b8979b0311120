#!/usr/bin/env python3
"""A webhook receiver for trying printfarm out: prints each delivery's type and whether its
Standard Webhooks signature verifies (with the PyPI `standardwebhooks` package, installed if
missing). Answers 200.

Usage: WEBHOOK_SECRET=whsec_... scripts/webhook_receiver.py [port]   (default 9000)
"""

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "standardwebhooks"], check=True)
    from standardwebhooks.webhooks import Webhook

SECRET = os.environ.get("WEBHOOK_SECRET")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        verdict = "no WEBHOOK_SECRET set"
        if SECRET:
            try:
                Webhook(SECRET).verify(body, {k.lower(): v for k, v in self.headers.items()})
                verdict = "signature ok"
            except Exception as error:
                verdict = f"SIGNATURE INVALID: {error}"
        event = json.loads(body)
        entity = next(iter(event["data"].get("entities", {}).values()), {})
        state = entity.get("state") or entity.get("status") or ""
        print(f"{self.headers['webhook-id']}  {event['type']:<24} {state:<10} {verdict}", flush=True)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
print(f"listening on http://127.0.0.1:{port}/", flush=True)
HTTPServer(("127.0.0.1", port), Handler).serve_forever()
