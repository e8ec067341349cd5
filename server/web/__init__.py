"""The staff surfaces: the server-rendered admin UI under /admin and the JSON API under
/admin/api, both on the same domain calls."""
