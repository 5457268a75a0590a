# Indexes for a year of a large city (bench/bench_catalog.py, docs/BENCHMARKS.md)

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0003_access_refusal'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(fields=['state', 'expires_at'], name='incident_state_expiry'),
        ),
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(fields=['officer', 'start'], name='incident_officer_start'),
        ),
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(fields=['device', 'start'], name='incident_device_start'),
        ),
        migrations.AddIndex(
            model_name='tombstone',
            index=models.Index(fields=['completed_at'], name='tombstone_completed'),
        ),
        # expires_at's own index is replaced by (state, expires_at): PostgreSQL preferred it (its order matches
        # the table's) and walked the year's deleted incidents. Dropped by name: an AlterField would make
        # SQLite copy the whole table.
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AlterField(model_name='incident', name='expires_at',
                                                    field=models.DateTimeField())],
            database_operations=[migrations.RunSQL(
                'DROP INDEX IF EXISTS "catalog_incident_expires_at_5dfa9268"',
                reverse_sql='CREATE INDEX "catalog_incident_expires_at_5dfa9268" ON "catalog_incident" ("expires_at")')],
        ),
    ]
