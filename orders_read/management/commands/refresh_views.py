"""``refresh_views [VIEW ...] [--compact | --full] [--watch]``: refresh read models now, or
keep them fresh."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders_read import read_models, rebuilds, refresh, watcher
from orders_read.read_models import READ_MODELS


class Command(BaseCommand):
    help = (
        "Refresh the named read models (default: all): their deltas, the rows written since "
        "their bases were built. --compact rebuilds the bases too, CONCURRENTLY; --full "
        "rebuilds them without CONCURRENTLY; --watch keeps refreshing in the background."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("views", nargs="*", help="read models to refresh (default: all)")
        rebuild = parser.add_mutually_exclusive_group()
        rebuild.add_argument(
            "--compact",
            action="store_true",
            help="rebuild the bases as well, CONCURRENTLY (readers keep reading the old ones)",
        )
        rebuild.add_argument(
            "--full",
            action="store_true",
            help="rebuild from scratch (REFRESH without CONCURRENTLY: readers wait meanwhile)",
        )
        parser.add_argument(
            "--watch",
            action="store_true",
            help="stay running: refresh on every write's notification and on a safety interval",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=0,
            help="seconds a refresh may take before it fails (default 0: no limit)",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between safety checks with --watch (default READ_MODEL_WATCH_INTERVAL)",
        )

    def handle(
        self,
        *args,
        views: list[str],
        compact: bool,
        full: bool,
        watch: bool,
        interval,
        timeout,
        **options,
    ):
        try:
            units = read_models.named(views or READ_MODELS)
        except read_models.UnknownReadModel as error:
            raise CommandError(error.message) from None
        if interval is not None and interval <= 0:
            raise CommandError("--interval must be positive")
        if timeout < 0:
            raise CommandError("--timeout must not be negative")
        if watch:
            watcher.watch(units, interval=interval, log=self.stdout.write)
            return
        if compact:
            outcomes = rebuilds.compact(units, wait=True, timeout=timeout)
        else:
            outcomes = (
                rebuilds.rebuild(units, timeout=timeout)
                if full
                else refresh.refresh(units, timeout=timeout)
            )
        for outcome in outcomes:
            self.stdout.write(self.style.ERROR(str(outcome)) if outcome.error else str(outcome))
        if any(outcome.error for outcome in outcomes):
            raise CommandError("some read models could not be refreshed")
