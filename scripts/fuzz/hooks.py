"""Schemathesis hooks for scripts/schemathesis.sh.

A valid Idempotency-Key the fuzzer sends is made unique per request: the same key with a
different request is refused by design (422 idempotency_key_reused), and the fuzzer, which
draws keys from a small space, would otherwise reuse them across unrelated requests. Invalid keys
(negative tests) are left as they are. This runs just before each request is sent, so it covers
every phase (examples, coverage, fuzzing, stateful), not only generated headers.
"""
import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        value = headers[name]
        if name.lower() == "idempotency-key" and isinstance(value, str) and VALID_KEY.match(value):
            headers[name] = f"{value[:238]}.{uuid.uuid4().hex[:16]}"
