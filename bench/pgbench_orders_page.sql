-- The first page of GET /api/orders?ordering=-created_at (without its count(*)).
SELECT id, reference, customer_name, shipping_address, status, line_count, total_quantity,
       total_amount, allocated_line_count, created_at
FROM order_summary ORDER BY created_at DESC, id DESC LIMIT :page_size;
