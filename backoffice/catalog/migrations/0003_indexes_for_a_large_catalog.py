# Indexes for a year of a large city (bench/bench_catalog.py, docs/BENCHMARKS.md)

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0002_access'),
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
    ]
