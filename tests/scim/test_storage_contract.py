"""scim2-server's own storage contract, run against Rollcall's SQL storage."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import ScimProvider
from scim2_server.testing import SEARCH_USERS, ScimStorageContract

from scim.schemas import make_provider
from scim.storage import RollcallStorage
from server.domain.secrets import SecretBox
from tests.conftest import TEST_SECRET


class TestRollcallStorage(ScimStorageContract):
    supports_root_search = True

    @pytest.fixture
    def provider(self) -> ScimProvider:
        return make_provider()

    @pytest.fixture
    def storage(self, provider: ScimProvider, acting: Any) -> RollcallStorage:
        return RollcallStorage(provider, SecretBox(TEST_SECRET))

    def search_users(self) -> list[dict[str, Any]]:
        # Rollcall's username policy refuses "%" (letters, digits and . _ - @ + ' only), so
        # the user with LIKE wildcards in its userName gets "_" only; "%" stays in its title.
        return [
            {**user, "userName": "dave_x"} if user["userName"] == "dave_%" else user
            for user in SEARCH_USERS
        ]
