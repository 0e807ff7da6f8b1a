"""The one clock: every timestamp the store, keys and workflow record has this form."""
import datetime


def now_iso():
    """UTC, microseconds, with a Z: sorts as text in time order."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
