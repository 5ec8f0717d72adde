from django.apps import AppConfig


class OrdersReadConfig(AppConfig):
    name = "orders_read"
    verbose_name = "Orders (read side)"

    def ready(self) -> None:
        from orders_read import handlers
        from orders_write.events import bulk_loaded, events_committed

        events_committed.connect(
            handlers.on_events_committed, dispatch_uid="orders_read.refresh_after_write"
        )
        bulk_loaded.connect(
            handlers.on_bulk_loaded, dispatch_uid="orders_read.rebuild_after_bulk_load"
        )
