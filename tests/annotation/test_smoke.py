from django.urls import reverse

from tests.conftest import new_key, ranks_for


def test_it_leases_and_judges(api, annotator, items):
    client = api(annotator)
    response = client.get(f"/api/v1/campaigns/{items[0].campaign_id}/next/")
    assert response.status_code == 200, response.content
    item_id = response.json()["item"]["id"]
    item = items[0].__class__.objects.get(pk=item_id)
    response = client.post(f"/api/v1/items/{item_id}/judgments/",
                           {"ranks": ranks_for(item), "idempotency_key": new_key()}, format="json")
    assert response.status_code == 201, response.content
    assert reverse("home") == "/"
