"""The values of a SCIM resource as the attribute index stores them (see server.db.ScimValue).

Every attribute the model declares is indexed under its full URN, sub-attributes of a
multi-valued complex attribute once per entry with the entry's ``element`` key, so a value path
(``emails[type eq "work" and value co "x"]``) compares sub-attributes of one entry. ``lead``
marks the entry a sort reads (the primary entry, else the first one), as SearchRequest.sort does.

An entry's ``element`` key is made from the resource, the attribute and the entry's ``value``
(:func:`element_key`), not from its position: removing one member of a group of thousands
leaves the other members' rows as they are, so only that member's rows change
(:func:`server.domain.scim_index.replace_values` writes only what changed).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel
from scim2_models import AttributeBinding, Path, Resource
from scim2_server.utils import parametrize

from scim.values import comparison_form, path_key
from server.domain.scim_index import IndexedValue

# ``groups`` is read from the membership tables (scim.filters). ``schemas``, which the model's
# paths leave out, is indexed on its own (:func:`_schemas`), so ``schemas eq
# "urn:…:enterprise:2.0:User"`` (an RFC 7644 §3.4.2.2 example) finds its users.
SKIPPED = ("password", "groups", "schemas")


@cache
def top_bindings(
    model: type[Resource[Any]],
) -> tuple[tuple[AttributeBinding, tuple[AttributeBinding, ...]], ...]:
    """The top-level attributes of a model with their sub-attributes."""
    paths = list(parametrize(Path, model).iter_paths(include_subattributes=True))
    tops: dict[str, tuple[AttributeBinding, list[AttributeBinding]]] = {}
    for path in paths:
        binding = path.resolve()
        if binding is None or binding.field_name in SKIPPED:
            continue
        owner = binding.urn.rsplit(".", 1)[0] if binding.sub_field_name else binding.urn
        if binding.sub_field_name is None:
            tops.setdefault(binding.urn, (binding, []))
        elif owner in tops:
            tops[owner][1].append(binding)
    return tuple((top, tuple(subs)) for top, subs in tops.values())


def indexed_values(resource: Resource[Any]) -> list[IndexedValue]:
    """Every value of ``resource`` as index rows (empty for attributes without a value)."""
    return list(_values(resource))


@cache
def schemas_binding(model: type[Resource[Any]]) -> AttributeBinding | None:
    return parametrize(Path, model)("schemas").resolve()


def element_key(resource_id: str | None, path: str, value: str, occurrence: int) -> str:
    """The ``element`` key of one entry of a multi-valued attribute: the resource's id and a
    digest of the attribute, the entry's ``value`` and how many entries before it had the
    same one (under the column's 60 characters).

    >>> element_key("5f1c", "urn:…:Group:members", "'u7'", 0)
    '5f1c/c439123533343d30'
    """
    seed = f"{path}\x00{value}\x00{occurrence}".encode()
    return f"{resource_id}/{hashlib.blake2b(seed, digest_size=8).hexdigest()}"


def _element_keys(resource_id: str | None, path: str, items: list[Any]) -> list[str]:
    """The element keys of the entries of one attribute, in order."""
    seen: Counter[str] = Counter()
    keys = []
    for item in items:
        value = getattr(item, "value", None) if isinstance(item, BaseModel) else item
        marker = repr(value)
        keys.append(element_key(resource_id, path, marker, seen[marker]))
        seen[marker] += 1
    return keys


def _schemas(resource: Resource[Any]) -> Iterator[IndexedValue]:
    binding = schemas_binding(type(resource))
    if binding is None or not resource.schemas:
        return
    key = path_key(binding)
    yield IndexedValue(key, present=True)
    elements = _element_keys(resource.id, key, resource.schemas)
    for index, schema in enumerate(resource.schemas):
        yield from _leaf(binding, schema, elements[index], index == 0)


def _values(resource: Resource[Any]) -> Iterator[IndexedValue]:
    yield from _schemas(resource)
    for top, subs in top_bindings(type(resource)):
        host = _host(resource, top)
        value = getattr(host, top.field_name, None) if host is not None else None
        if value is None:
            continue
        key = path_key(top)
        if isinstance(value, list):
            yield IndexedValue(key, present=_is_present(value))
            yield from _entries(resource.id, top, subs, value, None)
        elif isinstance(value, BaseModel):
            yield IndexedValue(key, present=_is_present(value))
            for sub in subs:
                yield from _leaf(sub, getattr(value, sub.sub_field_name or "", None), None, True)
        else:
            yield from _leaf(top, value, None, True)


def _entries(
    resource_id: str | None,
    top: AttributeBinding,
    subs: tuple[AttributeBinding, ...],
    items: list[Any],
    only: set[str] | None,
) -> Iterator[IndexedValue]:
    """The rows of the entries of a multi-valued attribute (``only``: of these elements)."""
    key = path_key(top)
    lead = _lead_index(items)
    elements = _element_keys(resource_id, key, items)
    for index, item in enumerate(items):
        element = elements[index]
        if only is not None and element not in only:
            continue
        if isinstance(item, BaseModel):
            yield IndexedValue(key + "#", element=element, lead=index == lead, present=True)
            for sub in subs:
                yield from _leaf(
                    sub, getattr(item, sub.sub_field_name or "", None), element, index == lead
                )
        else:
            yield from _leaf(top, item, element, index == lead)


def entry_values(
    resource: Resource[Any], attribute: str, values: set[str]
) -> tuple[list[str], list[IndexedValue]]:
    """The ``element`` keys of the entries of multi-valued ``attribute`` whose ``value`` is one
    of ``values`` (entries there or gone: each value once), and the rows of those there.

    What :func:`indexed_values` gives for those entries, without the others: a change to a
    few members of a group of thousands re-indexes those members only.
    """
    for top, subs in top_bindings(type(resource)):
        if top.field_name == attribute:
            key = path_key(top)
            elements = {element_key(resource.id, key, repr(value), 0) for value in values}
            items = getattr(_host(resource, top), attribute, None) or []
            return sorted(elements), list(_entries(resource.id, top, subs, items, elements))
    raise ValueError(f"{type(resource).__name__} has no attribute {attribute!r}")


def _leaf(
    binding: AttributeBinding, value: Any, element: str | None, lead: bool
) -> Iterator[IndexedValue]:
    if value is None:
        return
    text, number = comparison_form(binding, value)
    yield IndexedValue(
        path_key(binding),
        text=text,
        number=number,
        present=_is_present(value),
        element=element,
        lead=lead,
    )


def _host(resource: Resource[Any], binding: AttributeBinding) -> Any:
    """The object holding an attribute: the resource, or the extension object it belongs to."""
    model = binding.model
    if isinstance(resource, model):
        return resource
    for name in _host_fields(type(resource), model):
        candidate = getattr(resource, name, None)
        if isinstance(candidate, model):
            return candidate
    return None


@cache
def _host_fields(resource_type: type[BaseModel], model: type[Any]) -> tuple[str, ...]:
    """The fields of ``resource_type`` that may hold a ``model`` (an extension's field), else
    all of them: :func:`_host` looked at every field of the resource for every attribute,
    a tenth of indexing a created user (issue 15)."""
    every = tuple(resource_type.model_fields)
    typed = tuple(
        name
        for name, field in resource_type.model_fields.items()
        if _mentions(field.annotation, model)
    )
    return typed or every


def _mentions(annotation: Any, model: type[Any]) -> bool:
    """Whether a field's type is ``model`` or names it (``Optional[model]``…)."""
    if annotation is model:
        return True
    return any(_mentions(argument, model) for argument in get_args(annotation))


def _lead_index(items: list[Any]) -> int:
    for index, item in enumerate(items):
        if getattr(item, "primary", None) is True:
            return index
    return 0


def _is_present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str | bytes):
        return len(value) > 0
    if isinstance(value, BaseModel):
        return any(_is_present(getattr(value, n, None)) for n in type(value).model_fields)
    if isinstance(value, list):
        return any(_is_present(item) for item in value)
    return True


def attribute_values(model: type[Resource[Any]], attribute: str, value: Any) -> list[IndexedValue]:
    """The index rows :func:`indexed_values` gives a simple top-level ``attribute`` of
    ``model`` holding ``value`` (the row a PATCH of a user's ``active`` rewrites)."""
    for top, subs in top_bindings(model):
        if top.field_name == attribute and not subs:
            return list(_leaf(top, value, None, True))
    raise ValueError(f"{model.__name__} has no simple attribute {attribute!r}")
