"""CSV exports of the orders and stock lists, streamed (Django's "Streaming large CSV
files"): rows come from a server-side cursor a chunk at a time and leave as they are
written, so a million orders never sit in this process's memory at once. (Outside a
transaction the cursor is WITH HOLD: PostgreSQL keeps the result on its side.)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

CHUNK_ROWS = 2_000  # rows fetched from the cursor at a time
FLUSH_BYTES = 64 * 1024  # text handed to the server at a time: fewer, larger writes

# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV
# Injection"); a quote in front makes it text. Only text columns can start with them.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

ORDER_COLUMNS: Sequence[tuple[str, str]] = (
    ("reference", "reference"),
    ("customer_name", "customer"),
    ("shipping_address", "shipping_address"),
    ("status", "status"),
    ("line_count", "lines"),
    ("allocated_line_count", "allocated_lines"),
    ("total_quantity", "quantity"),
    ("total_amount", "amount"),
    ("created_at", "created_at"),
)
ORDER_TEXT = {"reference", "customer", "shipping_address"}

STOCK_COLUMNS: Sequence[tuple[str, str]] = (
    ("sku", "sku"),
    ("name", "product"),
    ("price", "price"),
    ("purchased", "purchased"),
    ("allocated", "allocated"),
    ("available", "available"),
    ("available_now", "available_now_in_warehouse"),
    ("next_eta", "next_eta"),
    ("batch_count", "batches"),
)
STOCK_TEXT = {"sku", "product"}


def _safe(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return f"'{value}"
    return value


def csv_chunks(
    header: Sequence[str], rows: Iterable[Sequence[object]], text: set[str]
) -> Iterator[str]:
    """The CSV text of ``header`` and ``rows``, in pieces of about FLUSH_BYTES; the
    ``text`` columns (by header name) are kept from being read as formulas. Dates and
    times are ISO 8601."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    text_columns = [index for index, name in enumerate(header) if name in text]
    for row in rows:
        row = list(row)
        for index in text_columns:
            row[index] = _safe(row[index])
        writer.writerow(
            value.isoformat() if hasattr(value, "isoformat") else value for value in row
        )
        if buffer.tell() >= FLUSH_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def streamed_csv(
    queryset: QuerySet, columns: Sequence[tuple[str, str]], text: set[str], filename: str
) -> StreamingHttpResponse:
    """A response that streams ``queryset``'s ``columns`` (field, CSV header) as CSV,
    read through a server-side cursor CHUNK_ROWS rows at a time."""
    fields = [field for field, _ in columns]
    rows = queryset.values_list(*fields).iterator(chunk_size=CHUNK_ROWS)
    return StreamingHttpResponse(
        csv_chunks([header for _, header in columns], rows, text),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
