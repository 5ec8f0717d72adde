"""Classes that REST_FRAMEWORK's settings name. DRF imports them while it loads its own
views, so this module must not import views, generics or drf-spectacular."""

from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission


class HasRequiredPermissions(BasePermission):
    """Each view names the model permissions it needs (``required_permissions``);
    a view that names none is closed."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        required = getattr(view, "required_permissions", None)
        return required is not None and user.has_perms(required)


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
