"""The index rows of a resource read from its SCIM JSON, without validating it into pydantic.

:func:`scim.index.indexed_values` reads a validated resource. A created user was validated
twice: its body (the engine's check of what the client sent) and then the document of the
user as stored (:func:`scim.mapping.user_json`), only to index it, a tenth of a create
(issue 15). That document is a dump of the validated body with the columns' values, so
:func:`document_values` reads it as it is: the same attributes (:func:`scim.index.
top_bindings`), each JSON value turned into the Python value the model holds (an enum, the
bytes of a base64 binary, a dateTime) before :func:`scim.values.comparison_form`, the same
``element`` keys, ``lead`` and ``present`` flags. Keys are the model's serialization aliases,
as a dump writes them; what the model does not declare is not indexed, as validation drops it.

>>> document_values(model, "5f1c", {"userName": "bart"})  # doctest: +SKIP
[IndexedValue(path='urn:…:user:username', text='bart', ...)]
"""

from __future__ import annotations

import base64
import datetime
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel
from scim2_models import AttributeBinding, Resource
from sqlalchemy.orm import Session

from scim.index import _element_keys, _host_fields, _mentions, schemas_binding, top_bindings
from scim.mapping import user_json
from scim.values import comparison_form, path_key
from server.db import User
from server.domain import scim_index, user_views
from server.domain.scim_index import IndexedValue
from server.domain.user_views import UserView


@dataclass(frozen=True)
class _Attribute:
    """One attribute as a document holds it: where (``host``: the extension's key, or None
    for the resource itself), under which key, its sub-attributes and the model of its
    complex values (None for a simple one)."""

    binding: AttributeBinding
    host: str | None
    key: str
    subs: tuple[tuple[AttributeBinding, str], ...]
    complex_model: type[BaseModel] | None


def created_user_view(session: Session, model: type[Resource[Any]], user: User) -> UserView:
    """The view of a user this request created (no groups yet), its index rows written from
    its document (:func:`scim.mapping.user_json`, what the answer publishes)."""
    session.flush()
    view = user_views.view_of(session, user, [])
    values = document_values(model, user.id, user_json(view))
    scim_index.insert_values(session, user.tenant_id, "User", user.id, values)
    return view


def document_values(
    model: type[Resource[Any]], resource_id: str, doc: dict[str, Any]
) -> list[IndexedValue]:
    """What ``indexed_values(model.model_validate(doc))`` gives, the resource's id being
    ``resource_id``, read from ``doc`` (a document in the aliases a dump of ``model`` writes)."""
    return list(_values(model, resource_id, doc))


def _values(model: type[Resource[Any]], resource_id: str, doc: dict[str, Any]) -> Iterator[Any]:
    yield from _schemas(model, resource_id, doc.get("schemas"))
    for attribute in _attributes(model):
        host = doc if attribute.host is None else doc.get(attribute.host)
        value = host.get(attribute.key) if isinstance(host, dict) else None
        if value is None:
            continue
        top, key = attribute.binding, path_key(attribute.binding)
        if isinstance(value, list):
            yield IndexedValue(key, present=_present(value, attribute.complex_model))
            yield from _entries(resource_id, attribute, value)
        elif attribute.complex_model is not None and isinstance(value, dict):
            yield IndexedValue(key, present=_present(value, attribute.complex_model))
            for sub, alias in attribute.subs:
                yield from _leaf(sub, value.get(alias), None, True)
        else:
            yield from _leaf(top, value, None, True)


def _schemas(model: type[Resource[Any]], resource_id: str, schemas: Any) -> Iterator[Any]:
    binding = schemas_binding(model)
    if binding is None or not schemas:
        return
    key = path_key(binding)
    yield IndexedValue(key, present=True)
    elements = _element_keys(resource_id, key, schemas)
    for index, schema in enumerate(schemas):
        yield from _leaf(binding, schema, elements[index], index == 0)


def _entries(resource_id: str, attribute: _Attribute, items: list[Any]) -> Iterator[Any]:
    key = path_key(attribute.binding)
    complex_model = attribute.complex_model
    if complex_model is None:
        typed = [_typed(attribute.binding, item) for item in items]
        lead = 0
        elements = _element_keys(resource_id, key, typed)
        for index, item in enumerate(typed):
            yield from _leaf(attribute.binding, item, elements[index], index == lead)
        return
    values = [_entry_value(attribute, item) for item in items]
    lead = next((i for i, item in enumerate(items) if item.get("primary") is True), 0)
    elements = _element_keys(resource_id, key, values)
    for index, item in enumerate(items):
        element = elements[index]
        yield IndexedValue(key + "#", element=element, lead=index == lead, present=True)
        for sub, alias in attribute.subs:
            yield from _leaf(sub, item.get(alias), element, index == lead)


def _entry_value(attribute: _Attribute, item: dict[str, Any]) -> Any:
    """An entry's ``value`` as the model holds it, or None: what its ``element`` key reads."""
    for sub, alias in attribute.subs:
        if sub.sub_field_name == "value":
            return _typed(sub, item.get(alias))
    return None


def _leaf(binding: AttributeBinding, value: Any, element: str | None, lead: bool) -> Iterator[Any]:
    if value is None:
        return
    typed = _typed(binding, value)
    text, number = comparison_form(binding, typed)
    present = not isinstance(typed, str | bytes) or len(typed) > 0
    yield IndexedValue(
        path_key(binding), text=text, number=number, present=present, element=element, lead=lead
    )


def _typed(binding: AttributeBinding, value: Any) -> Any:
    """A JSON value as the model holds it: an enum's member, a binary's bytes, a dateTime."""
    if value is None:
        return None
    target = binding.target_type
    if isinstance(target, type):
        if issubclass(target, enum.Enum):
            return target(value)
        if issubclass(target, bytes) and isinstance(value, str):
            return base64.b64decode(value)
        if issubclass(target, datetime.datetime) and isinstance(value, str):
            return datetime.datetime.fromisoformat(value)
    return value


def _present(value: Any, complex_model: type[BaseModel] | None) -> bool:
    """:func:`scim.index._is_present` of the value the model would hold."""
    if value is None:
        return False
    if isinstance(value, str | bytes):
        return len(value) > 0
    if isinstance(value, list):
        return any(_present(item, complex_model) for item in value)
    if isinstance(value, dict) and complex_model is not None:
        aliases = _aliases(complex_model).values()
        return any(_present(value.get(alias), None) for alias in aliases)
    return True


@cache
def _attributes(model: type[Resource[Any]]) -> tuple[_Attribute, ...]:
    """The indexed attributes of ``model`` (:func:`scim.index.top_bindings`), placed in a
    document: built once per model."""
    found = []
    for top, subs in top_bindings(model):
        target = top.target_type
        complex_model = (
            target if isinstance(target, type) and issubclass(target, BaseModel) else None
        )
        sub_aliases = _aliases(complex_model) if complex_model is not None else {}
        found.append(
            _Attribute(
                binding=top,
                host=_host_key(model, top.model),
                key=_aliases(top.model)[top.field_name],
                subs=tuple((sub, sub_aliases[sub.sub_field_name or ""]) for sub in subs),
                complex_model=complex_model,
            )
        )
    return tuple(found)


def _host_key(model: type[Resource[Any]], owner: type[BaseModel]) -> str | None:
    """The document's key of the extension holding ``owner``'s attributes (None: the
    resource's own), as :func:`scim.index._host` finds the extension object ("": none)."""
    if issubclass(model, owner):
        return None
    fields = model.model_fields
    held = [
        name for name in _host_fields(model, owner) if _mentions(fields[name].annotation, owner)
    ]
    return _aliases(model)[held[0]] if held else ""


@cache
def _aliases(model: type[BaseModel]) -> dict[str, str]:
    """Each field of ``model`` by its Python name: the key a dump by alias writes."""
    return {
        name: field.serialization_alias or field.alias or name
        for name, field in model.model_fields.items()
    }
