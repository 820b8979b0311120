#!/usr/bin/env python3
"""Verifies one recorded delivery with the Standard Webhooks reference library (PyPI
`standardwebhooks`), so our signatures are checked by an implementation that is not ours.

Usage: verify_standard_webhooks.py SAMPLE.json, where the sample is
{"secret": "whsec_...", "headers": {"webhook-id", "webhook-timestamp", "webhook-signature"},
 "body": "..."}. Installs the package if missing. Exit 0: valid; 1: invalid.
"""

import json
import subprocess
import sys

try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "standardwebhooks"], check=True)
    from standardwebhooks.webhooks import Webhook

with open(sys.argv[1]) as f:
    sample = json.load(f)

try:
    Webhook(sample["secret"]).verify(sample["body"], sample["headers"])
except Exception as error:  # the library raises WebhookVerificationError
    print(f"invalid: {error!r}")
    sys.exit(1)

# A tampered body must fail too, or the check above proves nothing.
try:
    Webhook(sample["secret"]).verify(sample["body"] + " ", sample["headers"])
    print("a tampered body verified")
    sys.exit(1)
except Exception:
    pass
print("valid")
