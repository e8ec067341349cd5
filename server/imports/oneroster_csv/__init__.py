"""OneRoster CSV 1.1 / 1.2 packages through the import engine: one handler per file.

Files are handled in dependency order (orgs, academicSessions, courses, classes, roles, users,
demographics, enrollments, userProfiles). ``sourcedId`` is the stable key: a row updates the
tenant's record with that sourcedId, which must belong to the importing connection (R109), or
creates it. ``status=tobedeleted`` (delta) and ``enabledUser=false`` deactivate; a listed
inactive record is reactivated with its history (W202).

``roles.csv`` (1.2) rows are applied through their user: valid role rows produce no row of
their own, a role change shows in the user row's ``roles`` change. The role rows are gathered
before ``users.csv`` (one small tuple per role: the only part of a run that grows with the
file, with ``orgs.csv`` and ``academicSessions.csv``, read whole to put parents first). A bulk
``roles.csv`` lists all of a user's roles; a delta one changes those it lists (by role
sourcedId, else org and role), and users it names that ``users.csv`` does not list are updated
after ``users.csv``, reported on their first role row. ``userProfiles.csv`` is kept in the
user's ``extra`` (by profile sourcedId, without its password column).

Enrollments keep their sourcedId when a delta re-points them to another user, class or
school; every reference that names nothing is R108.
"""

from server.imports.oneroster_csv.source import OneRosterSource, looks_like_zip

__all__ = ["OneRosterSource", "looks_like_zip"]
