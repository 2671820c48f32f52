from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotation import people_views
from annotation import views as annotation_views
from crossfeed import health, i18n

urlpatterns = [
    path("", annotation_views.home, name="home"),
    path("", include("annotation.urls")),
    path("training/", include("training.urls")),
    path("evaluation/", include("evaluation.urls")),
    path("generation/", include("generation.urls")),
    path("translation/", include("translation.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/language/", i18n.ui_language_set, name="ui_language_set"),
    # People (docs/campaigns.md): invitation links, the own API token, password reset by e-mail.
    path("accounts/invitation/<uidb64>/<token>/", people_views.InvitationAcceptView.as_view(), name="invitation"),
    path("accounts/api-token/", people_views.api_token, name="api_token"),
    path("accounts/password-reset/", auth_views.PasswordResetView.as_view(
        email_template_name="registration/password_reset_email.txt"), name="password_reset"),
    path("accounts/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("annotation.api_urls")),
    path("api/v1/", include("training.api_urls")),
    path("api/v1/", include("evaluation.api_urls")),
    path("api/v1/", include("generation.api_urls")),
    path("api/v1/", include("instructions.api_urls")),
    path("api/v1/", include("translation.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file (?script), not inline: the CSP runs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", health.healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin's); the icon is a static SVG.
    path("favicon.ico", health.favicon, name="favicon"),
]

if settings.CROSSFEED_BENCH_FLOOR:
    from crossfeed.bench_floor import floor

    urlpatterns.append(path("bench/floor/", floor, name="bench-floor"))
