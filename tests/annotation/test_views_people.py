"""Guidelines per language on the annotation page, the own API token page, the password reset by e-mail, and the
time-and-pay admin page."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from annotation.models import CampaignGuideline, PayRate
from annotation.services.guidelines import guidelines_for
from crossfeed.tokens.models import APIToken
from tests.conftest import PASSWORD


@pytest.fixture
def translated(campaign):
    campaign.guidelines = "Default guidelines for everyone."
    campaign.save(update_fields=["guidelines"])
    CampaignGuideline.objects.create(campaign=campaign, language_id="ta", text="**Tamil** guidelines.")
    return campaign


def test_guidelines_fall_back_to_the_campaign_default(translated):
    assert [(g.language, g.text, g.for_languages) for g in guidelines_for(campaign=translated, languages=["ta"])] == [
        ("ta", "**Tamil** guidelines.", ("ta",))]
    assert [(g.language, g.for_languages) for g in guidelines_for(campaign=translated, languages=["ar", "ta", "hi"])
            ] == [(None, ("ar", "hi")), ("ta", ("ta",))]
    assert [g.text for g in guidelines_for(campaign=translated, languages=[])] == ["Default guidelines for everyone."]


def test_the_annotation_page_shows_the_annotators_language(translated, annotator, outsider, make_annotator, client):
    url = reverse("annotation:annotate", kwargs={"campaign_id": translated.id})
    client.force_login(annotator)  # native Tamil
    page = client.get(url).content.decode()
    assert '<strong>Tamil</strong> guidelines.' in page and "Default guidelines" not in page
    assert 'data-guidelines-for="ta" lang="ta"' in page
    client.force_login(outsider)  # native Arabic: no translation
    page = client.get(url).content.decode()
    assert "Default guidelines for everyone." in page and "Tamil" not in page
    client.force_login(make_annotator("both", ["ta", "ar"], ["sw"]))  # one version per native language
    page = client.get(url).content.decode()
    assert 'data-guidelines-for="ar"' in page and 'data-guidelines-for="ta"' in page


def test_the_guidelines_inline_is_on_the_campaign_admin(translated, admin_user, client):
    client.force_login(admin_user)
    page = client.get(reverse("admin:annotation_campaign_change", args=[translated.id])).content.decode()
    assert "translated_guidelines-0-text" in page and "**Tamil** guidelines." in page


# --- the API token page -----------------------------------------------------------------------------------------


def test_the_token_page_renews_and_shows_the_key_once(annotator, client, api):
    client.force_login(annotator)
    url = reverse("api_token")
    old = APIToken.objects.get(user=annotator)
    page = client.get(url)
    assert page.status_code == 200 and f"{old.prefix}…" in page.content.decode()
    assert "no-store" in page["Cache-Control"] or "no-cache" in page["Cache-Control"]
    renewed = client.post(url)
    key = re.search(r'id="new-token"[^>]*value="([0-9a-f]{40})"', renewed.content.decode()).group(1)
    assert list(APIToken.objects.filter(user=annotator).values_list("prefix", flat=True)) == [key[:8]]
    assert "new-token" not in client.get(url).content.decode()  # shown once
    from rest_framework.test import APIClient

    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert token_client.get(reverse("api-languages")).status_code == 200


def test_the_token_page_needs_a_login(client):
    response = client.get(reverse("api_token"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- password reset ---------------------------------------------------------------------------------------------


def test_a_forgotten_password_is_reset_by_e_mail(annotator, client):
    annotator.email = "tamil1@example.org"
    annotator.save(update_fields=["email"])
    assert 'href="/accounts/password-reset/"' in client.get(reverse("login")).content.decode()
    response = client.post(reverse("password_reset"), {"email": "tamil1@example.org"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["tamil1@example.org"]
    link = re.search(r"https?://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_url = client.get(link)["Location"]
    done = client.post(form_url, {"new_password1": "another-good-password-7", "new_password2":
                                  "another-good-password-7"})
    assert done["Location"] == reverse("password_reset_complete")
    assert client.get(link).status_code == 200  # used: the page that says the link does not work
    annotator.refresh_from_db()
    assert annotator.check_password("another-good-password-7") and not annotator.check_password(PASSWORD)


def test_a_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client, db):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.org"})
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


# --- the time-and-pay admin page --------------------------------------------------------------------------------


def test_the_time_report_page_lists_the_period(campaign, items, annotator, admin_user, client):
    from annotation.services.judgments import judgment_submit
    from tests.conftest import new_key, ranks_for

    judgment_submit(annotator=annotator, item_id=items[0].id, ranks=ranks_for(items[0]), idempotency_key=new_key(),
                    seconds_spent=90)
    PayRate.objects.create(campaign=campaign, hourly_rate=Decimal("12.00"))
    client.force_login(admin_user)
    url = reverse("admin:annotation_campaign_time_report", kwargs={"campaign_id": campaign.id})
    # From yesterday: a submit just after midnight spent part of its 90 s on the day before.
    yesterday, today = [(timezone.localdate() - timedelta(days=n)).isoformat() for n in (1, 0)]
    page = client.get(url, {"from": yesterday, "to": today})
    assert page.status_code == 200
    report = page.context["report"]
    assert report["annotators"][0]["user"] == "tamil1" and report["annotators"][0]["active_seconds"] == 90
    assert report["annotators"][0]["amount_due"] == "0.30"  # 90 s × 12 €/h
    assert f"from={yesterday}&amp;to={today}&amp;format=csv" in page.content.decode()
    refused = client.get(url, {"from": "2025-03-05", "to": "2025-03-01"})
    assert refused.status_code == 200 and refused.context["period_errors"]["to"]


def test_a_rate_is_checked_against_the_campaigns_other_rates(campaign, annotator):
    from django.core.exceptions import ValidationError

    PayRate.objects.create(campaign=campaign, hourly_rate=Decimal("10.00"), currency="EUR")
    cases = [
        ({"hourly_rate": Decimal("11.00")}, "hourly_rate"),  # the same scope again
        ({"annotator": annotator, "hourly_rate": Decimal("12.00"), "currency": "usd"}, "currency"),
        ({"prompt_language_id": "sw", "hourly_rate": Decimal("12.00")}, "response_language"),
        ({"response_language_id": "ta", "hourly_rate": Decimal("-1.00")}, "hourly_rate"),
        ({"response_language_id": "ta", "hourly_rate": Decimal("5.00"), "currency": "EURO"}, "currency"),
    ]
    for fields, field in cases:
        with pytest.raises(ValidationError) as refused:
            PayRate(campaign=campaign, **fields).full_clean()
        assert field in refused.value.message_dict, fields
    PayRate(campaign=campaign, annotator=annotator, hourly_rate=Decimal("12.00"), currency="eur").full_clean()
