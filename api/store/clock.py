"""The one clock: every timestamp the store, keys and workflow record has this form."""
import datetime


def now_iso():
    """UTC, microseconds, with a Z: sorts as text in time order."""
    return iso(datetime.datetime.now(datetime.UTC))


def iso(moment):
    """An aware datetime in the form now_iso() writes, so that it compares with them as text."""
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
