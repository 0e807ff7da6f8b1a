"""The store: persistence only. `open_store` is the one place that picks the backend."""


def open_store(root, database_url=None, *, durable=True):
    """The store a deployment names: PostgreSQL when `database_url` is given (MEDKB_DATABASE_URL),
    else the files under `root` (MEDKB_DB), which need nothing else.

    `root` is always a local folder: with PostgreSQL it holds what each node keeps for itself
    (derived files, console sessions, webhook state), so every node names its own."""
    if database_url:
        from api.store.postgres import PostgresStore  # psycopg only loads where it is used

        return PostgresStore(database_url, root, durable=durable)
    from api.store.store import Store

    return Store(root, durable=durable)
