"""A model's fields as an endpoint's parameters, read from its spec (``request.ModelSpec``).

An endpoint is written once with one parameter for all of them, ``fields: Fields``::

    @takes_fields(KLING, defaults=False)
    def generate(self, image, prompt, fields: Fields, api_key: str, ...) -> ...:
        ... form_request(image, prompt, **fields) ...

and published (``__signature__``, ``__annotations__``) with the spec's fields in its place,
in the spec's order, each with its default and type (``FieldSpec.annotation``). A call
passes them as any other parameter, by position or by name; they reach the function as the
one mapping ``fields`` (name to value, the defaults filled in), which it hands on whole.

Why: Gradio reads an endpoint's parameters (``inspect.signature``: names, order, defaults),
their type hints (``typing.get_type_hints``: ``gr.Request`` and ``gr.Header`` are known by
them; ``gr.api``'s types are read from them) and its docstring's ``Args:`` (the MCP tools'
descriptions) for the API's info and the MCP schemas. So the parameters' published
annotations are real objects (the modules use ``from __future__ import annotations``; the
return's stays as written, see ``_published``), a generator stays one (Gradio streams it),
the name and the docstring are the function's, and a field the docstring's ``Args:`` leaves
out is described there by its spec (``FieldSpec.description``). ``priced=True`` publishes
only the fields a price reads (``FieldSpec.priced``: ``/estimate``); ``priced_part`` picks
them out of all the fields (a low-balance question asks only those).

Imports ``request`` (the spec's types) only.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..request import FieldSpec, ModelSpec

# What an endpoint's ``fields`` parameter receives: the spec's fields by name.
Fields = Mapping[str, Any]
FIELDS = "fields"  # the parameter the spec's fields take the place of
F = TypeVar("F", bound=Callable[..., Any])


def fields_of(spec: ModelSpec, *, priced: bool = False) -> tuple[FieldSpec, ...]:
    """The spec's fields in its order: all, or (``priced``) the ones a price reads."""
    return tuple(f for f in spec.fields if f.priced or not priced)


def priced_part(spec: ModelSpec, fields: Fields) -> dict[str, Any]:
    """The fields a price reads, of all the model's (a low-balance question asks only those:
    the rest is checked where the request is made)."""
    return {f.name: fields[f.name] for f in fields_of(spec, priced=True)}


def takes_fields(
    spec: ModelSpec, *, priced: bool = False, defaults: bool = True
) -> Callable[[F], F]:
    """Publish a function's ``fields`` parameter as the spec's fields (``fields_of``), each
    with its default (``defaults``: False where a parameter after them has none, as Python
    requires), and call it with them gathered into one mapping."""
    chosen = fields_of(spec, priced=priced)

    def decorate(fn: F) -> F:
        hints = inspect.get_annotations(fn, eval_str=True)
        published = _published(fn, hints, chosen, defaults)
        names = [f.name for f in chosen]

        def gathered(args: tuple, kwargs: dict) -> dict[str, Any]:
            bound = published.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            values[FIELDS] = {name: values.pop(name) for name in names}
            return values

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def endpoint(*args: Any, **kwargs: Any) -> Any:
                return (yield from fn(**gathered(args, kwargs)))

        else:

            @functools.wraps(fn)
            def endpoint(*args: Any, **kwargs: Any) -> Any:
                return fn(**gathered(args, kwargs))

        endpoint.__signature__ = published  # type: ignore[attr-defined]
        endpoint.__annotations__ = _annotations(published, hints)
        endpoint.__doc__ = _described(fn.__doc__, chosen)
        return endpoint  # type: ignore[return-value]

    return decorate


def _published(
    fn: Callable[..., Any], hints: dict[str, Any], chosen: tuple[FieldSpec, ...], defaults: bool
) -> inspect.Signature:
    """``fn``'s signature with the spec's fields in the place of ``fields``, and each
    parameter's annotation evaluated (``hints``: a string under ``from __future__ import
    annotations``). The return's is left as written: ``gr.api`` reads the API's return type
    from the signature, and a string is what it always read (an evaluated ``dict`` would
    change ``/estimate``'s documented answer)."""
    own = inspect.signature(fn)
    names = list(own.parameters)
    if FIELDS not in names:
        raise TypeError(f"{fn.__qualname__} has no parameter named {FIELDS!r}.")
    clash = sorted({f.name for f in chosen} & set(names))
    if clash:
        raise TypeError(f"{fn.__qualname__} already has a parameter named {clash[0]!r}.")
    empty = inspect.Parameter.empty
    parameters = [p.replace(annotation=hints.get(p.name, empty)) for p in own.parameters.values()]
    at = names.index(FIELDS)
    kind = parameters[at].kind
    made = [
        inspect.Parameter(
            f.name, kind, default=f.default if defaults else empty, annotation=f.annotation
        )
        for f in chosen
    ]
    return own.replace(parameters=[*parameters[:at], *made, *parameters[at + 1 :]])


def _annotations(published: inspect.Signature, hints: dict[str, Any]) -> dict[str, Any]:
    """What ``typing.get_type_hints`` reads (Gradio knows ``gr.Request`` and ``gr.Header`` by
    it): each annotated parameter's type, and the return's, all evaluated."""
    empty = inspect.Parameter.empty
    annotations = {
        p.name: p.annotation for p in published.parameters.values() if p.annotation is not empty
    }
    if "return" in hints:
        annotations["return"] = hints["return"]
    return annotations


def _described(doc: str | None, chosen: tuple[FieldSpec, ...]) -> str | None:
    """The docstring, with a line in its ``Args:`` for each field it leaves out (the spec's
    description: an MCP tool's parameters are described from there). One without ``Args:``
    is left as it is (not a tool's)."""
    if not doc or not re.search(r"^\s*Args:\s*$", doc, re.MULTILINE):
        return doc
    missing = [f for f in chosen if not re.search(rf"^\s*{f.name}:", doc, re.MULTILINE)]
    if not missing:
        return doc
    lines = doc.rstrip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Args:")
    outer = len(lines[start]) - len(lines[start].lstrip())
    # The section ends where a line is indented no more than "Args:" (e.g. "Returns:").
    end = next(
        (i for i in range(start + 1, len(lines))
         if lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) <= outer),
        len(lines),
    )  # fmt: skip
    added = [f"{' ' * (outer + 4)}{f.name}: {f.description}" for f in missing]
    return "\n".join([*lines[:end], *added, *lines[end:]]) + "\n"
