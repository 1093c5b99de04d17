"""Incidents keep their technical reason apart: an availability incident's opening event
quoted the source's address and the driver's error to every reader. The field is added,
and existing availability incidents have that text moved from the event to `detail`."""

from django.db import migrations, models


def move_availability_reasons(apps, schema_editor):
    Incident = apps.get_model("products", "Incident")
    IncidentEvent = apps.get_model("products", "IncidentEvent")
    opened = IncidentEvent.objects.filter(
        kind="opened", incident__cause="availability"
    ).select_related("incident__port__source")
    for event in opened.iterator():
        incident = event.incident
        port = incident.port
        if port is not None and port.source_id:
            safe = f"Data source '{port.source.name}' could not be reached or read."
        else:
            safe = "The port's file could not be read."
        if event.body == safe:
            continue
        Incident.objects.filter(pk=incident.pk, detail="").update(detail=event.body)
        IncidentEvent.objects.filter(pk=event.pk).update(body=safe)


class Migration(migrations.Migration):
    dependencies = [
        ("products", "0009_usage_and_retirement"),
    ]

    operations = [
        migrations.AddField(
            model_name="incident",
            name="detail",
            field=models.TextField(blank=True),
        ),
        migrations.RunPython(move_availability_reasons, migrations.RunPython.noop),
    ]
