from django.urls import path

from mamori.earlywarning import views, views_notify, views_owner, views_registry

app_name = "earlywarning"

urlpatterns = [
    path("earlywarning/", views.index, name="index"),
    path("earlywarning/time-zone/", views.set_time_zone, name="time_zone"),
    # E-mails and webhooks link to an alert at this address, and to every alert of the
    # organisation at the one above it (payloads.alert_path, payloads.inbox_url): keep them.
    path("earlywarning/alerts/", views.index, name="alerts"),
    path("earlywarning/alerts/<int:pk>/", views.alert_detail, name="alert"),
    path("earlywarning/alerts/<int:pk>/state/", views.alert_state, name="alert_state"),
    path("earlywarning/organisations/<int:organisation>/", views.inbox, name="inbox"),
    path(
        "earlywarning/organisations/<int:organisation>/assets/",
        views_registry.asset_list,
        name="assets",
    ),
    path(
        "earlywarning/organisations/<int:organisation>/assets/import/",
        views_registry.assets_import,
        name="assets_import",
    ),
    path(
        "earlywarning/organisations/<int:organisation>/assets.csv",
        views_registry.assets_export,
        name="assets_export",
    ),
    path(
        "earlywarning/organisations/<int:organisation>/assets/from-assessment/",
        views_registry.assets_from_assessment,
        name="assets_from_assessment",
    ),
    path("earlywarning/assets/<int:pk>/", views_registry.asset_detail, name="asset"),
    path("earlywarning/assets/<int:pk>/check/", views_registry.asset_check, name="asset_check"),
    path(
        "earlywarning/assets/<int:pk>/withdraw/",
        views_registry.asset_withdraw,
        name="asset_withdraw",
    ),
    path(
        "earlywarning/assets/<int:pk>/permission/",
        views_registry.asset_permission,
        name="asset_permission",
    ),
    path("earlywarning/approvals/", views_owner.approvals, name="approvals"),
    path("earlywarning/approvals/<int:pk>/approve/", views_owner.approve, name="approve"),
    path("earlywarning/approvals/<int:pk>/refuse/", views_owner.refuse, name="refuse"),
    path("earlywarning/overlaps/", views_owner.overlaps, name="overlaps"),
    path("earlywarning/overlaps/<int:pk>/settle/", views_owner.settle, name="settle"),
    path("earlywarning/deadlines/", views_owner.deadline_settings, name="deadlines"),
    path("earlywarning/sector/", views_owner.sector_figures, name="sector"),
    path(
        "earlywarning/organisations/<int:organisation>/webhooks/",
        views_notify.webhooks,
        name="webhooks",
    ),
    path("earlywarning/webhooks/<int:pk>/", views_notify.webhook_detail, name="webhook"),
    path(
        "earlywarning/webhooks/<int:pk>/disable/",
        views_notify.webhook_disable,
        name="webhook_disable",
    ),
    path(
        "earlywarning/webhooks/<int:pk>/enable/", views_notify.webhook_enable, name="webhook_enable"
    ),
    path(
        "earlywarning/webhooks/<int:pk>/rotate/", views_notify.webhook_rotate, name="webhook_rotate"
    ),
    path(
        "earlywarning/webhooks/<int:pk>/delete/", views_notify.webhook_delete, name="webhook_delete"
    ),
    path(
        "earlywarning/organisations/<int:organisation>/notifications/",
        views_notify.notification_settings,
        name="notifications",
    ),
]
