"""A command caught in the middle, for the fault tests that stop or kill the server
under it: another session holds the product's row, so the command waits on its lock."""

from django.db import connection

from tests.database import other_connection


def hold_the_product(sku: str):
    """Another session holding ``sku``'s product row until rolled back: a command on
    that SKU waits for it, in the middle of its transaction."""
    holder = other_connection()
    with holder.cursor() as cursor:
        cursor.execute("SELECT 1 FROM orders_write_product WHERE sku = %s FOR UPDATE", [sku])
    return holder


def a_command_waits_for_the_product() -> bool:
    """Whether a session (a command) waits for a lock on a product's row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%%orders_write_product%%' AND pid <> pg_backend_pid()"
            " AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0
