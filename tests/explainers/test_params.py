"""Method parameters are as strict as the JSON schema the service publishes for them: "5", true and 5.0 are
not integers, and "0.5" and true are not numbers, while an integer is a number (`"noise": 0`)."""

from __future__ import annotations

import math

import pytest

from service.errors import InvalidParameter
from service.explainers import default_registry


def parameters(json_type: str) -> list[tuple[str, str, object]]:
    """(method, parameter, a valid value) for each parameter whose published type is `json_type`."""
    found = []
    for explainer in default_registry():
        for name, schema in explainer.params_model.model_json_schema().get("properties", {}).items():
            types = {schema.get("type")} | {option.get("type") for option in schema.get("anyOf", [])}
            if json_type in types:
                found.append((explainer.name, name, schema["default"] if schema.get("default") else 1))
    return found


INTEGERS = parameters("integer")
NUMBERS = parameters("number")


def test_the_tables_cover_the_methods():
    assert {"steps", "samples", "seed", "window", "stride"} <= {name for _, name, _ in INTEGERS}
    assert {"noise", "blur_sigma"} <= {name for _, name, _ in NUMBERS}


@pytest.mark.parametrize(("method", "name", "valid"), INTEGERS)
@pytest.mark.parametrize("value", ["5", True, 5.0], ids=["string", "true", "float"])
def test_integer_parameters_refuse_other_json_types(registry, method, name, valid, value):
    assert getattr(registry.parse({"name": method, name: valid})[1], name) == valid
    with pytest.raises(InvalidParameter) as raised:
        registry.parse({"name": method, name: value})
    assert raised.value.field == f"method.{name}"


@pytest.mark.parametrize(("method", "name", "valid"), NUMBERS)
def test_number_parameters_take_integers_but_not_strings_or_booleans(registry, method, name, valid):
    whole = math.ceil(valid)  # an integer the parameter accepts (RISE's p is in (0, 1]: 0.5 -> 1)
    params = registry.parse({"name": method, name: whole})[1]
    assert getattr(params, name) == whole and isinstance(getattr(params, name), float)
    for value in (str(valid), True):
        with pytest.raises(InvalidParameter) as raised:
            registry.parse({"name": method, name: value})
        assert raised.value.field == f"method.{name}"


def test_an_empty_layer_name_is_a_parameter_error():
    with pytest.raises(InvalidParameter) as info:
        default_registry().parse({"name": "gradcam", "layer": ""})
    assert info.value.field == "method.layer"
