"""``seed_demo --orders N``: demo products, batches and orders (and a demo login)."""

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from orders_write import demo


class Command(BaseCommand):
    help = (
        "Load a demo catalogue, stock and N orders (bulk-loaded, allocated by the rules), "
        "then rebuild the read models; seeding again adds only what is missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, default=24, help="how many demo orders")
        parser.add_argument(
            "--demo-user",
            action="store_true",
            help=f"create the staff user '{demo.DEMO_USERNAME}' with a new password, and print it",
        )

    def handle(self, *args, orders: int, demo_user: bool, verbosity: int, **options) -> None:
        if orders < 0:
            raise CommandError("--orders must not be negative")
        demo.seed_catalogue(orders)
        with tqdm(total=orders, desc="orders", unit="order", disable=verbosity == 0) as bar:
            bar.update(min(orders, demo.existing_orders()))
            load = demo.seed_orders(orders, progress=bar.update, stage=bar.set_postfix_str)
        if load.created:
            rebuilt = "indexes and foreign keys rebuilt, " if load.rebuilt_indexes else ""
            self.stdout.write(
                f"Loaded {load.created} orders, {load.lines} lines, {load.allocations}"
                f" allocations and {load.events} events in {load.loading_seconds:.1f} s;"
                f" {rebuilt}tables analysed in {load.indexing_seconds:.1f} s."
            )
            started = time.monotonic()
            for outcome in demo.announce(load):
                self.stdout.write(str(outcome))
            self.stdout.write(f"Read models rebuilt in {time.monotonic() - started:.1f} s.")
        self.stdout.write(f"{load.created} new demo orders ({orders} wanted).")
        if demo_user:
            username, password = demo.reset_demo_user()
            self.stdout.write(
                self.style.SUCCESS(f"Demo login: username {username}  password {password}")
            )
