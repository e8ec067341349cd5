"""The SCIM attribute index: one row per attribute value of a SCIM resource, for filters and sort.

RFC 7644 §3.4.2.2 filters may name any attribute, including ones that live only in a record's
``extra`` JSON (``title``, ``emails[type eq "work"]``, extension attributes). Each SCIM write
stores the resource's values here, one row per leaf value, so every filter becomes an indexed
``IN (SELECT resource_id …)`` instead of a scan of the JSON.

- ``path`` is the lower-cased attribute path (``emails.value``, or ``urn:…:user:employeenumber``);
- ``element`` identifies the entry of a multi-valued complex attribute, so that a value path such
  as ``emails[type eq "work" and value co "x"]`` compares sub-attributes of the same entry;
- ``lead`` marks the values of the entry a sort uses (the primary one, else the first one);
- ``text`` holds strings in their comparison form (case-folded unless caseExact), dates as ISO
  8601 UTC and booleans as ``true``/``false``; ``number`` holds numbers and booleans (0/1);
  ``present`` is the ``pr`` operator's answer for the value.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base
from server.db.records import AutoIncrement


class ScimValue(Base):
    __tablename__ = "scim_values"
    __table_args__ = (
        Index("ix_scim_values_lookup", "tenant_id", "resource_type", "path", "text"),
        # Only the rows holding a number (most hold text): every numeric comparison or sort on
        # ``number`` implies ``number IS NOT NULL``, so both databases still use it (issue 15).
        Index(
            "ix_scim_values_number",
            "tenant_id",
            "resource_type",
            "path",
            "number",
            sqlite_where=text("number IS NOT NULL"),
            postgresql_where=text("number IS NOT NULL"),
        ),
        Index("ix_scim_values_resource", "resource_id", "path"),
    )

    id: Mapped[int] = mapped_column(AutoIncrement, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str] = mapped_column(String(36))
    path: Mapped[str] = mapped_column(String(255))
    element: Mapped[str | None] = mapped_column(String(60))
    lead: Mapped[bool] = mapped_column(Boolean, default=True)
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    text: Mapped[str | None] = mapped_column(String(1000))
    number: Mapped[float | None] = mapped_column(Float)
