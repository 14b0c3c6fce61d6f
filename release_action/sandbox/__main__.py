"""``python -m release_action.sandbox``: run the sandbox forge, or a demo release into it.

    serve  a sandbox forge on 127.0.0.1 for rehearsing a pipeline
    demo   publish a demo release into a fresh sandbox (--forge gitflic, sourcecraft, gitea or
           gitverse), then re-run to show nothing is sent twice

With --contract, every request and answer is checked against the forge's API description
(contract.py) when the sandbox stops; a problem makes the exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ..forges import FORGES
from .server import Sandbox

DEMO_REPOSITORY = "demo/hello"
DEMO_TAG = "v1.0.0"
DEMO_TOKEN = "sandbox-token"
#: The commit of the demo's tag, which GitVerse needs to make a release (its CI gives a run's own).
DEMO_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(
        prog="python -m release_action.sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = cli.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a sandbox forge until interrupted")
    serve.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    serve.add_argument("--repository", default=DEMO_REPOSITORY)
    serve.add_argument("--tag", action="append", help="a git tag that exists (repeatable)")
    serve.add_argument("--token", default=DEMO_TOKEN)
    demo_command = commands.add_parser("demo", help="publish a demo release into a fresh sandbox")
    demo_command.add_argument("--forge", choices=sorted(FORGES), default="gitflic")
    for command in (serve, demo_command):
        command.add_argument(
            "--contract", action="store_true", help="check every request and answer against the forge's API description"
        )
    args = cli.parse_args(argv)
    return _serve(args) if args.command == "serve" else demo(args.forge, contract=args.contract)


def report_contract(sandbox: Sandbox) -> int:
    """Say what the check found in the sandbox's exchanges: 0 when nothing, 1 on a problem, 2 without
    the validator (the image carries the sandbox, not its check)."""
    from . import contract

    exchanges = sandbox.exchanges()
    try:
        problems = contract.problems(exchanges)
    except ImportError:
        print("--contract needs jsonschema: pip install 'release-action[sandbox]'.", file=sys.stderr)
        return 2
    print(
        f"\n== Contract: {len(exchanges)} requests and answers checked against the forges' API descriptions;"
        f" {len(problems)} problems."
    )
    for problem in problems:
        print(f"   {problem}")
    for operation in sorted(contract.unlisted(exchanges)):
        print(f"   beyond the description, with evidence it works: {operation}")
    return 1 if problems else 0


def _serve(args: argparse.Namespace) -> int:
    sandbox = Sandbox(port=args.port).start()
    sandbox.add_project(args.repository, args.tag or [DEMO_TAG], args.token)
    apis = ", ".join(f"{name}: {sandbox.api_url(name)}" for name in FORGES)
    print(f"Sandbox forge at {sandbox.url} (APIs: {apis})", flush=True)
    print(f"  INPUT_API_URL={sandbox.api_url('gitflic')} INPUT_TOKEN={args.token} INPUT_REPOSITORY={args.repository}")
    print(f"  control panel: {sandbox.url}/_sandbox/state ; Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return report_contract(sandbox) if args.contract else 0


def demo(forge: str = "gitflic", *, contract: bool = False) -> int:
    with Sandbox() as sandbox, tempfile.TemporaryDirectory(prefix="release-demo-") as workdir:
        sandbox.add_project(DEMO_REPOSITORY, [DEMO_TAG], DEMO_TOKEN)
        dist = Path(workdir) / "dist"
        dist.mkdir()
        (dist / "hello-linux-amd64.tar.gz").write_bytes(os.urandom(8 << 20))
        (dist / "hello-windows-amd64.zip").write_bytes(os.urandom(3 << 20))
        outputs = Path(workdir) / "outputs.json"
        env = {
            **os.environ,
            "INPUT_FORGE": forge,
            "INPUT_API_URL": sandbox.api_url(forge),
            "INPUT_TOKEN": DEMO_TOKEN,
            "INPUT_REPOSITORY": DEMO_REPOSITORY,
            "INPUT_TAG_NAME": DEMO_TAG,
            "INPUT_NAME": "Hello 1.0.0",
            "INPUT_BODY": "The first release of hello, published by the demo.",
            "INPUT_FILES": "*.tar.gz\n*.zip",
            "INPUT_CHECKSUMS": "SHA256SUMS",
            "INPUT_WORKING_DIRECTORY": str(dist),
            "INPUT_JSON_FILE": str(outputs),
            **({"INPUT_TARGET_BRANCH": DEMO_COMMIT} if forge == "gitverse" else {}),
        }
        print(f"== Sandbox {forge} forge at {sandbox.url}; publishing {DEMO_TAG} of {DEMO_REPOSITORY}\n", flush=True)
        first = subprocess.run([sys.executable, "-m", "release_action"], env=env)
        if first.returncode != 0:
            return first.returncode
        print("\n== Outputs for later pipeline steps:")
        for asset in json.loads(outputs.read_text())["assets"]:
            print(f"   {asset['status']:9} {asset['name']:26} {asset['size']:>9} bytes  sha256 {asset['sha256'][:16]}…")
        [release] = sandbox.releases(DEMO_REPOSITORY, forge)
        sums = next(stored for stored in release.files if stored.name == "SHA256SUMS")
        print("\n== SHA256SUMS, written by the program from the uploads' own reads, as the forge stores it:")
        print("".join(f"   {line}\n" for line in sums.path.read_text().splitlines()), end="")
        print("\n== The same job again: everything is already there, so nothing is sent\n", flush=True)
        second = subprocess.run([sys.executable, "-m", "release_action"], env=env)
        if second.returncode != 0:
            return second.returncode
        statuses = {asset["status"] for asset in json.loads(outputs.read_text())["assets"]}
        uploads = sum(
            1
            for method, path in sandbox.calls()
            if method == "POST" and path.endswith(("/file", "/attachments", "/assets"))
        )
        print(f"\n== Done: {uploads} uploads in all, second run statuses {sorted(statuses)}.")
        broken = report_contract(sandbox) if contract else 0
        return 0 if statuses == {"unchanged"} and uploads == 3 and not broken else 1


if __name__ == "__main__":
    sys.exit(main())
