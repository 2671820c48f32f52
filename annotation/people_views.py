"""Pages for people (docs/campaigns.md#people): the invitation link, the own API token, and the activity ping."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from annotation import selectors
from annotation.services.invitations import invitation_accepted, invitation_refusal, invitation_tokens
from annotation.services.timesheets import activity_record
from crossfeed.tokens.models import APIToken
from crossfeed.tokens.services import token_issue


class InvitationAcceptView(auth_views.PasswordResetConfirmView):
    """Django's reset-confirm view with the invitation's token: the link is checked, swapped for a token in the
    session (so it never leaks in a Referer), the annotator chooses a password and is signed in."""

    token_generator = invitation_tokens
    template_name = "registration/invitation.html"
    title = gettext_lazy("Choose your password")
    post_reset_login = True
    # Named, because two backends are configured (axes' and Django's); axes only watches password sign-ins.
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"
    success_url = reverse_lazy("home")

    def form_valid(self, form):
        response = super().form_valid(form)
        invitation_accepted(user=self.user)
        messages.success(self.request, _("Welcome, %(name)s: your password is set and you are signed in.")
                         % {"name": self.user.get_username()})
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if not self.validlink:
            context["title"] = _("This invitation link does not work")
            context["refusal"] = invitation_refusal(user=self.user)
        return context


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_token(request: HttpRequest) -> HttpResponse:
    """The signed-in person's API tokens (by their first characters) and a button that replaces them with a new one,
    whose key is shown on the answer to that POST and never again (only its hash is kept)."""
    key = None
    if request.method == "POST":
        key = token_issue(user=request.user, replace=True)
    tokens = APIToken.objects.filter(user=request.user).order_by("-created")
    return render(request, "annotation/api_token.html", {"tokens": tokens, "key": key})


@require_POST
@login_required
def activity(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The annotation page's ping (static/js/annotate.js): this minute the annotator was active. 204, no body."""
    if not selectors.is_annotator(request.user):
        raise PermissionDenied(_("Only annotators' activity is recorded; your account has no annotator profile."))
    try:
        selectors.campaign_for_leasing(request.user, campaign_id)  # one primary-key read: visible, or 404
    except Http404:
        raise Http404(_("No such campaign, or it is not one you can see.")) from None
    raw = request.POST.get("item", "")
    item_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    activity_record(annotator=request.user, campaign_id=campaign_id, item_id=item_id)
    return HttpResponse(status=204)
