# The acknowledged state of a sync, keyed by (sync, key) itself, without foreign-key checks
# per row: a large sync writes a million of them per run. Recreated rather than altered
# (Django does not migrate a table to a composite primary key); a sync whose state this
# drops plans its next run as a first one, which re-sends every record by its key.
# On PostgreSQL the key compares byte by byte (COLLATE "C": the key is JSON text, never
# shown in order), so its index is built and probed without the locale's rules.

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models


def key_compared_as_bytes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            'ALTER TABLE sharing_syncrecordstate ALTER COLUMN key TYPE text COLLATE "C"'
        )


class Migration(migrations.Migration):
    dependencies = [
        ("sharing", "0008_syncs"),
    ]

    operations = [
        migrations.DeleteModel(name="SyncRecordState"),
        migrations.CreateModel(
            name="SyncRecordState",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "sync",
                        "key",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "sync",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="record_states",
                        to="sharing.sync",
                    ),
                ),
                ("key", models.TextField()),
                ("row_hash", models.CharField(max_length=64)),
                ("limited_values", models.JSONField(blank=True, null=True)),
                (
                    "run",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="sharing.syncrun",
                    ),
                ),
                (
                    "acked_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
                ),
            ],
        ),
        migrations.RunPython(key_compared_as_bytes, migrations.RunPython.noop),
    ]
