from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_apitoken_expiry_for_existing_tokens'),
    ]

    operations = [
        migrations.AlterField(
            model_name='apitoken',
            name='lifetime_days',
            field=models.PositiveIntegerField(verbose_name='lifetime in days'),
        ),
        migrations.AlterField(
            model_name='apitoken',
            name='expires_at',
            field=models.DateTimeField(verbose_name='expires'),
        ),
    ]
