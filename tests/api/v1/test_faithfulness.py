"""`evaluate` over HTTP: each result carries its faithfulness curves, within the request's limits."""

from __future__ import annotations


def test_each_result_carries_deletion_and_insertion(explain_json, photos):
    body = explain_json(
        photos["chelsea.jpg"].b64,
        photos["flower.png"].b64,
        method="gradient",
        evaluate={"metrics": ["deletion", "insertion"], "steps": 8},
    )
    for result in body["results"]:
        assert set(result["faithfulness"]) == {"deletion", "insertion"}
        for metric in result["faithfulness"].values():
            assert len(metric["curve"]) == 9 and all(0 <= p <= 1 for p in metric["curve"])
            assert 0 <= metric["auc"] <= 1 and 0 <= metric["random_auc"] <= 1
        # Before the first step the deletion curve scores the image itself: the explained class's probability.
        assert abs(result["faithfulness"]["deletion"]["curve"][0] - result["target"]["probability"]) < 1e-5


def test_several_methods_each_get_their_own_curves(explain_json, photos):
    body = explain_json(
        photos["chelsea.jpg"].b64, methods=["gradient", "gradcam"], evaluate={"metrics": ["deletion"], "steps": 4}
    )
    curves = [e["faithfulness"]["deletion"] for e in body["results"][0]["explanations"]]
    assert len(curves) == 2 and curves[0]["curve"][0] == curves[1]["curve"][0]  # the same image at step 0
    assert curves[0]["random_auc"] == curves[1]["random_auc"]  # the same seeded random ranking


def test_without_evaluate_there_are_no_curves(explain_json, photos):
    assert explain_json(photos["chelsea.jpg"].b64)["results"][0]["faithfulness"] is None


def test_too_many_steps_is_refused_before_any_work(client, photos):
    body = {"images": [photos["chelsea.jpg"].b64], "evaluate": {"metrics": ["deletion", "insertion"], "steps": 256}}
    response = client.post("/v1/models/shapes18/explain", json=body)
    assert response.status_code == 422 and response.json()["error"]["field"] == "evaluate.steps"
    response = client.post("/v1/models/shapes18/explain", json={**body, "evaluate": {"metrics": []}})
    assert response.status_code == 422
