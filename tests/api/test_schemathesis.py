"""Issue 9: the OpenAPI document tells the truth. Schemathesis generates requests from it (valid
and invalid) and checks every answer against it: no 5xx, only documented status codes, content
types and headers, bodies that match their schemas, invalid data refused, 405 with ``Allow``.

Bounded (a few examples per operation and mode, derandomized) so it runs in seconds in CI.
``positive_data_acceptance`` is left out on purpose: a JSON Schema cannot say
"epochs * steps_per_epoch <= 1,000,000" or which arguments a scheduler takes, so schema-valid
requests may rightly get a 422 from the domain parser. (Driven by hand rather than through
schemathesis' pytest plugin, whose ``from_fixture`` does not run under pytest 9.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.generation import GenerationMode

from torchscope.inspect.models import load_models
from torchscope.main import create_app
from torchscope.settings import Settings
from torchscope.web.routers.checkpoints import stop_checkpoints

EXAMPLES = 5


def test_api_matches_its_openapi_document(tmp_path: Path) -> None:
    # schemathesis' in-process client calls itself "testserver": allowed as --allow-host would
    settings = Settings(
        specs=["torchscope.examples:TwoLayerNet"], data_dir=tmp_path, max_upload_mb=1, allow_hosts=["testserver"]
    )
    app = create_app(settings, registry=load_models(settings.specs, settings.kwargs))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = 0
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            # Negative data needs something with a schema to break: query parameters or a body
            # (free-text path parameters accept any string, and hypothesis would search in vain).
            negatable = bool(list(operation.query)) or bool(list(operation.body))
            modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if negatable else [GenerationMode.POSITIVE]
            for mode in modes:

                @given(case=operation.as_strategy(generation_mode=mode))
                @hypothesis_settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
                def run(case: Any) -> None:
                    # What the pages send with every request (a cross-site form cannot): API clients do too.
                    case.call_and_validate(headers={"X-Torchscope": "1"}, excluded_checks=[checks.positive_data_acceptance])

                try:
                    run()
                except Unsatisfiable:  # nothing to make invalid (e.g. only free-text path parameters)
                    pass
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as err:  # collect every operation's failures (a FailureGroup), then report all
                    failures.append(f"{operation.label} [{mode.value}]: {str(err)[:1500]}")
    finally:
        stop_checkpoints(app)
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
