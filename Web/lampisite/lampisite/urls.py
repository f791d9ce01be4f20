"""Top-level routes: sign in and out with Django's auth views, everything else under /lampi/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="lampi:index", permanent=False), name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("lampi/", include("lampi.urls")),
    path("admin/", admin.site.urls),
]
