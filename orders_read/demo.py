"""Demo data: a small catalogue, stock in the warehouse and on ships, and orders.

Everything goes through the write side's services, under fixed references, so that
seeding again adds only what is missing.
"""

from __future__ import annotations

import datetime
import random
import secrets
from collections.abc import Callable, Iterable
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from orders_write import commands, services
from orders_write.models import Batch, Order, Product

CATALOGUE = [
    ("RED-CHAIR", "Red chair", "49.90"),
    ("BLUE-CHAIR", "Blue chair", "49.90"),
    ("OAK-TABLE", "Oak dining table", "389.00"),
    ("SMALL-TABLE", "Small side table", "79.50"),
    ("DESK-LAMP", "Desk lamp", "24.99"),
    ("FLOOR-LAMP", "Floor lamp", "89.00"),
    ("BOOKCASE", "Five-shelf bookcase", "149.00"),
    ("RUG-2X3", "Wool rug 2 x 3 m", "229.00"),
]
CUSTOMERS = [
    ("Ada Lovelace", "12 St James's Square, London SW1Y 4JH"),
    ("Grace Hopper", "1 Navy Yard, Arlington VA 22202"),
    ("Alan Turing", "Bletchley Park, Milton Keynes MK3 6EB"),
    ("Katherine Johnson", "400 Langley Blvd, Hampton VA 23681"),
    ("Edsger Dijkstra", "Prinsengracht 263, 1016 GV Amsterdam"),
    ("Barbara Liskov", "32 Vassar St, Cambridge MA 02139"),
    ("Donald Knuth", "353 Jane Stanford Way, Stanford CA 94305"),
    ("Margaret Hamilton", "75 Ames St, Cambridge MA 02142"),
]
DEMO_USERNAME = "demo"


def _batches(today: datetime.date) -> list[tuple[str, str, int, datetime.date | None]]:
    """Per product: one batch in the warehouse, one or two on ships."""
    batches = []
    for index, (sku, _, _) in enumerate(CATALOGUE):
        batches.append((f"WH-{sku}", sku, 40 + 10 * (index % 3), None))
        batches.append((f"SHIP-{sku}-1", sku, 60, today + datetime.timedelta(days=7 + index)))
        if index % 2 == 0:
            batches.append((f"SHIP-{sku}-2", sku, 100, today + datetime.timedelta(days=30)))
    return batches


def seed_catalogue() -> None:
    existing_products = set(Product.objects.values_list("sku", flat=True))
    for sku, name, price in CATALOGUE:
        if sku not in existing_products:
            services.create_product(
                commands.CreateProduct(sku=sku, name=name, price=Decimal(price))
            )
    existing_batches = set(Batch.objects.values_list("reference", flat=True))
    for ref, sku, qty, eta in _batches(timezone.localdate()):
        if ref not in existing_batches:
            services.create_batch(commands.CreateBatch(ref=ref, sku=sku, qty=qty, eta=eta))


def demo_order_reference(number: int) -> str:
    return f"DEMO-{number:05d}"


def seed_orders(count: int, *, progress: Callable[[Iterable[int]], Iterable[int]] = iter) -> int:
    """Place ``count`` demo orders (most submitted, some cancelled); returns how many were new."""
    wanted = {demo_order_reference(number): number for number in range(1, count + 1)}
    existing = set(Order.objects.filter(reference__in=wanted).values_list("reference", flat=True))
    created = 0
    for number in progress(range(1, count + 1)):
        reference = demo_order_reference(number)
        if reference in existing:
            continue
        rng = random.Random(number)  # the same order every time it is seeded
        customer, address = rng.choice(CUSTOMERS)
        products = rng.sample(CATALOGUE, k=rng.randint(1, 3))
        lines = tuple(
            commands.OrderLineInput(sku=sku, qty=rng.randint(1, 4)) for sku, _, _ in products
        )
        services.place_order(
            commands.PlaceOrder(
                customer=customer, shipping_address=address, lines=lines, reference=reference
            )
        )
        fate = rng.random()
        if fate < 0.8:
            services.submit_order(commands.SubmitOrder(reference=reference))
        if fate > 0.9:
            services.cancel_order(commands.CancelOrder(reference=reference))
        created += 1
    return created


def reset_demo_user() -> tuple[str, str]:
    """Create the demo staff user, or give it a fresh password; returns the login."""
    password = secrets.token_urlsafe(12)
    user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    user.groups.set(Group.objects.filter(name__in=["clerks", "viewers"]))
    return DEMO_USERNAME, password
