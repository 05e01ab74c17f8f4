"""Hooks for the schemathesis command (SCHEMATHESIS_HOOKS=tests.e2e.schemathesis_hooks): requests
carry this project's data. The admin key is given as the document's `adminKey` scheme instead
(schemathesis.toml), so that schemathesis knows it and can check that each admin route refuses
requests without it or with a wrong one."""

from typing import Any

import schemathesis

from tests.e2e.fuzz_cases import with_project_data


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    with_project_data(case)
