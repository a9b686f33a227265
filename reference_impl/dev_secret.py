"""``serve --dev`` on PostgreSQL: the generated signing secret is a row of the database, so every
instance that starts with ``--dev`` on that database signs with the same one (the first one stored wins)."""

from __future__ import annotations

import secrets

from .secret_key import check_secret
from .store import DatabaseStore

_SCHEMA = ("CREATE TABLE IF NOT EXISTS dev_secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL)",)
NAME = "signing"
WHERE = "the database's dev_secrets table"


class DevSecretStore(DatabaseStore):
    """The ``dev_secrets`` table: generated secrets by name."""

    SCHEMA = _SCHEMA
    POSTGRES_SCHEMA = _SCHEMA


def load_or_create_shared_dev_secret(url: str) -> str:
    """The development signing secret stored in the database at ``url``, created if there is none yet.

    Instances that start together each offer a candidate; the database keeps the first (``ON CONFLICT
    DO NOTHING``) and every one of them reads that one back.
    """
    store = DevSecretStore(url)
    try:
        store.execute(
            "INSERT INTO dev_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (NAME, secrets.token_urlsafe(48)),
        )
        row = store.fetchone("SELECT value FROM dev_secrets WHERE name = ?", (NAME,))
    finally:
        store.close()
    return check_secret(row[0])
