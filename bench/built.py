"""The built artifacts (`sam build` output) laid out as Lambda lays them out for one function."""

import sysconfig
import tempfile
from pathlib import Path

from abacus_local.template import ROOT, Template

BUILD = ROOT / ".aws-sam" / "build"
# What the python3.13 Lambda runtime ships besides the standard library (snapshot_restore_py: SnapStart's
# runtime hooks, which abacus/http/snapstart.py registers).
RUNTIME_PROVIDED = [
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "six.py",
    "urllib3",
    "snapshot_restore_py.py",
]


def layer_names(template: Template, function: str) -> list[str]:
    globals_layers = template.document["Globals"]["Function"].get("Layers", [])
    own = template.resources[function]["Properties"].get("Layers", [])
    return [layer["Ref"] for layer in globals_layers + own]


def runtime_sdk_dir() -> Path:
    """A folder holding only what the Lambda runtime provides, linked from this venv."""
    folder = Path(tempfile.mkdtemp(prefix="lambda-runtime-"))
    site = Path(sysconfig.get_paths()["purelib"])
    for name in RUNTIME_PROVIDED:
        (folder / name).symlink_to(site / name)
    return folder


def lambda_path(template: Template, function: str, sdk: Path) -> list[str]:
    """sys.path entries of a function in Lambda: its code, then /opt/python (its layers), then the SDK."""
    layers = layer_names(template, function)
    return [str(BUILD / function)] + [str(BUILD / layer / "python") for layer in layers] + [str(sdk)]
