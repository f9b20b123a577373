from django.urls import path

from mamori.verification import views

app_name = "verification"

urlpatterns = [
    path("hosts/", views.host_list, name="list"),
    path("hosts/agent/mamori-agent.pyz", views.agent_download, name="agent_download"),
    path("hosts/<int:pk>/", views.host_detail, name="detail"),
    path("hosts/<int:pk>/diff/", views.host_diff, name="diff"),
    path("hosts/<int:pk>/scope/", views.host_scope, name="scope"),
    path(
        "hosts/<int:pk>/evidence/<int:evidence_id>.json",
        views.evidence_download,
        name="evidence_download",
    ),
]
