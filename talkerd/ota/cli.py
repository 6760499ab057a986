"""``talkerd-ota``: make signed bundles (publisher) and install, inspect and roll back releases (kiosk).

    talkerd-ota keygen --out DIR --name NAME
    talkerd-ota trust --out FILE [--version N] [--threshold K] PUBKEY...
    talkerd-ota make-bundle --out FILE --version N --key KEY... [--engine DIR...] [--build-dir DIR]
                            [--model ROLE=PATH...] [--expires-days D] [--tensorrt-min V] [--tensorrt-below V]
                            [--compute-capability CC...] [--jetpack J...] [--downgrade-from N]
                            [--new-trust FILE] [--rtol R] [--atol A] [--notes TEXT]
    talkerd-ota [--config FILE] [--json] info BUNDLE | install SOURCE | status | list | rollback [--to N] | recover [--full]

Exit codes: see ``errors.py`` (0 ok, 1 refused or trial failed, 2 usage, 65 bad bundle, 69 build failed,
73 no space, 74 read/write error, 75 locked or download failed, 77 no permission, 78 config).
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import ExitCode, TalkerError

PROG = "talkerd-ota"
CONFIG_ENV = "TALKERD_OTA_CONFIG"


def _say(line: str) -> None:
    print(f"{PROG}: {line}", file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    from .config import DEFAULT_CONFIG

    parser = argparse.ArgumentParser(prog=PROG, description="Signed over-the-air updates of talkerd's engines and models.")
    parser.add_argument("--config", type=Path, default=Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)),
                        help=f"the OTA config (default ${CONFIG_ENV}, else %(default)s)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    keygen = commands.add_parser("keygen", help="make an ed25519 signing key (NAME.key, NAME.pub)")
    keygen.add_argument("--out", type=Path, required=True)
    keygen.add_argument("--name", required=True)

    trust = commands.add_parser("trust", help="write a trust root: the public keys a kiosk accepts")
    trust.add_argument("--out", type=Path, required=True)
    trust.add_argument("--version", type=int, default=1)
    trust.add_argument("--threshold", type=int, default=1)
    trust.add_argument("keys", nargs="+", metavar="PUBKEY", help=".pub files or hex keys")

    make = commands.add_parser("make-bundle", help="make a signed bundle of engines and models")
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--version", type=int, required=True, help="bundle version (higher than any before)")
    make.add_argument("--key", type=Path, action="append", required=True, help="signing key (repeat for a threshold)")
    make.add_argument("--engine", type=Path, action="append", default=[], help="engine definition folder")
    make.add_argument("--build-dir", type=Path, help="where the engines' ONNX and prebuilt .engine files are")
    make.add_argument("--model", action="append", default=[], metavar="ROLE=PATH", help="model file or folder (asr, llm, voice, …)")
    make.add_argument("--expires-days", type=float, default=90.0)
    make.add_argument("--tensorrt-min")
    make.add_argument("--tensorrt-below")
    make.add_argument("--compute-capability", action="append", default=[])
    make.add_argument("--jetpack", action="append", default=[])
    make.add_argument("--downgrade-from", type=int, help="a signed downgrade: may replace versions up to this")
    make.add_argument("--new-trust", type=Path, help="rotate keys: the next trust root, carried and adopted")
    make.add_argument("--rtol", type=float, default=1e-3)
    make.add_argument("--atol", type=float, default=1e-4)
    make.add_argument("--notes", default="")

    info = commands.add_parser("info", help="what a bundle holds and whether it would install here (changes nothing)")
    info.add_argument("bundle", type=Path)
    install = commands.add_parser("install", help="install a bundle from a path or an http(s) URL")
    install.add_argument("source")
    commands.add_parser("status", help="the active release, any trial, and the store's state")
    commands.add_parser("list", help="the releases kept here")
    rollback = commands.add_parser("rollback", help="go back to an older kept release")
    rollback.add_argument("--to", type=int)
    recover = commands.add_parser("recover", help="undo an interrupted install (run before the daemon starts)")
    recover.add_argument("--full", action="store_true", help="hash every file of the active release")
    return parser


# -- publisher --------------------------------------------------------------------------------------
def _keygen(args) -> dict:
    from .keys import generate_key

    private, public, hex_key = generate_key(args.out, args.name)
    return {"private_key": str(private), "public_key": str(public), "key": hex_key}


def _trust(args) -> dict:
    from pydantic import ValidationError

    from .errors import OtaConfigError
    from .keys import TrustRoot, read_public_key, trust_json

    try:
        root = TrustRoot(version=args.version, threshold=args.threshold, keys=tuple(read_public_key(Path(k)) for k in args.keys))
    except ValidationError as exc:
        raise OtaConfigError(f"trust root: {exc.errors()[0]['msg']}", code="keys_invalid") from None
    args.out.write_bytes(trust_json(root))
    return {"trust": str(args.out), "version": root.version, "threshold": root.threshold, "keys": list(root.keys)}


def _make_bundle(args) -> dict:
    from .errors import OtaConfigError
    from .keys import load_private_key, load_trust
    from .manifest import Compatibility, Warmup
    from .publish import BundleSpec, EngineSource, make_bundle

    models = {}
    for item in args.model:
        role, sep, path = item.partition("=")
        if not sep or not role or not path:
            raise OtaConfigError(f"--model {item!r}: expected ROLE=PATH", code="usage")
        models[role] = Path(path)
    spec = BundleSpec(
        version=args.version,
        engines=[EngineSource(folder, args.build_dir, warmup=Warmup(rtol=args.rtol, atol=args.atol)) for folder in args.engine],
        models=models,
        expires=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(days=args.expires_days),
        compatibility=Compatibility(tensorrt_min=args.tensorrt_min, tensorrt_below=args.tensorrt_below,
                                    compute_capabilities=tuple(args.compute_capability), jetpack=tuple(args.jetpack)),
        downgrade_from=args.downgrade_from, trust=load_trust(args.new_trust) if args.new_trust else None, notes=args.notes)
    manifest = make_bundle(spec, args.out, [load_private_key(k) for k in args.key])
    return {"bundle": str(args.out), "version": manifest.version, "files": len(manifest.files),
            "bytes": args.out.stat().st_size, "expires": manifest.expires.isoformat()}


# -- kiosk ------------------------------------------------------------------------------------------
def _installer(args):
    from .config import load_ota_config
    from .installer import Installer

    return Installer(load_ota_config(args.config), progress=_say)


def _info(args) -> dict:
    inspection = _installer(args).inspect(args.bundle)
    manifest = inspection.header.manifest
    return {"version": manifest.version, "created": manifest.created.isoformat(), "expires": manifest.expires.isoformat(),
            "downgrade_from": manifest.downgrade_from, "signatures": len(inspection.header.signatures),
            "compatibility": manifest.compatibility.model_dump(mode="json"),
            "engines": [e.name for e in manifest.engines], "models": dict(manifest.models),
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in manifest.files],
            "bytes": manifest.total_bytes, "rotates_trust_to": manifest.trust.version if manifest.trust else None,
            "notes": manifest.notes, "device": inspection.platform.describe(),
            "would_install": not inspection.refusals, "refusals": [str(r) for r in inspection.refusals]}


def _install(args) -> dict:
    from .download import fetch, is_url

    installer = _installer(args)
    source = args.source
    path = Path(source)
    if is_url(source):
        cfg = installer.cfg
        path = fetch(source, cfg.downloads_dir, cap=cfg.max_bundle_mb << 20, retries=cfg.download_retries, progress=_say)
    elif not path.is_file():
        from .errors import OtaConfigError

        raise OtaConfigError(f"{source}: no such bundle file", code="usage")
    from .errors import OtaExitCode

    try:
        result = installer.install(path)
    except TalkerError as exc:
        if is_url(source) and exc.exit_code != OtaExitCode.TEMPORARY:
            path.unlink(missing_ok=True)  # a bad or refused bundle is not kept; after "locked" it is
        raise
    if is_url(source):
        path.unlink(missing_ok=True)
    return {"installed": result.version, "previous": result.previous, "built": result.built, "pruned": result.pruned}


def _status(args) -> dict:
    from .store import describe_release, state_summary

    installer = _installer(args)
    store = installer.store
    summary = state_summary(store)
    current = summary["current"]
    summary["active"] = describe_release(store, current) if current is not None else None
    summary["problems"] = store.problems(current, full=False) if current is not None else []
    return summary


def _list(args) -> dict:
    from .store import describe_release

    store = _installer(args).store
    state, current = store.read_state(), store.current_version()
    releases = []
    for version in reversed(store.versions()):
        entry = describe_release(store, version)
        entry["tags"] = [t for t, v in (("current", current), ("committed", state.committed), ("factory", state.factory)) if v == version]
        releases.append(entry)
    return {"releases": releases}


def _rollback(args) -> dict:
    return {"active": _installer(args).rollback(args.to)}


def _recover(args) -> dict:
    installer = _installer(args)
    actions = installer.recover(full=args.full)
    return {"actions": actions, "current": installer.store.current_version()}


COMMANDS = {"keygen": _keygen, "trust": _trust, "make-bundle": _make_bundle, "info": _info, "install": _install,
            "status": _status, "list": _list, "rollback": _rollback, "recover": _recover}


def _human(command: str, result: dict) -> str:
    if command == "info":
        lines = [f"bundle version {result['version']} (created {result['created']}, expires {result['expires']}, "
                 f"{result['signatures']} signature(s))",
                 f"engines: {', '.join(result['engines']) or 'none'}; models: "
                 + (", ".join(f"{k}={v}" for k, v in result["models"].items()) or "none"),
                 f"compatibility: {json.dumps(result['compatibility'])}",
                 f"{len(result['files'])} files, {result['bytes']} bytes:"]
        lines += [f"  {f['sha256'][:16]}  {f['size']:>12}  {f['path']}" for f in result["files"]]
        lines.append(f"this device: {result['device']}")
        lines.append("would install here" if result["would_install"] else "would NOT install here: " + "; ".join(result["refusals"]))
        return "\n".join(lines)
    if command == "list":
        return "\n".join(f"{r['version']:>6}  {' '.join(r.get('tags', [])):<26} {r.get('created', r.get('error', ''))}  "
                         f"{', '.join(r.get('engines', []))}" for r in result["releases"]) or "no releases"
    if command == "status":
        trial = result.get("trial")
        return "\n".join([
            f"active release: {result['current'] if result['current'] is not None else 'none'}",
            f"committed: {result['committed']}; factory: {result['factory']}; highest installed: {result['highest_version']}",
            f"pending trial: {trial['version'] if trial else 'none'}",
            f"kept: {', '.join(map(str, result['releases'])) or 'none'}",
            *(f"problem: {p}" for p in result["problems"])])
    return "\n".join(f"{k}: {v}" for k, v in result.items())


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return ExitCode.OK if exc.code == 0 else ExitCode.USAGE
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
    try:
        result = COMMANDS[args.command](args)
    except TalkerError as exc:
        _say(f"{exc.message} [{exc.code}]")
        return ExitCode.USAGE if exc.code == "usage" else exc.exit_code
    except OSError as exc:  # a file of the store or the bundle: say which, and why
        from .errors import OtaExitCode

        _say(f"{exc.filename or 'a file'}: {exc.strerror or exc}")
        return OtaExitCode.NO_PERMISSION if isinstance(exc, PermissionError) else OtaExitCode.IO_ERROR
    except KeyboardInterrupt:
        return 130
    print(json.dumps(result, indent=2) if args.json else _human(args.command, result))
    if args.command == "info" and not result["would_install"]:
        return ExitCode.FAILURE
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
