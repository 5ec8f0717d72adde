-- The query behind GET /api/allocations/<orderid>, for a seeded order picked at random
-- (pgbench has no string variables: the reference is built from its number).
\set number random(1, :orders)
SELECT sku, batchref FROM allocations_view
WHERE orderid = 'DEMO-' || lpad(:number::text, 7, '0') ORDER BY sku;
