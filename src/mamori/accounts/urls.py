from django.urls import path

from mamori.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("mfa/setup/", views.mfa_setup, name="mfa_setup"),
    path("mfa/verify/", views.mfa_verify, name="mfa_verify"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.revoke_token, name="revoke_token"),
    path("tokens/<int:pk>/rotate/", views.rotate_token, name="rotate_token"),
    path(
        "tokens/organisations/<int:pk>/",
        views.organisation_tokens,
        name="organisation_tokens",
    ),
]
