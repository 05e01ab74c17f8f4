"""Sizes of what `sam build` produced, per function with its layers, against Lambda's 250 MB
unzipped limit; then a smoke test of the built artifacts: each handler imported by a bare
python3.13 (no site-packages) that sees only the function, its layers and what the Lambda runtime
itself provides (boto3 and its dependencies), as in Lambda.

Run after `sam build`: .venv/bin/python bench/artifact_sizes.py
"""

import os
import subprocess
import sys
from pathlib import Path

from abacus_local.template import Template
from bench.built import BUILD, lambda_path, layer_names, runtime_sdk_dir

LIMIT_MB = 250
SMOKE = """
import importlib.util, sys
sys.path[:0] = sys.argv[2:]
spec = importlib.util.spec_from_file_location("built_handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.handler)
"""


def size_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 1e6


def main() -> int:
    if not BUILD.exists():
        print("no .aws-sam/build: run `sam build` first", file=sys.stderr)
        return 1
    template = Template()
    sizes = {path.name: size_mb(path) for path in BUILD.iterdir() if path.is_dir()}
    print(f"{'artifact':<18}{'unzipped MB':>12}")
    for name, megabytes in sorted(sizes.items()):
        print(f"{name:<18}{megabytes:>12.2f}")
    print(f"\n{'function':<18}{'with layers MB':>15}{'limit MB':>10}")
    failures = 0
    sdk = runtime_sdk_dir()
    for function in sorted(template.functions()):
        layers = layer_names(template, function)
        total = sizes[function] + sum(sizes[layer] for layer in layers)
        print(f"{function:<18}{total:>15.1f}{LIMIT_MB:>10}")
        failures += total >= LIMIT_MB
        handler = BUILD / function / "app.py"
        paths = lambda_path(template, function, sdk)
        bare = subprocess.run(
            [sys.executable, "-S", "-B", "-c", SMOKE, str(handler), *paths],
            capture_output=True,
            text=True,
            env={"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"},
        )
        if bare.returncode != 0:
            failures += 1
            print(f"  {function}: the built handler does not import with only its layers:\n{bare.stderr[-2000:]}")
    print("\nbuilt handlers import with only their layers and the runtime's SDK" if not failures else "")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
