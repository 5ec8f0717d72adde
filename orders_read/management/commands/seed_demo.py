"""``seed_demo --orders N``: demo products, batches and orders (and a demo login)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from orders_read import demo


class Command(BaseCommand):
    help = "Load demo products, batches and N orders; seeding again adds only what is missing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=int, default=24, help="how many demo orders")
        parser.add_argument(
            "--demo-user",
            action="store_true",
            help=f"create the staff user '{demo.DEMO_USERNAME}' with a new password, and print it",
        )

    def handle(self, *args, orders: int, demo_user: bool, **options) -> None:
        if orders < 0:
            raise CommandError("--orders must not be negative")
        demo.seed_catalogue()
        created = demo.seed_orders(
            orders,
            progress=lambda numbers: tqdm(
                numbers, desc="orders", unit="order", disable=options["verbosity"] == 0
            ),
        )
        self.stdout.write(f"{created} new demo orders ({orders} wanted).")
        if demo_user:
            username, password = demo.reset_demo_user()
            self.stdout.write(
                self.style.SUCCESS(f"Demo login: username {username}  password {password}")
            )
