from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("workers", "0003_partial_indexes"),
    ]

    operations = [
        migrations.RenameField(
            model_name="job",
            old_name="dispatched_at",
            new_name="woken_at",
        ),
        migrations.AlterField(
            model_name="job",
            name="woken_at",
            field=models.DateTimeField(
                blank=True, help_text="When the last wake-up for this job was sent.", null=True
            ),
        ),
    ]
