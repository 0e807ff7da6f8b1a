"""JSON that is safe inside an HTML `<script>` block, for every body the API sends.

Consumers embed our JSON in pages (JSON-LD in `<script type="application/ld+json">`, server-side
state in `<script>`); a string holding `</script>` or `<!--` would end or change that block.
Escaping `<`, `>` and `&` as `\\u003c`, `\\u003e`, `\\u0026` keeps the same JSON value. Those
three bytes only ever occur inside strings in JSON text (never in its syntax, and UTF-8 never
uses ASCII bytes inside multi-byte characters), so a plain byte replacement is exact.
"""
from flask.json.provider import DefaultJSONProvider

from api.knowledge.jsontext import script_safe

__all__ = ["ScriptSafeJSONProvider", "script_safe"]

class ScriptSafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON (flask-smorest responses, problem+json) with the same escaping."""

    def dumps(self, obj, **kwargs):
        text = super().dumps(obj, **kwargs)
        return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
