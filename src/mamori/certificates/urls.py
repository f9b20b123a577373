from django.urls import path

from mamori.certificates import views

app_name = "certificates"

urlpatterns = [
    path("certificates/", views.certificate_list, name="list"),
    path("certificates/<str:number>/", views.detail, name="detail"),
    path("certificates/<str:number>/pdf/", views.pdf, name="pdf"),
    path("certificates/<str:number>/revoke/", views.revoke, name="revoke"),
    path("register/", views.register, name="register"),
    path("verify/", views.verify_lookup, name="verify_lookup"),
    path("verify/<str:number>", views.verify, name="verify"),
    path("verify/<str:number>/", views.verify),
]
