"""JSON text that is safe inside an HTML `<script>` block (see api/web/safejson.py for why)."""

_ESCAPES = ((b"&", b"\\u0026"), (b"<", b"\\u003c"), (b">", b"\\u003e"))


def script_safe(body: bytes) -> bytes:
    """`body` (JSON text) with `<`, `>` and `&` escaped; the same JSON value."""
    for raw, escaped in _ESCAPES:
        if raw in body:  # most bodies have none: a scan is cheaper than a copy
            body = body.replace(raw, escaped)
    return body
