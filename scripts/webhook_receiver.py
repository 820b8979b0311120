#!/usr/bin/env python3
"""A webhook receiver for trying printfarm out: prints each delivery's type and whether its
Standard Webhooks signature verifies. Answers 200. The standard library only (no `pip install`,
which Debian's and Ubuntu's system Python refuse): the signature is HMAC-SHA256 of
`{webhook-id}.{webhook-timestamp}.{body}` with the base64 secret after `whsec_`, as the Standard
Webhooks specification defines it.

Usage: WEBHOOK_SECRET=whsec_... scripts/webhook_receiver.py [port]   (default 9000)
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = os.environ.get("WEBHOOK_SECRET")
TOLERANCE_SECS = 5 * 60


def verify(secret, headers, body):
    """Raises ValueError unless one of the `v1,` signatures is the body's, made in time."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    message_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not message_id or not timestamp.isdigit():
        raise ValueError("webhook-id or webhook-timestamp missing")
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECS:
        raise ValueError("timestamp too far from now")
    signed = f"{message_id}.{timestamp}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for signature in headers.get("webhook-signature", "").split():
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise ValueError("no signature matches")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        verdict = "no WEBHOOK_SECRET set"
        if SECRET:
            try:
                verify(SECRET, {k.lower(): v for k, v in self.headers.items()}, body)
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
