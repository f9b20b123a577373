from django.urls import path

from mamori.organisations import views

app_name = "organisations"

urlpatterns = [
    path("organisations/", views.organisation_list, name="list"),
    path("organisations/new/", views.create, name="create"),
    path("organisations/<int:pk>/", views.detail, name="detail"),
    path("organisations/groups/<int:pk>/", views.working_group, name="working_group"),
    path("organisations/<int:pk>/members/", views.members, name="members"),
    path("organisations/<int:pk>/members/add/", views.add_member, name="add_member"),
    path(
        "organisations/<int:pk>/members/invitations/<int:invitation_id>/cancel/",
        views.cancel_invitation,
        name="cancel_invitation",
    ),
    path("invitations/", views.invitations, name="invitations"),
    path(
        "invitations/<int:invitation_id>/accept/",
        views.accept_invitation,
        name="accept_invitation",
    ),
    path(
        "invitations/<int:invitation_id>/decline/",
        views.decline_invitation,
        name="decline_invitation",
    ),
    path(
        "organisations/<int:pk>/members/<int:membership_id>/remove/",
        views.remove_member,
        name="remove_member",
    ),
]
