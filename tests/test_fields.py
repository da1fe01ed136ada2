"""``ui.fields.takes_fields``: an endpoint written with one ``fields`` parameter is published
with the model's spec's fields in its place (as Gradio reads a signature: names, order,
defaults, evaluated type hints, the docstring's ``Args:``) and called with them gathered."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator

import gradio as gr
import pytest

from kling_ui.request import KLING, FieldSpec, ModelSpec
from kling_ui.ui import Handlers
from kling_ui.ui.agents import AgentTools
from kling_ui.ui.fields import Fields, takes_fields

NAMES = [f.name for f in KLING.fields]
DEFAULTS = {f.name: f.default for f in KLING.fields}
PRICED = [f.name for f in KLING.fields if f.priced]


class Endpoints:
    """Endpoints as the page's are written: a method, a request, a header, a stream."""

    @takes_fields(KLING)
    def answer(
        self,
        prompt: str,
        fields: Fields,
        fit: str = "reject",
        key: gr.Header = None,  # type: ignore[assignment]
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict:
        """Answer at once.

        Args:
            prompt: What moves.
            duration: Said here, not by the spec.
            fit: How the image fits.
        """
        return {"prompt": prompt, "fields": dict(fields), "fit": fit, "request": request}

    @takes_fields(KLING, defaults=False)
    def stream(self, prompt: str, fields: Fields, api_key: str) -> Iterator[str]:
        """Stream."""
        yield from (f"{name}={fields[name]}" for name in NAMES)
        yield api_key


def test_the_published_signature_has_the_specs_fields_in_place_of_fields():
    parameters = inspect.signature(Endpoints().answer).parameters
    assert list(parameters) == ["prompt", *NAMES, "fit", "key", "request"]
    assert [(parameters[f.name].default, parameters[f.name].annotation) for f in KLING.fields] == [
        (f.default, f.annotation) for f in KLING.fields
    ]


def test_type_hints_are_real_objects_so_gradio_knows_its_request_and_header():
    hints = typing.get_type_hints(Endpoints().answer)
    assert hints["request"] is gr.Request and hints["key"] is gr.Header
    assert hints["prompt"] is str and hints["return"] is dict
    assert {f.name: hints[f.name] for f in KLING.fields} == {
        f.name: f.annotation for f in KLING.fields
    }


@pytest.mark.parametrize(
    ("args", "kwargs", "fields"),
    [
        (("Waves.",), {}, DEFAULTS),
        (("Waves.", "blur", 10, False), {}, dict(zip(NAMES, ["blur", 10, False], strict=True))),
        (("Waves.",), {"duration": 10}, {**DEFAULTS, "duration": 10}),
        ((), {"prompt": "Waves.", "generate_audio": False, "negative_prompt": "x", "duration": 5},
         {"negative_prompt": "x", "duration": 5, "generate_audio": False}),
    ],
)  # fmt: skip
def test_a_call_gathers_the_fields_by_position_or_name_into_one_mapping(args, kwargs, fields):
    answer = Endpoints().answer(*args, **kwargs)
    assert answer["fields"] == fields
    assert answer["prompt"] == "Waves." and answer["fit"] == "reject"


def test_the_parameters_after_the_fields_still_take_their_place():
    answer = Endpoints().answer("Waves.", "", 5, True, "crop", None, "the request")
    assert answer["fit"] == "crop" and answer["request"] == "the request"


def test_a_stream_stays_a_generator_and_fields_without_defaults_are_required():
    endpoint = Endpoints().stream
    assert inspect.isgeneratorfunction(endpoint)
    assert list(endpoint("Waves.", "", 10, False, "k")) == [
        "negative_prompt=", "duration=10", "generate_audio=False", "k",
    ]  # fmt: skip
    assert all(
        inspect.signature(endpoint).parameters[n].default is inspect.Parameter.empty for n in NAMES
    )
    with pytest.raises(TypeError):
        list(endpoint("Waves.", "", 10, False))  # no api_key


def test_a_field_the_docstrings_args_leave_out_is_described_by_the_spec():
    doc = inspect.getdoc(Endpoints.answer)
    negative = next(f for f in KLING.fields if f.name == "negative_prompt")
    assert f"    negative_prompt: {negative.description}" in doc
    assert "    duration: Said here, not by the spec." in doc  # the docstring's own words stay
    assert doc.count("duration:") == 1
    assert inspect.getdoc(Endpoints.stream) == "Stream."  # no Args: left as it is


def test_a_function_without_fields_or_with_a_fields_name_of_its_own_is_refused():
    with pytest.raises(TypeError, match="fields"):
        takes_fields(KLING)(lambda prompt: prompt)
    with pytest.raises(TypeError, match="duration"):
        takes_fields(KLING)(lambda fields, duration=5: fields)


def test_priced_publishes_only_the_fields_a_price_reads():
    spec = ModelSpec("m", ("image",), (FieldSpec("seed", 0, int, annotation=int),
                                        FieldSpec("duration", 5, int, priced=True)))  # fmt: skip

    @takes_fields(spec, priced=True)
    def estimate(fields: Fields, count: int = 1) -> dict:
        return {**fields, "count": count}

    assert list(inspect.signature(estimate).parameters) == ["duration", "count"]
    assert estimate(10, 2) == {"duration": 10, "count": 2}


@pytest.mark.parametrize(
    ("endpoint", "before", "fields", "after"),
    [
        (Handlers.generate, ["image", "prompt"], NAMES,
         ["api_key", "fit", "owner_token", "model", "end_image", "options", "request"]),
        (Handlers.extend, ["generation_id", "prompt"], NAMES,
         ["api_key", "owner_token", "model", "options", "request"]),
        (Handlers.batch, ["images", "prompts"], NAMES,
         ["takes", "api_key", "owner_token", "fit", "model", "options", "request"]),
        (Handlers.estimate, [], PRICED, ["count"]),
        (AgentTools.generate, ["image", "prompt"], NAMES,
         ["fit", "owner_token", "model", "end_image", "options", "x_aimlapi_key", "request"]),
        (AgentTools.submit, ["image", "prompt"], NAMES,
         ["takes", "fit", "owner_token", "model", "options", "x_aimlapi_key", "request"]),
        (AgentTools.extend, ["generation_id", "prompt"], NAMES,
         ["owner_token", "model", "options", "x_aimlapi_key", "request"]),
        (AgentTools.estimate, [], PRICED, ["count"]),
    ],
    ids=lambda v: getattr(v, "__qualname__", None),
)  # fmt: skip
def test_every_endpoint_is_published_with_the_specs_fields(endpoint, before, fields, after):
    assert list(inspect.signature(endpoint).parameters) == ["self", *before, *fields, *after]
