"""A writer process for the concurrency and crash tests: `python store_worker.py STORE NAME COUNT LOG DOC...`.
STORE is the store folder; with MEDKB_DATABASE_URL set, the store is that database (as in a deployment).

Writes COUNT new revisions spread over the FAQ documents named, each with an answer
unique to this write, and appends a line to LOG (flushed and fsynced) only once the
store has acknowledged the write. Whatever LOG lists must be in the store.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.services.documents import Documents
from api.store import open_store  # noqa: E402
from api.store.store import Conflict  # noqa: E402


def main(store_path, name, count, log_path, *faq_ids):
    store = open_store(store_path, os.environ.get("MEDKB_DATABASE_URL"))
    with open(log_path, "a") as log:
        for i in range(int(count)):
            faq_id = faq_ids[i % len(faq_ids)]
            answer = f"{name} write {i}"
            while True:
                head = store.head("faq", faq_id)
                try:
                    change = Documents(store).write(dict(head.content, answer=answer), expected_revision=head.revision,
                                         actor=name, message=f"write {i}")
                    break
                except Conflict:
                    continue  # another process got there first: re-read and try again
            log.write(f"{faq_id} {change.revision} {change.seq} {answer}\n")
            log.flush()
            os.fsync(log.fileno())


if __name__ == "__main__":
    main(*sys.argv[1:])
