"""PostHog's remote config (`GET /array/{token}/config`, and `config.js`, the script form
posthog-js tries first), answered so that posthog-js proceeds to its flags and capture.

It tells the SDK what this server offers: the compressions ingestion reads, whether the project
has flags (experiments) worth a /flags request, and that the PostHog products Abacus does not
have (session recording, heatmaps, site apps...) are off, so the SDK loads no script for them.
`surveys` is left out rather than false: posthog-js loads its surveys script from the API's
`/static/` whenever the config names surveys at all, even as off. Autocapture is turned off:
Abacus stores every event it receives, and an experiment's metrics are events the app names.
"""

import json
from typing import Any

SUPPORTED_COMPRESSION = ["gzip", "gzip-js"]


def remote_config(token: str, has_flags: bool) -> dict[str, Any]:
    return {
        "token": token,
        "supportedCompression": SUPPORTED_COMPRESSION,
        "hasFeatureFlags": has_flags,
        "autocapture_opt_out": True,
        "captureDeadClicks": False,
        "capturePerformance": False,
        "autocaptureExceptions": False,
        "errorTracking": {"autocaptureExceptions": False, "suppressionRules": []},
        "sessionRecording": False,
        "heatmaps": False,
        "productTours": False,
        "conversations": False,
        "logs": False,
        "siteApps": [],
        "defaultIdentifiedOnly": True,
        "elementsChainAsString": True,
    }


def remote_config_script(config: dict[str, Any]) -> str:
    """The same config as the script posthog-js loads: it stores it where the SDK looks."""
    token, body = json.dumps(config["token"]), json.dumps({"config": config, "siteApps": []})
    # "</" escaped: the JSON can never end a script element, wherever the script is inlined.
    body = body.replace("</", "<\\/")
    return (
        "(function(){var all=window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};"
        f"all[{token}]={body};}})();\n"
    )
