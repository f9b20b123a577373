from django.urls import path

from mamori.reporting import views, views_sector

app_name = "reporting"

urlpatterns = [
    path("reporting/", views.index, name="index"),
    path("reporting/organisations/<int:pk>/", views.organisation_page, name="organisation"),
    path("reporting/organisations/<int:pk>/packs/", views.make, name="make"),
    path("reporting/organisations/<int:pk>/owner/", views.name_owner, name="owner"),
    # The owner's reminder e-mail links to a pack at this address: keep it.
    path("reporting/packs/<int:pk>/", views.pack_page, name="pack"),
    path("reporting/packs/<int:pk>/sign/", views.sign, name="sign"),
    path(
        "reporting/packs/<int:pk>/<str:kind>/<str:language>/",
        views.pack_file,
        name="pack_file",
    ),
    path("reporting/sector/", views_sector.dashboard, name="sector"),
    path("reporting/sector.<str:kind>", views_sector.export, name="sector_export"),
]
