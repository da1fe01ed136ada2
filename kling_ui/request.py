"""The request value: one job's settings, whole, from where input enters to the vendor's body.

A ``Request`` is made once where input enters (the page, the API, the CLI, MCP, a batch
line, an extend) by ``Request.make``, which checks every field against the model's spec
(``ModelSpec``) and raises ``InputError`` in words for a person. It then travels whole: the
service checks limits and prices it (``PriceBook``), the runner sends it (``body()``), and
the ledger stores it as JSON (``to_json``; images are kept as files, never in the row).

Its parts: the model id, the prompt, the images by role ("image" is the start frame; a
model with an end frame adds "last_frame"; one with reference images "reference_1" and on,
sent as one list), and the model's other fields as a mapping. A
field the model's spec doesn't know is refused, so a request for one model can't carry
another's settings by mistake.

Imports ``config``, ``errors`` and ``rules`` (the rules of each field); never HTTP or Pillow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import errors, rules
from .config import MODEL


@dataclass(frozen=True)
class FieldSpec:
    """One of a model's fields: its default and the rule that checks (and normalises) it;
    and what an endpoint's signature shows of it (``ui.fields.takes_fields``): its type and
    one line that describes it."""

    name: str
    default: Any
    check: Callable[[object], Any]
    send_when_empty: bool = True  # False: a falsy value is left out of the vendor's body
    annotation: Any = Any  # the type an endpoint's parameter declares (Gradio reads it)
    description: str = ""  # one line for an agent or a reader of the API's docs
    priced: bool = False  # True: the price reads it (a price view and /estimate take it)


@dataclass(frozen=True)
class Rule:
    """A rule between a model's fields and its images that its schema can't say (the
    catalogue's overlay keeps them): with the image ``role`` given (``given``: True) or not
    (False), ``field`` must be ``must_be`` (or must not be ``must_not_be``); ``words``
    say why, for a person."""

    role: str
    given: bool
    field: str
    words: str
    must_be: Any = None
    must_not_be: Any = None

    def broken(self, options: Mapping[str, Any], roles: set[str]) -> bool:
        if (self.role in roles) != self.given or self.field not in options:
            return False
        value = options[self.field]
        if self.must_be is not None and value != self.must_be:
            return True
        return self.must_not_be is not None and value == self.must_not_be


@dataclass(frozen=True)
class ModelSpec:
    """What a model takes: its image roles and its other fields. ``image_fields`` names the
    body's field for each role, in order ("<role>_url" where left out: the end frame alone
    has three names across models); ``required_roles``: the roles a create needs filled
    (the first by default; none for a text-to-video model that may take frames; both for
    a start+end frame model)."""

    model: str
    roles: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    image_fields: tuple[str, ...] = ()
    required_roles: tuple[str, ...] | None = None  # None: the first role (ours: "image")
    prompt_limit: int = rules.MAX_PROMPT_CHARS  # characters (the schema's maxLength, if any)
    rules: tuple[Rule, ...] = ()  # between its fields and its images
    same_aspect: bool = False  # its last frame must have its first frame's shape
    # Reference images: the body's list field for them ("" for none), at most how many,
    # and whether they can't go with a first frame (the roles "reference_1", ...).
    references: str = ""
    max_references: int = 0
    references_alone: bool = False

    def check_rules(self, options: Mapping[str, Any], roles: set[str]) -> None:
        """``InputError`` naming the field, for the first rule ``options`` break with the
        image ``roles`` given."""
        for rule in self.rules:
            if rule.broken(options, roles):
                raise errors.InputError(f"{self.model}: {rule.field}: {rule.words}")
        if self.references_alone and "image" in roles and reference_roles(roles):
            raise errors.InputError(
                f"{self.model} takes reference images or a first frame, not both: remove "
                "one of them."
            )

    def check_role(self, role: str) -> None:
        """``InputError`` unless the model takes an image as ``role``."""
        if role in self.roles:
            return
        number = reference_number(role)
        if number is None:
            raise errors.InputError(f"{self.model} takes no image as {role!r}.")
        if not self.references:
            raise errors.InputError(f"{self.model} takes no reference images.")
        if not 1 <= number <= self.max_references:
            raise errors.InputError(
                f"{self.model} takes at most {self.max_references} reference images."
            )

    def __post_init__(self) -> None:
        if len(self.image_fields) not in (0, len(self.roles)):
            raise ValueError(f"{self.model}: one body field for each image role, or none")
        if not set(self.needs()) <= set(self.roles):
            raise ValueError(f"{self.model}: a required image role it doesn't have")

    def needs(self) -> tuple[str, ...]:
        """The image roles a create can't go without."""
        if self.required_roles is not None:
            return self.required_roles
        return self.roles[:1]

    def field_for(self, role: str) -> str:
        """The create body's field for an image ``role``."""
        index = self.roles.index(role)
        return self.image_fields[index] if index < len(self.image_fields) else f"{role}_url"


KLING = ModelSpec(
    model=MODEL,
    roles=("image",),
    fields=(
        FieldSpec("negative_prompt", "", rules.check_negative_prompt, send_when_empty=False,
                  annotation=str, description="What to avoid in the video (optional)."),
        FieldSpec("duration", 5, rules.parse_duration, annotation=int, priced=True,
                  description="Length of the video in seconds: 5 or 10 (10 costs twice as much)."),
        FieldSpec("generate_audio", True, rules.check_generate_audio, annotation=bool,
                  priced=True, description="Whether the video gets generated sound."),
    ),
)  # fmt: skip
SPECS: dict[str, ModelSpec] = {KLING.model: KLING}
# An image in a request must be one of these before it is sent (images/ makes the data URI).
SENDABLE = ("https://", "data:image/")


def register(spec: ModelSpec, *, replace: bool = False) -> None:
    """Make ``model``'s requests possible (``catalogue.specs`` registers its models; ours is
    always known and is not replaced). ``replace``: a model known already takes this spec
    (the live catalogue's schema changed)."""
    if spec.model == KLING.model:
        return
    if replace:
        SPECS[spec.model] = spec
    else:
        SPECS.setdefault(spec.model, spec)


def spec_of(model: str) -> ModelSpec:
    spec = SPECS.get(model)
    if spec is None:
        raise errors.InputError(f"This app doesn't know the model {model!r}.")
    return spec


REFERENCE = "reference_"  # a reference image's role: "reference_1", "reference_2", ...


def reference_number(role: str) -> int | None:
    """The number of a reference image's role ("reference_2": 2); None for another role."""
    digits = role[len(REFERENCE) :] if role.startswith(REFERENCE) else ""
    return int(digits) if digits.isdigit() else None


def reference_roles(roles: Iterable[str]) -> list[str]:
    """The reference images' roles among ``roles``, in their order."""
    found = [(n, r) for r in roles if (n := reference_number(r)) is not None]
    return [r for _, r in sorted(found)]


def image_roles(images: Iterable[str]) -> list[str]:
    """Image roles in the request's order: the frames first, then the references by number."""
    given = list(dict.fromkeys(images))
    return [r for r in given if reference_number(r) is None] + reference_roles(given)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Request:
    """One generation as the person asked for it; built only by ``make`` (checked)."""

    model: str
    prompt: str
    images: Mapping[str, str] = field(default_factory=lambda: _frozen({}), repr=False)
    options: Mapping[str, Any] = field(default_factory=lambda: _frozen({}))

    @classmethod
    def make(
        cls,
        prompt: object,
        *,
        model: str = MODEL,
        images: Mapping[str, str] | None = None,
        **options: object,
    ) -> Request:
        """Check every field against the model's spec; raise ``InputError`` for anything
        the API would reject. Fields left out take the spec's defaults; images may be left
        out here and added (prepared) later with ``with_image``."""
        spec = spec_of(model)
        unknown = sorted(set(options) - {f.name for f in spec.fields})
        if unknown:
            raise errors.InputError(f"{spec.model} has no setting named {unknown[0]!r}.")
        checked = {f.name: f.check(options.get(f.name, f.default)) for f in spec.fields}
        for role in images or {}:
            spec.check_role(role)
        return cls(
            model=spec.model,
            prompt=rules.check_prompt(prompt, spec.prompt_limit),
            images=_frozen(images or {}),
            options=_frozen(checked),
        )

    @classmethod
    def for_model(
        cls,
        prompt: object,
        model: str,
        given: Mapping[str, object],
        options: Mapping[str, object] | None = None,
    ) -> Request:
        """A request for ``model`` from an endpoint's own fields (``given``: /generate's
        negative prompt, duration and audio) and the model's other fields (``options``,
        which win). A field of ``given`` applies where the model declares it; for a model
        other than ours, one left at its parameter's default (our model's) gives way to the
        model's own default (a caller can't be told from one who chose it, and the model's
        default is what leaving it means). Checked as ``make`` checks."""
        spec = spec_of(model)
        declared = {f.name for f in spec.fields}
        ours = {f.name: f.default for f in KLING.fields}
        fields = {
            name: value
            for name, value in given.items()
            if name in declared and (spec is KLING or value != ours.get(name, object()))
        }
        unknown = sorted(set(options or {}) - declared)  # "prompt" too: it is not an option
        if unknown:
            raise errors.InputError(f"{spec.model} has no setting named {unknown[0]!r}.")
        fields.update(options or {})
        return cls.make(prompt, model=spec.model, **fields)

    # --- the fields every caller of today's one model reads -------------------------------

    @property
    def negative_prompt(self) -> str:
        return str(self.options.get("negative_prompt") or "")

    @property
    def duration(self) -> int:
        """Whole seconds; 0 for a model's duration left unset (the vendor's default)."""
        value = self.options.get("duration", 5)
        try:
            return int(value) if value is not None else 0
        except (TypeError, ValueError):
            return 0

    @property
    def generate_audio(self) -> bool:
        return bool(self.options.get("generate_audio", True))

    @property
    def image_url(self) -> str:
        """The start frame (an https URL or a data URI once prepared; "" when not yet)."""
        return self.images.get("image", "")

    def with_image(self, url: str, role: str = "image") -> Request:
        """The same request with ``role``'s image set (a prepared data URI or a link)."""
        spec_of(self.model).check_role(role)
        return Request(self.model, self.prompt, _frozen({**self.images, role: url}), self.options)

    def without_references(self) -> Request:
        """The same request with no reference images."""
        kept = {r: u for r, u in self.images.items() if reference_number(r) is None}
        return Request(self.model, self.prompt, _frozen(kept), self.options)

    def check(self) -> Request:
        """This request as ``make`` would have made it, or ``InputError``: for one built by
        hand (``Request(...)``), checked before anything is priced, written or sent. Every
        field must already be of its rule's type ("5" for 5 is the page's leniency, not a
        made request's). Returns the checked copy (the spec's defaults filled in)."""
        checked = Request.make(self.prompt, model=self.model, images=self.images, **self.options)
        if checked.prompt != self.prompt:
            raise errors.InputError("The prompt was not checked.")
        for name, value in self.options.items():
            if type(value) is not type(checked.options[name]) or value != checked.options[name]:
                raise errors.InputError(f"{name} has the wrong type or value: {value!r}.")
        return checked

    # --- out: the vendor's body, the ledger's JSON ------------------------------------------

    def body(self) -> dict[str, Any]:
        """The create's JSON body. Every rule again, so a request built by hand can't send
        what ``make`` would refuse."""
        spec = spec_of(self.model)
        for n, role in enumerate(spec.needs()):
            if not self.images.get(role, "").startswith(SENDABLE):
                raise errors.InputError(
                    "Add an image first (an upload or an https:// link)."
                    if n == 0
                    else f"Add the {role.replace('_', ' ')} too: this model needs it."
                )
        checked = self.check()
        body: dict[str, Any] = {"model": self.model, "prompt": self.prompt}
        for role in spec.roles:
            if role in self.images:
                if not self.images[role].startswith(SENDABLE):
                    raise errors.InputError(f"The {role.replace('_', ' ')} is not ready to send.")
                body[spec.field_for(role)] = self.images[role]
        references = reference_roles(self.images)
        for n, role in enumerate(references, 1):
            if not self.images[role].startswith(SENDABLE):
                raise errors.InputError(f"Reference image {n} is not ready to send.")
        if references:
            body[spec.references] = [self.images[r] for r in references]
        # The fields always sent first, then those left out when empty (the body's order as
        # the app has always sent it: a snippet shows it). None is a field left unset.
        for f in sorted(spec.fields, key=lambda f: not f.send_when_empty):
            value = checked.options[f.name]
            if value is None:
                continue
            if f.send_when_empty or (value.strip() if isinstance(value, str) else value):
                body[f.name] = value
        return body

    def to_json(self) -> str:
        """What the ledger keeps: model, prompt and fields, the images that are links, and
        the roles of every image given (``roles``, which a saved MP4 names). A data URI is
        not kept here (the service keeps the prepared image as a file)."""
        links = {r: u for r, u in self.images.items() if u.startswith("https://")}
        return json.dumps(
            {"model": self.model, "prompt": self.prompt, "options": dict(self.options),
             "images": links, "roles": image_roles(self.images)},
            ensure_ascii=False, sort_keys=True,
        )  # fmt: skip

    @staticmethod
    def roles_in_json(text: str) -> list[str] | None:
        """The roles of the images a stored request was given (None when stored before
        they were kept)."""
        roles = json.loads(text).get("roles")
        return [str(r) for r in roles] if isinstance(roles, list) else None

    @classmethod
    def from_json(cls, text: str) -> Request:
        """A stored request, read back as it was kept (not checked again: the rules may
        have changed since, and a kept job must still be shown)."""
        data = json.loads(text)
        return cls(
            model=str(data["model"]),
            prompt=str(data["prompt"]),
            images=_frozen(data.get("images") or {}),
            options=_frozen(data.get("options") or {}),
        )

    @classmethod
    def from_columns(cls, row: Mapping[str, Any]) -> Request:
        """A row kept before requests were stored whole (ledger schema 3 and older): its
        prompt, negative_prompt, duration and generate_audio columns."""
        options = {
            "negative_prompt": row.get("negative_prompt") or "",
            "duration": int(row.get("duration") or 5),
            "generate_audio": bool(row.get("generate_audio", True)),
        }
        return cls(model=MODEL, prompt=str(row.get("prompt") or ""), options=_frozen(options))
