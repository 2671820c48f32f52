"""One rule for the admin's powers, wherever they are used: the Django admin's own.

The admin lets in active staff, then shows, adds or changes a model only with that model's view/add/change
permission (a superuser holds them all). The API and the staff pages used to ask for is_staff alone, so a staff
account given no permission, which the admin refuses, could still do everything through them. `user_may` is the
admin's rule; `ModelPermissions` applies it to an API view per HTTP method, `require_admin_permissions` to a
page.

The "Crossfeed admin" group holds every permission those views ask for: put a staff account in it to make it an
admin without making it a superuser. Each migrate brings the group up to date (admin_group_sync).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import gettext as _
from rest_framework.permissions import BasePermission

ADMIN_GROUP = "Crossfeed admin"
# Every model permission of these apps (axes: to unlock a locked-out person by deleting their attempts), plus what
# creating annotators through the API needs. Not auth.change_user: with it a member could make themselves a
# superuser in the admin.
ADMIN_GROUP_APPS = ("annotation", "training", "evaluation", "generation", "instructions", "translation", "apitokens",
                    "axes")
ADMIN_GROUP_EXTRA = ("auth.add_user", "auth.view_user")


def user_may(user: AnonymousUser | object, *permissions: str) -> bool:
    """Whether the admin would let this user do what the permissions name ("app_label.codename")."""
    return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False)
                and user.has_perms(permissions))


def require_admin_permissions(request: HttpRequest, *permissions: str) -> None:
    """For a page: refuse (403) unless the user may; the message names what is missing and who can give it."""
    if not user_may(request.user, *permissions):
        raise PermissionDenied(
            _("This page needs the permission %(permissions)s. Ask an administrator to give it to your account, "
              "or to add your account to the group “%(group)s”.")
            % {"permissions": ", ".join(permissions), "group": ADMIN_GROUP}
        )


class ModelPermissions(BasePermission):
    """For an API view with `required_permissions = {"GET": (...), "POST": (...)}`: staff holding the permissions
    named for the request's method. A method the view does not name is refused to everyone; HEAD and OPTIONS count
    as GET. Anonymous callers get 401 (DRF's rule for a request without credentials)."""

    def has_permission(self, request, view) -> bool:
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        needed = getattr(view, "required_permissions", {}).get(method)
        if needed is None:
            return False
        if user_may(request.user, *needed):
            return True
        # The API's messages are English (docs/api.md).
        self.message = (f"this endpoint needs the Django permission(s) {', '.join(needed)} on a staff account; "
                        f"ask an administrator to grant them or to add the account to the group {ADMIN_GROUP!r}")
        return False


def admin_group_sync(**kwargs) -> None:
    """post_migrate: create the group and give it every permission it should hold, those of models added since
    included. A permission taken from it by hand comes back at the next migrate: make another group for a narrower
    role."""
    using = kwargs.get("using", "default")
    group, _created = Group.objects.using(using).get_or_create(name=ADMIN_GROUP)
    wanted = Q(content_type__app_label__in=ADMIN_GROUP_APPS)
    for permission in ADMIN_GROUP_EXTRA:
        app_label, codename = permission.split(".")
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    group.permissions.add(*Permission.objects.using(using).filter(wanted))
