# Each site's longest incident, so the time-window (Art. 15) report reads an index range (docs/BENCHMARKS.md)

import math

from django.db import migrations, models
from django.db.models import DurationField, ExpressionWrapper, F, Max


def measure(apps, schema_editor):
    """The incidents cataloged so far: one aggregate per site."""
    Incident = apps.get_model("catalog", "Incident")
    Site = apps.get_model("catalog", "Site")
    length = ExpressionWrapper(F("end") - F("start"), output_field=DurationField())
    for row in Incident.objects.values("site").annotate(longest=Max(length)):
        Site.objects.filter(pk=row["site"]).update(longest_incident_s=math.ceil(row["longest"].total_seconds()))


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0004_indexes_for_a_large_catalog'),
    ]

    operations = [
        migrations.AddField(
            model_name='site',
            name='longest_incident_s',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(measure, migrations.RunPython.noop),
    ]
