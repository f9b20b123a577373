from django.urls import path

from mamori.supplychain import views, views_analysis, views_exchange, views_offline

app_name = "supplychain"

urlpatterns = [
    path("supply/", views.index, name="index"),
    path("supply/services/", views.service_list, name="services"),
    path("supply/campaigns/new/", views.campaign_create, name="campaign_create"),
    path("supply/campaigns/<int:pk>/", views.campaign_detail, name="campaign"),
    path("supply/campaigns/<int:pk>/graph.json", views.campaign_export, name="campaign_export"),
    path("supply/sector/", views.sector, name="sector"),
    path("supply/organisations/<int:pk>/graph/", views_exchange.exchange, name="exchange"),
    path("supply/organisations/<int:pk>/graph.json", views_exchange.export, name="export"),
    path("supply/services/<int:pk>/", views_analysis.service_graph, name="service"),
    path("supply/concentration/", views_analysis.concentration_index, name="concentration_index"),
    path(
        "supply/organisations/<int:pk>/concentration/",
        views_analysis.organisation_concentration,
        name="concentration",
    ),
    path(
        "supply/sector/concentration/",
        views_analysis.sector_concentration,
        name="sector_concentration",
    ),
    path("supply/i/<str:token>/", views.landing, name="landing"),
    path("supply/responses/<int:pk>/", views.response_detail, name="response"),
    path("supply/responses/<int:pk>/answer/", views.answer, name="answer"),
    path("supply/responses/<int:pk>/invite/", views.invite_suppliers, name="invite"),
    path("supply/responses/<int:pk>/decline/", views.decline, name="decline"),
    path("supply/responses/<int:pk>/claim/", views.claim, name="claim"),
    path(
        "supply/organisations/<int:pk>/confirm/",
        views.confirm_identity,
        name="confirm_identity",
    ),
    path("supply/responses/<int:pk>/hearings/", views.record_hearing, name="hearing_add"),
    path("supply/responses/<int:pk>/offline/", views_offline.offline_page, name="offline"),
    path(
        "supply/responses/<int:pk>/offline/uploads/<int:upload>/",
        views_offline.offline_import,
        name="offline_import",
    ),
    path(
        "supply/responses/<int:pk>/offline/questionnaire.xlsx",
        views_offline.download_xlsx,
        name="offline_xlsx",
    ),
    path(
        "supply/responses/<int:pk>/offline/questionnaire.csv",
        views_offline.download_csv,
        name="offline_csv",
    ),
]
