"""``/api/earlywarning/``: the organisation's alerts and asset registry."""

from rest_framework.routers import DefaultRouter

from mamori.earlywarning.api.views import AlertViewSet, AssetViewSet

router = DefaultRouter()
# As the main router: the trailing slash is optional.
router.trailing_slash = "/?"
router.include_root_view = False
router.register("alerts", AlertViewSet, basename="earlywarning-alert")
router.register("assets", AssetViewSet, basename="earlywarning-asset")

urlpatterns = router.urls
