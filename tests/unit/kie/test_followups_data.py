"""kie_client/catalog/followups.toml: every model it names exists and fits its follow-up."""

from __future__ import annotations

import pytest

from kie_client.catalog import CatalogError, Kind, Mode, load_catalog
from kie_client.catalog.followups import FollowupPlan, check, load_followups


def test_the_shipped_follow_ups_name_real_models_that_fit():
    specs = load_catalog()
    plan = load_followups()
    check(plan, specs)
    by_key = {s.key: s for s in specs}
    assert plan.tools["upscale"] == "topaz_upscale" and plan.tools["remove_bg"] == "recraft_remove_bg"
    # Every image model that makes pictures from words or photos has somewhere to edit them.
    for spec in specs:
        if spec.kind is Kind.IMAGE and spec.prompt:
            assert by_key[plan.edit_model(spec.key)].mode is Mode.I2I
    assert plan.better["nano_banana_2"] == "nano_banana_pro"


@pytest.mark.parametrize(("plan", "problem"), [
    (FollowupPlan(better={"nano_banana_2": "kling_26_t2v"}), "does another job"),
    (FollowupPlan(edit={"nano_banana_2": "topaz_upscale"}), "not a prompt edit model"),
    (FollowupPlan(tools={"upscale": "no_such_model"}), "no model 'no_such_model'"),
    (FollowupPlan(tools={"upscale": "nano_banana_2"}), "not an image edit/tool"),
])
def test_a_wrong_entry_is_refused_with_where_it_is(plan, problem):
    with pytest.raises(CatalogError, match=problem):
        check(plan, load_catalog())


def test_an_unknown_tool_action_is_refused(tmp_path):
    path = tmp_path / "followups.toml"
    path.write_text('[tools]\nsharpen = "topaz_upscale"\n')
    with pytest.raises(CatalogError, match="no action 'sharpen'"):
        load_followups(path)
