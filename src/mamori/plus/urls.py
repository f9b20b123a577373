from django.urls import path

from mamori.plus import views

app_name = "plus"

urlpatterns = [
    path("plus/", views.audit_list, name="list"),
    path("plus/request/", views.request_audit, name="request"),
    path("plus/<int:pk>/", views.detail, name="detail"),
    path("plus/<int:pk>/take/", views.take, name="take"),
    path("plus/<int:pk>/addresses/", views.addresses, name="addresses"),
    path("plus/<int:pk>/devices/", views.add_device, name="add_device"),
    path(
        "plus/<int:pk>/devices/<int:device_id>/remove/",
        views.remove_device,
        name="remove_device",
    ),
    path("plus/<int:pk>/kinds/", views.kinds, name="kinds"),
    path("plus/<int:pk>/draw/", views.draw, name="draw"),
    path("plus/<int:pk>/fill/", views.fill, name="fill"),
    path("plus/<int:pk>/sampled/<int:sampled_id>/", views.device_check, name="device_check"),
    path("plus/<int:pk>/tests/<str:code>/", views.test_case, name="test_case"),
    path("plus/<int:pk>/files/<int:attachment_id>/", views.download, name="download"),
    path("plus/<int:pk>/decide/", views.decide, name="decide"),
]
