"""``/api/reporting/``: board packs and the sector dashboard's figures."""

from django.urls import re_path
from rest_framework.routers import DefaultRouter

from mamori.reporting.api.views import BoardPackViewSet, SectorView

router = DefaultRouter()
# As the main router: the trailing slash is optional.
router.trailing_slash = "/?"
router.include_root_view = False
router.register("packs", BoardPackViewSet, basename="reporting-pack")

urlpatterns = [re_path(r"^sector/?$", SectorView.as_view(), name="reporting-sector"), *router.urls]
