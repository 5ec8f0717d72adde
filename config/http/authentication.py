"""Authentication that costs one prepared query a step: every API request authenticates
and checks its view's permissions, and Django's own classes spend several ORM queries
on it (the token and its user; the user's permissions, then the groups').

The answers are the same as Django's and DRF's, and nothing is kept between requests:
a token deleted, a user deactivated or a permission taken away counts at the next one.
DRF imports the authentication classes while it loads its views, so this module must
not import views, and it reads the models only once apps are ready.
"""

from __future__ import annotations

from functools import cache

from django.contrib.auth import backends, get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from config.http.prepared import Statement


@cache
def _permissions_of_user() -> Statement:
    """Every permission a user has, directly or by a group, as "app_label.codename"."""
    user = get_user_model()
    direct = user.user_permissions.through._meta
    membership = user.groups.through._meta
    granted = Group.permissions.through._meta
    return Statement(
        "permissions_of_user",
        ["bigint"],
        f"SELECT content_type.app_label || '.' || permission.codename"
        f" FROM {Permission._meta.db_table} permission"
        f" JOIN {ContentType._meta.db_table} content_type"
        f" ON content_type.id = permission.content_type_id"
        f" WHERE permission.id IN ("
        f"SELECT permission_id FROM {direct.db_table} WHERE user_id = $1"
        f" UNION ALL SELECT granted.permission_id FROM {membership.db_table} membership"
        f" JOIN {granted.db_table} granted ON granted.group_id = membership.group_id"
        f" WHERE membership.user_id = $1)",
    )


class ModelBackend(backends.ModelBackend):
    """Django's ModelBackend, reading a user's own and group permissions in one query."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        # The attribute ModelBackend caches them in, for the life of this user object.
        if not hasattr(user_obj, "_perm_cache"):
            rows = _permissions_of_user().fetchall([user_obj.pk])
            user_obj._perm_cache = {permission for (permission,) in rows}
        return user_obj._perm_cache


@cache
def _user_fields() -> list[str]:
    return [field.attname for field in get_user_model()._meta.concrete_fields]


@cache
def _token_and_user(token_model) -> Statement:
    """A token's creation time and its user's columns (``_user_fields``), by key."""
    token = token_model._meta
    user = get_user_model()._meta
    columns = ", ".join(f"account.{name}" for name in _user_fields())
    return Statement(
        "token_and_user",
        ["text"],
        f"SELECT token.created, {columns} FROM {token.db_table} token"
        f" JOIN {user.db_table} account ON account.{user.pk.attname} = token.user_id"
        f" WHERE token.key = $1",
    )


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``Authorization: Token <key>``, reading the token and its user in one query.

    Another scheme (``Bearer <key>``, a bare key) is refused with a message that names
    the one expected, rather than DRF's "credentials were not provided"."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if header and header[0].lower() != self.keyword.lower().encode():
            scheme = header[0].decode("latin-1") if len(header) > 1 else "(none)"
            raise exceptions.AuthenticationFailed(
                f"Unsupported authorization scheme {scheme[:40]}: send the header"
                f" 'Authorization: {self.keyword} <key>' (POST /api/auth/token/ with your"
                " username and password gives the key)."
            )
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        row = _token_and_user(self.get_model()).fetchone([key])
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        created, *values = row
        user = get_user_model().from_db(DEFAULT_DB_ALIAS, _user_fields(), values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = self.get_model().from_db(
            DEFAULT_DB_ALIAS, ["key", "user_id", "created"], [key, user.pk, created]
        )
        token.user = user
        return user, token
