"""A base state inserted without counts (a read model created by its definition's
create_sql) starts with those of no snapshot, instead of violating NOT NULL."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('orders_read', '0023_value_counts'),
    ]

    operations = [
        migrations.AlterField(
            model_name='basestate',
            name='value_counts_snapshot',
            field=models.TextField(blank=True, db_default='', help_text="The snapshot of the base that value_counts counted: they hold only while it is the base's."),
        ),
    ]
