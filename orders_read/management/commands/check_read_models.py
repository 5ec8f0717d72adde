"""``check_read_models``: compare every view with the same query on the write tables."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from orders_read import read_models, verification


class Command(BaseCommand):
    help = (
        "Compare each read model with its query run on the write tables now; "
        "print the differences and exit non-zero when there is any."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("views", nargs="*", help="views to check (default: all)")
        parser.add_argument(
            "--database",
            default=DEFAULT_DB_ALIAS,
            help="the database to check on, e.g. a read replica's replica_1 (default: default)",
        )

    def handle(self, *args, views: list[str], database: str, **options) -> None:
        try:
            read_models.named(views)
        except read_models.UnknownReadModel as error:
            raise CommandError(error.message) from None
        if database not in connections:
            raise CommandError(f"Unknown database {database!r}. Known: {', '.join(connections)}.")
        failed = 0
        for result in verification.check_all(views or None, using=database):
            if result.ok:
                self.stdout.write(f"{result.view}: ok")
                continue
            failed += 1
            self.stdout.write(
                self.style.ERROR(
                    f"{result.view}: {result.total_differences + len(result.count_differences)}"
                    " differences"
                )
            )
            self.stdout.write("  columns: " + ", ".join(result.columns))
            for label, rows in (("missing", result.missing), ("unexpected", result.unexpected)):
                for row in rows:
                    self.stdout.write(f"  {label}: {row!r}")
            for value, (kept, true) in result.count_differences.items():
                self.stdout.write(f"  count of {value!r}: kept {kept}, true {true}")
        if failed:
            raise CommandError(
                f"{failed} read model(s) differ from the write tables; "
                "`manage.py refresh_views` repairs them."
            )
