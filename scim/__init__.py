"""SCIM 2.0 (RFC 7643 schemas, RFC 7644 protocol, RFC 9865 cursors) at ``/scim/v2``.

scim2-server does the protocol; this package only translates: ``app`` (the ASGI endpoint, auth,
profiles), ``schemas`` (resource types, education extensions, ServiceProviderConfig),
``storage`` (the ScimStorage over ``server.domain``), ``mapping`` (resources <-> records),
``filters``/``index``/``values`` (filters and sorts as SQL over the attribute index) and
``errors`` (domain errors -> SCIM errors).
"""

from scim.app import ScimEndpoint

__all__ = ["ScimEndpoint"]
