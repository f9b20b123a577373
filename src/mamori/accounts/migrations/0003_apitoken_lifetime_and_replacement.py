import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='apitoken',
            name='lifetime_days',
            field=models.PositiveIntegerField(null=True, verbose_name='lifetime in days'),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='replaced_by',
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='replaces', to='accounts.apitoken', verbose_name='replaced by'),
        ),
    ]
