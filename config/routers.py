"""Which database Django uses for what, once read replicas are configured (aliases
``replica_1`` …, see config/replicas.py).

Everything writes to ``default``, the primary, and no migration ever runs on a replica:
a hot standby takes no writes, and it receives the primary's schema by streaming. Reads
go to ``default`` unless a router before this one, or ``using()``, sends them elsewhere.
"""

from config.replicas import is_replica


class PrimaryRouter:
    def db_for_write(self, model, **hints) -> str:
        return "default"

    def allow_migrate(self, db: str, app_label: str, model_name=None, **hints) -> bool | None:
        return False if is_replica(db) else None
