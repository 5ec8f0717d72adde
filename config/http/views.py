"""The login page, throttled like the API's token endpoint."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.utils.decorators import method_decorator

from config.http.api import FailedLoginThrottle


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    """Django's login, refusing a client address after repeated failures (429).

    Failures count together with the API's (POST /api/auth/token/): one allowance per
    address, however it tries.
    """

    def dispatch(self, request, *args, **kwargs):
        self.throttle = FailedLoginThrottle()
        if request.method == "POST" and not self.throttle.allow_request(request, self):
            context = self.get_context_data(throttled_for=round(self.throttle.wait() or 0))
            return self.render_to_response(context, status=429)
        return super().dispatch(request, *args, **kwargs)

    def form_invalid(self, form):
        self.throttle.record_failure()
        return super().form_invalid(form)
