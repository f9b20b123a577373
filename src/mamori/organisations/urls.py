from django.urls import path

from mamori.organisations import views

app_name = "organisations"

urlpatterns = [
    path("organisations/", views.organisation_list, name="list"),
    path("organisations/<int:pk>/", views.detail, name="detail"),
]
