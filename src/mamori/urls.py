from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from mamori import views
from mamori.assessments.api.views import AssessmentViewSet
from mamori.certificates.api.views import CertificateViewSet, PublicCertificateView
from mamori.core import views as core_views
from mamori.organisations.api.views import OrganisationViewSet
from mamori.plus.api.views import PlusAuditViewSet
from mamori.verification.api.views import (
    EvidenceUploadStatusView,
    EvidenceUploadView,
    HostViewSet,
)

router = DefaultRouter()
# The trailing slash is optional. DRF's constructor turns any true value into "/", so it is set
# here: without it ".../answers/A4.2" was read as question "A4" in format "2" and answered 404.
router.trailing_slash = "/?"
router.include_root_view = False
router.register("organisations", OrganisationViewSet, basename="organisation")
router.register("assessments", AssessmentViewSet, basename="assessment")
router.register("certificates", CertificateViewSet, basename="certificate")
router.register("hosts", HostViewSet, basename="host")
router.register("plus-audits", PlusAuditViewSet, basename="plus-audit")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("accounts/", include("mamori.accounts.urls")),
    # Staff only (is_staff, second factor passed); everyone else finds nothing here.
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("mamori.organisations.urls")),
    path("", include("mamori.assessments.urls")),
    path("", include("mamori.certificates.urls")),
    path("", include("mamori.verification.urls")),
    path("", include("mamori.plus.urls")),
    path("", include("mamori.supplychain.urls")),
    path("", include("mamori.earlywarning.urls")),
    path("", include("mamori.reporting.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/public/certificates/<str:number>",
        PublicCertificateView.as_view(),
        name="api-public-certificate",
    ),
    # Agents post here with an upload-only token and read the upload's status: the only
    # endpoints such a token may use.
    re_path(r"api/evidence/?$", EvidenceUploadView.as_view(), name="api-evidence-upload"),
    path(
        "api/evidence/uploads/<int:pk>/",
        EvidenceUploadStatusView.as_view(),
        name="api-evidence-upload-status",
    ),
    path("api/earlywarning/", include("mamori.earlywarning.api.urls")),
    path("api/reporting/", include("mamori.reporting.api.urls")),
    path("api/", include(router.urls)),
]

handler400 = "mamori.core.errors_views.bad_request"
handler404 = "mamori.core.errors_views.not_found"
handler500 = "mamori.core.errors_views.server_error"
handler403 = "mamori.core.errors_views.forbidden"
