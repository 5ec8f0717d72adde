"""Each event records who acted and which order it concerns (for the order's history).

Events logged before carry no actor: they count as the operators' (system). Their order
is filled in from their payload. The name keeps its index but loses the LIKE one
nobody uses, which a bulk load would have to build again.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('orders_write', '0004_order_submitted_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='event',
            name='actor',
            field=models.CharField(db_default='system', default='system', help_text="The user or integration whose request issued the command; system for operators' commands.", max_length=150),
        ),
        migrations.AddField(
            model_name='event',
            name='order_reference',
            field=models.CharField(blank=True, db_collation='C', help_text='The order it concerns (its reference or orderid), if any.', max_length=255, null=True),
        ),
        migrations.RunSQL(
            "UPDATE orders_write_event"
            " SET order_reference = coalesce(payload->>'reference', payload->>'orderid')"
            " WHERE payload ?| array['reference', 'orderid']",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name='event',
            name='name',
            field=models.CharField(max_length=64),
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(fields=['name'], name='event_name'),
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(condition=models.Q(('order_reference__isnull', False)), fields=['order_reference', 'id'], name='event_order_history'),
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(condition=models.Q(('name', 'BatchCreated'), ('name', 'BatchQuantityChanged'), _connector='OR'), fields=['transaction_id'], name='event_batch_changes'),
        ),
    ]
